"""UUIDv7 (RFC 9562): time-ordered ids, which Altinn's own tests use for consent requests."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

__all__ = ["uuid7"]


def uuid7(at: datetime) -> uuid.UUID:
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big") & ((1 << 74) - 1)
    rand_a, rand_b = rand >> 62, rand & ((1 << 62) - 1)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
