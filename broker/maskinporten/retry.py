"""Bounded retries with exponential back-off, jitter and ``Retry-After`` (``maskinporten.md``
§1.7, §4.1: 503 is "temporarily unavailable"; no rate limit is published, so assume one).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]


def _system_random() -> Callable[[], float]:
    return secrets.SystemRandom().random


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a transient failure.

    Defaults: 3 attempts in all; back-off 0.5 s, 1 s, 2 s … capped at 8 s, each with "equal
    jitter" (between half and all of it) so that many brokers do not retry in step. A
    ``Retry-After`` is honoured as a minimum wait; one longer than ``max_retry_after`` ends the
    retries at once instead of holding the caller. ``sleep`` and ``jitter`` are injectable so
    that tests do not wait and can predict the delays.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    jitter: Callable[[], float] = field(default_factory=_system_random)  # uniform in [0, 1)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (from 1); None: give up."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        jittered = backoff / 2 + self.jitter() * backoff / 2
        return max(jittered, retry_after or 0.0)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())
