"""kubellm.local (see docs/architecture.md)."""
