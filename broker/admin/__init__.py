"""The operators' tools: revocation, clients, the audit trail; web pages, JSON API and CLI."""
