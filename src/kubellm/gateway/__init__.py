"""kubellm.gateway (see docs/architecture.md)."""
