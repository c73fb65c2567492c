"""Procurement systems (clients): registration, API keys and authentication of API calls."""
