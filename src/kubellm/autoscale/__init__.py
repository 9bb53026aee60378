"""kubellm.autoscale (see docs/architecture.md)."""
