"""What the relay needs from outside (declared here, implemented by adapters)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Literal, Protocol

from broker.consent.ports import AuditRecord

__all__ = [
    "Attempt",
    "AuditSink",
    "ConsentTokenSource",
    "Limiter",
    "OppdragAnswer",
    "OppdragSource",
]

Accept = Literal["json", "xml"]


class OppdragAnswer(Protocol):
    @property
    def body(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...

    @property
    def korrelasjonsid(self) -> str | None: ...

    @property
    def levert(self) -> datetime | None: ...


class Attempt(Protocol):
    """One request that reached (or tried to reach) the upstream."""

    @property
    def korrelasjonsid(self) -> str | None: ...

    @property
    def succeeded(self) -> bool: ...

    @property
    def code(self) -> str: ...

    @property
    def seconds(self) -> float: ...


class OppdragSource(Protocol):
    """Skatteetaten's API. Raises the consent ports' UpstreamRefused (``code`` = Skatteetaten's
    ``kode``, e.g. ``…-007``) or UpstreamUnavailable, with ``korrelasjonsid`` when known, and
    reports every request it sends (retries included) to ``on_attempt``. ``altinn_samtykke``
    is an Altinn 2 consent token, sent next to the bearer."""

    async def oppdrag(
        self,
        orgnr: str,
        *,
        token: str,
        accept: Accept,
        on_attempt: Callable[[Any], Awaitable[None]] | None = None,
        altinn_samtykke: str | None = None,
    ) -> OppdragAnswer: ...


class ConsentTokenSource(Protocol):
    """Credentials for one relay call: an object with ``token`` (the bearer) and, for Altinn 2,
    ``altinn_samtykke``. Raises ``ConsentUnavailable`` when the consent is gone."""

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> object: ...

    def invalidate_consent(self, consent_id: uuid.UUID, *, token: str | None = None) -> bool: ...


class Limiter(Protocol):
    """Call slots per consumer org; raises a 503 ``upstream_busy`` problem when none frees."""

    def slot(self, key: str) -> AbstractAsyncContextManager[None]: ...


class AuditSink(Protocol):
    """Appends one audit row and returns once it is committed (the relay answers after that)."""

    async def __call__(self, record: AuditRecord, *, at: datetime) -> None: ...
