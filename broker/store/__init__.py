"""Persistence: engine factories, the schema, and repositories (which never commit)."""
