"""Relaying calls to Skatteetaten's API on behalf of clients, within its limits."""
