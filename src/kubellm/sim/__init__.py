"""kubellm.sim (see docs/architecture.md)."""
