"""API keys: ``ebk_<prefix>_<secret>``. Only the prefix (to find the key) and an HMAC of the
whole key (to check it) are stored; the key itself is shown once and never again.

The keys are 256-bit random values, so a fast keyed hash is enough (no slow KDF needed); the
HMAC key ("pepper") is the broker's secret key, so a stolen database alone cannot test guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = ["ApiKey", "hash_key", "new_key", "parse_key"]

_PREFIX = "ebk"
_FORMAT = re.compile(r"ebk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    value: str  # the whole key: a secret

    def __repr__(self) -> str:
        return f"ApiKey(prefix={self.prefix!r})"


def new_key() -> ApiKey:
    prefix = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))
    return ApiKey(prefix, f"{_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}")


def parse_key(value: str) -> ApiKey | None:
    match = _FORMAT.fullmatch(value)
    return None if match is None else ApiKey(match[1], value)


def hash_key(key: ApiKey, pepper: bytes) -> str:
    return hmac.new(pepper, key.value.encode(), hashlib.sha256).hexdigest()
