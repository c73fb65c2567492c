"""An in-memory token cache with refresh-ahead and single-flight (``maskinporten.md`` §4.1).

- The key holds everything that changes a token's identity: issuer, client, scope, consumer
  org and consent id, so tokens never leak across customers or consents.
- An entry counts as fresh until ``margin`` before it expires, where ``margin`` is
  ``max(refresh_ratio * lifetime, refresh_min)`` but at most half the lifetime (so that a very
  short-lived token is still reused). Defaults: 20 % and 10 s, i.e. 24 s of a 120 s token.
  The first request inside the margin fetches the new token and waits for it (there is no
  background task); the old token is never handed out once the margin is reached.
- Concurrent misses on one key share a single fetch; its failure reaches every waiter and is
  never cached. A waiter that is cancelled does not cancel the fetch for the others.
- Tokens are bearer credentials: they live in memory only, and expired ones are dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

from broker.maskinporten.clock import Clock

__all__ = ["CacheKey", "Fetched", "TokenCache"]

T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    issuer: str
    client_id: str
    scope: str
    consumer_org: str | None = None
    consent_id: uuid.UUID | None = None
    # A consent's (from, to) as the caller named them, so that a call naming other parties is
    # checked against a token of its own rather than handed one checked for somebody else.
    consent_parties: tuple[str, str] | None = None


@dataclass(frozen=True)
class Fetched(Generic[T]):
    """A fetched value and its validity window (``obtained_at`` is when it was asked for)."""

    value: T
    obtained_at: datetime
    expires_at: datetime


class TokenCache(Generic[T]):
    def __init__(
        self, *, clock: Clock, refresh_ratio: float = 0.2, refresh_min: float = 10.0
    ) -> None:
        if not 0 <= refresh_ratio < 1 or refresh_min < 0:
            raise ValueError("refresh_ratio must be in [0, 1) and refresh_min non-negative")
        self._clock = clock
        self._ratio = refresh_ratio
        self._min = timedelta(seconds=refresh_min)
        self._entries: dict[CacheKey, Fetched[T]] = {}
        self._inflight: dict[CacheKey, asyncio.Task[Fetched[T]]] = {}

    async def get(self, key: CacheKey, fetch: Callable[[], Coroutine[Any, Any, Fetched[T]]]) -> T:
        """The cached value for ``key`` while fresh; otherwise the result of ``fetch()``,
        started once however many callers miss at the same time."""
        entry = self._entries.get(key)
        if entry is not None and self._is_fresh(entry):
            return entry.value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(fetch())
            self._inflight[key] = task
            task.add_done_callback(partial(self._settle, key))
        fetched = await asyncio.shield(task)
        return fetched.value

    def invalidate(
        self,
        match: CacheKey | Callable[[CacheKey], bool],
        *,
        when: Callable[[T], bool] | None = None,
    ) -> int:
        """Drop the entry for a key, or those whose key ``match(key)`` accepts, but only those
        whose value ``when(value)`` accepts, if given; returns how many were dropped. Guarding
        on the value lets a caller drop the token that failed for it without throwing away a
        newer one that another caller already fetched."""
        keys = [match] if isinstance(match, CacheKey) else [k for k in self._entries if match(k)]
        dropped = 0
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and (when is None or when(entry.value)):
                del self._entries[key]
                dropped += 1
        return dropped

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _is_fresh(self, entry: Fetched[T]) -> bool:
        lifetime = entry.expires_at - entry.obtained_at
        margin = min(max(lifetime * self._ratio, self._min), lifetime / 2)
        return self._clock() < entry.expires_at - margin

    def _settle(self, key: CacheKey, task: asyncio.Task[Fetched[T]]) -> None:
        del self._inflight[key]  # a new fetch for the key starts only once this one is done
        if task.cancelled() or task.exception() is not None:
            return  # failures are never cached (and the exception counts as retrieved)
        now = self._clock()
        self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}
        fetched = task.result()
        if fetched.expires_at > now:
            self._entries[key] = fetched
