"""kubellm.bench (see docs/architecture.md)."""
