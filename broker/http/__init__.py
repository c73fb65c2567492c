"""HTTP plumbing shared by every feature: problem responses and request middleware."""
