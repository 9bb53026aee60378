"""kubellm.render (see docs/architecture.md)."""
