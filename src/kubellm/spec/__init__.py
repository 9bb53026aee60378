"""kubellm.spec (see docs/architecture.md)."""
