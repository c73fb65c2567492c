"""Maskinporten's signing keys (its ``jwks_uri``), fetched on demand and cached.

Digdir says to cache the key set (about 24 h) rather than fetch it per request, and to expect
signing-key rotation (``maskinporten.md`` §2.2, §4.3). So the set is refreshed when it is older
than ``max_age``, and refetched when a token names an unknown ``kid`` — at most once per
``min_refetch_interval``, so that tokens with made-up kids cannot make us hammer the endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from broker.consent.ports import UpstreamUnavailable
from broker.maskinporten.clock import Clock

__all__ = ["JwksCache"]

logger = logging.getLogger("broker.maskinporten")


class JwksCache:
    """The issuer's RSA signing keys by ``kid``. Concurrent misses share one fetch."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        jwks_uri: str,
        clock: Clock,
        max_age: float = 86400.0,
        min_refetch_interval: float = 60.0,
        failure_backoff: float = 5.0,
    ) -> None:
        self._http = http
        self._uri = jwks_uri
        self._clock = clock
        self._max_age = timedelta(seconds=max_age)
        self._min_refetch = timedelta(seconds=min_refetch_interval)
        self._keys: dict[str, RSAKey] = {}
        self._generation = 0  # bumped on every successful fetch
        self._due: datetime | None = None  # when the set must be refreshed; None: never fetched
        self._last_refetch: datetime | None = None  # last unknown-kid refetch (rate limit)
        self._failure_backoff = timedelta(seconds=failure_backoff)
        self._failed_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> RSAKey | None:
        """The key named ``kid``, or None if the issuer does not publish it.

        Raises UpstreamUnavailable when the key set cannot be fetched and none is cached, or
        when an allowed refetch for an unknown ``kid`` fails.
        """
        if self._due is None or self._clock() >= self._due:
            await self._refresh_due(self._generation)
        key = self._keys.get(kid)
        if key is None:
            await self._refetch_unknown(self._generation)
            key = self._keys.get(kid)
        return key

    async def _refresh_due(self, generation: int) -> None:
        async with self._lock:
            now = self._clock()
            if self._generation != generation or (self._due is not None and now < self._due):
                return  # another caller refreshed, or gave up for a while, as this one waited
            if self._failed_at is not None and now - self._failed_at < self._failure_backoff:
                # Waiters queued behind a failed first fetch must not each repeat it.
                raise UpstreamUnavailable("JWKS unavailable: the last fetch failed moments ago")
            try:
                await self._fetch()
            except UpstreamUnavailable:
                self._failed_at = now
                if not self._keys:
                    raise
                # Keys do not go bad because the endpoint is down: keep them, try again later.
                logger.warning("JWKS refresh failed; keeping the cached keys", exc_info=True)
                self._due = now + self._min_refetch

    async def _refetch_unknown(self, generation: int) -> None:
        async with self._lock:
            if self._generation != generation:
                return
            now = self._clock()
            if self._last_refetch is not None and now - self._last_refetch < self._min_refetch:
                return
            self._last_refetch = now
            logger.info("unknown kid in a token; refetching the JWKS")
            await self._fetch()

    async def _fetch(self) -> None:
        self._keys = await self._download()
        self._generation += 1
        self._due = self._clock() + self._max_age

    async def _download(self) -> dict[str, RSAKey]:
        try:
            response = await self._http.get(self._uri, headers={"Accept": "application/json"})
        except httpx.RequestError as exc:
            raise UpstreamUnavailable(f"JWKS fetch failed: {type(exc).__name__}") from exc
        if response.status_code != httpx.codes.OK:
            raise UpstreamUnavailable(f"JWKS fetch failed: HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable("JWKS fetch failed: the body is not JSON") from exc
        keys = _signing_keys(document)
        if not keys:
            raise UpstreamUnavailable("JWKS fetch failed: no usable RSA signing keys")
        return keys


def _signing_keys(document: object) -> dict[str, RSAKey]:
    entries = document.get("keys") if isinstance(document, dict) else None
    keys: dict[str, RSAKey] = {}
    for entry in entries if isinstance(entries, list) else []:
        key = _signing_key(entry)
        if key is not None:
            keys[str(key.kid)] = key
    return keys


def _signing_key(entry: object) -> RSAKey | None:
    # Other key types and encryption keys may share the set; they never verify our tokens.
    if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "d" in entry:
        return None
    if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
        return None
    try:
        return RSAKey.import_key(cast(Any, entry))
    except (JoseError, ValueError, TypeError):
        logger.warning("skipping an unreadable key in the JWKS")
        return None
