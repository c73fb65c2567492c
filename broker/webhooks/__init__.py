"""Webhooks to procurement systems: endpoints and secrets, signed at-least-once delivery."""
