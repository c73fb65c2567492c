"""Errors raised by the Maskinporten adapter, beyond the consent ports' ``Upstream*`` family.

``TokenInvalid`` is an ``Unauthenticated`` broker error, so a route that verifies a caller's
bearer token can let it propagate and the problem renderer answers 401 with an RFC 6750
``WWW-Authenticate`` challenge. Its ``reason`` comes from a fixed vocabulary and never quotes
the token or any of its claims, so it is safe to log and to show.
"""

from __future__ import annotations

from broker.errors import Unauthenticated

__all__ = ["ClientKeyInvalid", "TokenInvalid"]


class TokenInvalid(Unauthenticated):
    code = "invalid_token"
    title = "The bearer token is not valid"

    def __init__(self, reason: str) -> None:
        super().__init__(reason, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        self.reason = reason


class ClientKeyInvalid(ValueError):
    """The client's private key file is missing, unreadable or not a usable RSA signing key.

    The message names the file and the problem, never the key material."""
