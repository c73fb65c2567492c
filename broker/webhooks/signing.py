"""Standard Webhooks signing (https://www.standardwebhooks.com, v1): secrets and headers.

A secret is ``whsec_`` + base64 of 32 random bytes, unique per endpoint. Each delivery carries
``webhook-id`` (the event's id, the same on every attempt), ``webhook-timestamp`` (Unix seconds
of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` over
``{webhook-id}.{webhook-timestamp}.{body}`` for each secret in use, separated by spaces; during
a rotation's overlap that is two signatures, and a receiver accepts any one that matches. The
signatures are made by the ``standardwebhooks`` reference library itself.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

__all__ = ["SECRET_PREFIX", "USER_AGENT", "new_secret", "signed_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
USER_AGENT = "ebevis-broker-webhooks/1"
_SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    # Decoding the secret once per secret, not once per delivery.
    return Webhook(secret)


def signed_headers(
    webhook_id: str, at: datetime, body: str, secrets_in_use: Sequence[str]
) -> dict[str, str]:
    """The headers of one attempt; ``secrets_in_use`` newest first (at least one)."""
    if not secrets_in_use:
        raise ValueError("a delivery needs at least one signing secret")
    # The library replaces the tzinfo with UTC (it does not convert), so convert first.
    at = at.astimezone(UTC)
    signatures = " ".join(_signer(s).sign(webhook_id, at, body) for s in secrets_in_use)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
