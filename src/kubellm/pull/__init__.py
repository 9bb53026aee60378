"""kubellm.pull (see docs/architecture.md)."""
