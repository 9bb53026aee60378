"""kubellm.operator (see docs/architecture.md)."""
