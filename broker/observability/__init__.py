"""Metrics, owned by the app instance (no global registry)."""
