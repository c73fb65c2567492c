"""Enhetsregisteret's open API: the registered name of an organisation.

Altinn 2 refuses a consent request whose ``OfferedByName`` is not the organisation's name
(``altinn-consent.md`` §2.1, §5.3); data.altinn.no takes it from the business register (§1.3),
and so does the broker: ``GET {base}/enheter/{orgnr}`` (``https://data.brreg.no/enhetsregisteret/
api`` in production, no authentication) answers ``navn``. Names are cached for an hour, so a
busy requestor costs one lookup per hour. A 404 or 410 (deleted) is an unknown organisation.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from broker.consent.ports import UpstreamRefused, UpstreamUnavailable

__all__ = ["EnhetsregisteretClient"]

logger = logging.getLogger("broker.brreg")
_ORGNR = re.compile(r"[0-9]{9}")
_CACHED = 4096


class EnhetsregisteretClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime],
        ttl: float = 3600.0,
    ) -> None:
        self._http = http
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._names: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    async def name(self, orgnr: str) -> str:
        if not _ORGNR.fullmatch(orgnr):
            raise ValueError("an organisation number is nine digits")
        cached = self._names.get(orgnr)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        name = await self._fetch(orgnr)
        self._names[orgnr] = (name, now + self._ttl)
        self._names.move_to_end(orgnr)
        while len(self._names) > _CACHED:
            self._names.popitem(last=False)
        return name

    async def _fetch(self, orgnr: str) -> str:
        try:
            response = await self._http.get(
                f"/enheter/{orgnr}", headers={"Accept": "application/json"}
            )
        except httpx.TransportError as exc:
            message = f"no answer from Enhetsregisteret ({type(exc).__name__})"
            raise UpstreamUnavailable(message) from exc
        if response.status_code in (404, 410):
            raise UpstreamRefused("unknown_organisation", "not in Enhetsregisteret")
        if response.status_code != 200:
            raise UpstreamUnavailable(f"Enhetsregisteret answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable("Enhetsregisteret answered with something not JSON") from exc
        name = body.get("navn") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise UpstreamUnavailable("Enhetsregisteret answered without a name")
        return name.strip()
