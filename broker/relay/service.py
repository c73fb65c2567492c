"""The relay: Skatteetaten's oppdrag data for a granted consent, exactly as Skatteetaten sent it.

For each call: the request must be the caller's and granted, unexpired and not withdrawn; a
consent token comes from Maskinporten (cached); a slot is taken so that no consumer org ever has
more than the allowed calls in flight; the answer is passed through byte for byte and signed.
Every upstream call leaves exactly one audit row. Skatteetaten's answers map to our errors with
its ``kode`` and ``korrelasjonsid`` kept; ``-007`` ends the grant (revoked by Skatteetaten).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.consent.machine import ConsentFlow, Expired, InvalidTransition, Revoked, step
from broker.consent.model import Caller, ConsentRequest, Generation, RevokedBy, State
from broker.consent.notices import publish
from broker.consent.ports import (
    AuditRecord,
    ConsentUnavailable,
    UnitOfWork,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.service import OBJECT, audit_transition
from broker.errors import (
    BadGateway,
    BrokerError,
    Conflict,
    GatewayTimeout,
    NotFound,
    ServiceUnavailable,
)
from broker.relay.ports import (
    Accept,
    Attempt,
    AuditSink,
    ConsentTokenSource,
    Limiter,
    OppdragAnswer,
    OppdragSource,
)
from broker.relay.signing import BodySigner

__all__ = ["RelayService", "Relayed"]

logger = logging.getLogger("broker.relay")


@dataclass(frozen=True)
class Relayed:
    body: bytes
    content_type: str
    korrelasjonsid: str | None
    levert: datetime | None
    signature: str


def _hash(value: object) -> str:
    # The consent id is credential-like: the audit trail keeps a hash, enough to correlate.
    return hashlib.sha256(str(value).encode()).hexdigest()[:32]


class RelayService:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        tokens: Mapping[Generation, ConsentTokenSource],
        source: OppdragSource,
        limiter: Limiter,
        signer: BodySigner,
        now: Callable[[], datetime],
        audit: AuditSink | None = None,
        reads: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        self._units = units
        # The consent lookup is one statement: it needs no transaction of its own.
        self._reads = reads or units
        self._audit_sink = audit or self._audit_alone
        self._tokens = tokens
        self._oppdrag = source
        self._limiter = limiter
        self._signer = signer
        self._now = now

    async def oppdrag(
        self, caller: Caller, request_id: str, *, accept: Accept, correlation_id: str | None
    ) -> Relayed:
        request = await self._granted(caller, request_id)
        assert request.altinn_consent_id is not None
        token = await self._token(request)
        answer = await self._call(request, token, accept, correlation_id)
        signature = self._signer.sign(answer.body, content_type=answer.content_type)
        return Relayed(
            answer.body, answer.content_type, answer.korrelasjonsid, answer.levert, signature
        )

    async def _granted(self, caller: Caller, request_id: str) -> ConsentRequest:
        try:
            parsed = uuid.UUID(request_id)
        except ValueError:
            raise NotFound("No such consent request") from None
        async with self._reads() as uow:
            request = await uow.consents.get(parsed, client_id=caller.client_id)
        if request is None:
            raise NotFound("No such consent request")
        if request.state is State.GRANTED and request.valid_to <= self._now():
            await self._end(request, Expired(), ("system", "relay"))
            raise Conflict("The consent has expired", code="consent_expired")
        if request.state is State.REVOKED and request.state_reason == RevokedBy.ADMIN.value:
            # An operator stopped this request (broker/admin): say so, so the client knows to
            # ask the operator rather than the supplier.
            raise Conflict(
                "An administrator revoked this consent request; no data may be fetched for it",
                code="consent_revoked_by_admin",
                extensions={"request_status": request.state.value, "revoked_by": "admin"},
            )
        if request.state is not State.GRANTED:
            raise Conflict(
                f"The consent request is {request.state.value}, not granted",
                code="consent_not_granted",
                # "status" is the problem's HTTP status (RFC 9457), so the state has its own name.
                extensions={"request_status": request.state.value},
            )
        return request

    def _source(self, request: ConsentRequest) -> ConsentTokenSource:
        source = self._tokens.get(request.generation)
        if source is None:
            logger.error("no consent tokens for Altinn generation %s", request.generation.value)
            raise BadGateway(
                "The broker is not set up for this consent's Altinn generation",
                code="upstream_configuration",
            )
        return source

    async def _token(self, request: ConsentRequest) -> Any:
        assert request.altinn_consent_id is not None
        try:
            return await self._source(request).consent_token(
                consent_id=request.altinn_consent_id,
                subject_org=request.subject_org,
                requestor_org=request.requestor_org,
            )
        except ConsentUnavailable as exc:
            # Maskinporten (from Altinn) says the consent is gone: withdrawn by the end user.
            await self._end(request, Revoked(RevokedBy.END_USER, exc.code), ("system", "relay"))
            raise Conflict("The consent is no longer valid", code="consent_revoked") from None
        except UpstreamUnavailable:
            raise _unavailable("Maskinporten", None) from None
        except UpstreamRefused as exc:
            # Not about the consent (that is ConsentUnavailable): our client, key or scope.
            logger.error("maskinporten refused the broker: %s", exc.code)
            raise BadGateway(
                "Maskinporten refused the broker's credentials (a configuration fault)",
                code="upstream_configuration",
            ) from None

    async def _call(
        self, request: ConsentRequest, token: Any, accept: Accept, correlation_id: str | None
    ) -> OppdragAnswer:
        for attempt in (1, 2):
            try:
                return await self._audited(request, token, accept, correlation_id)
            except UpstreamRefused as exc:
                if attempt == 1 and _is_token_refused(exc):
                    # A cached token Skatteetaten no longer accepts: drop it, fetch, try once more.
                    assert request.altinn_consent_id is not None
                    self._source(request).invalidate_consent(
                        request.altinn_consent_id, token=token.token
                    )
                    token = await self._token(request)
                    continue
                if attempt == 1 and _is_stale_samtykke(request, exc):
                    # An Altinn 2 token lives 30 s and may have run out while the call waited
                    # for a slot or a retry: ask Altinn 2 again (which says whether the consent
                    # still holds) before believing that Skatteetaten refused the consent.
                    token = await self._token(request)
                    continue
                raise await self._refused(request, exc) from None
        raise AssertionError("unreachable")

    async def _audited(
        self, request: ConsentRequest, token: Any, accept: Accept, correlation_id: str | None
    ) -> OppdragAnswer:
        async def audit(attempt: Attempt) -> None:
            # One row per request that went to Skatteetaten, retries included.
            await self._audit(request, attempt, correlation_id)

        try:
            async with self._limiter.slot(request.requestor_org):
                return await self._oppdrag.oppdrag(
                    request.subject_org,
                    token=token.token,
                    accept=accept,
                    on_attempt=audit,
                    altinn_samtykke=getattr(token, "altinn_samtykke", None),
                )
        except UpstreamUnavailable as exc:
            raise _unavailable("Skatteetaten", exc) from None

    async def _audit(
        self, request: ConsentRequest, attempt: Attempt, correlation_id: str | None
    ) -> None:
        record = AuditRecord(
            actor_type="client",
            actor_id=str(request.client_id),
            action="oppdrag.fetch",
            object_type=OBJECT,
            object_id=str(request.id),
            client_id=request.client_id,
            outcome="success" if attempt.succeeded else "failure",
            reason=None if attempt.succeeded else attempt.code,
            correlation_id=correlation_id,
            upstream_correlation_id=attempt.korrelasjonsid,
            details={
                "requestor": request.requestor_org,
                "subject": request.subject_org,
                "consent": _hash(request.altinn_consent_id),
                "duration_ms": round(attempt.seconds * 1000, 1),
            },
        )
        await self._audit_sink(record, at=self._now())

    async def _audit_alone(self, record: AuditRecord, *, at: datetime) -> None:
        async with self._units() as uow:
            await uow.audit.append(record, at=at)
            await uow.commit()

    async def _refused(self, request: ConsentRequest, exc: UpstreamRefused) -> BrokerError:
        kode = exc.code
        extensions = {"kode": kode, "korrelasjonsid": getattr(exc, "korrelasjonsid", None)}
        if kode.endswith("-007"):
            await self._end(
                request, Revoked(RevokedBy.SKATTEETATEN, kode), ("system", "skatteetaten")
            )
            return Conflict(
                "Skatteetaten no longer accepts this consent",
                code="consent_revoked",
                extensions=extensions,
            )
        if kode.endswith("-008") or getattr(exc, "status", None) == 410:
            return NotFound(
                "Skatteetaten does not know the subject organisation",
                code="subject_not_found",
                extensions=extensions,
            )
        if _is_configuration(exc):
            logger.error("skatteetaten refused our credentials: %s", kode)
            return BadGateway(
                "Skatteetaten refused the broker's credentials (a configuration fault)",
                code="upstream_configuration",
                extensions=extensions,
            )
        logger.error("skatteetaten refused our request: %s", kode)
        return BadGateway(
            "Skatteetaten refused the request (a fault in the broker)",
            code="upstream_rejected_request",
            extensions=extensions,
        )

    async def _end(
        self, request: ConsentRequest, event: Revoked | Expired, actor: tuple[str, str]
    ) -> None:
        now = self._now()
        try:
            moved, effects = step(
                ConsentFlow(str(request.id), request.state, request.valid_to), event, now=now
            )
        except InvalidTransition:
            return
        async with self._units() as uow:
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason=moved.reason, at=now
            ):
                return
            by = event.by if isinstance(event, Revoked) else None
            reason = event.reason if isinstance(event, Revoked) else "valid_to"
            await uow.consents.end_grant(request.id, at=now, by=by, reason=reason)
            await uow.audit.append(
                audit_transition(
                    request, moved.state.value, actor=actor, state=moved.state, reason=moved.reason
                ),
                at=now,
            )
            await publish(uow, request, moved, effects, at=now)
            await uow.commit()


def _is_token_refused(exc: UpstreamRefused) -> bool:
    return (
        exc.code.endswith("-004")
        or exc.code in ("unauthorized", "http_401")
        or getattr(exc, "status", None) == 401
    )


def _is_stale_samtykke(request: ConsentRequest, exc: UpstreamRefused) -> bool:
    return request.generation is Generation.ALTINN2 and exc.code.endswith("-007")


def _is_configuration(exc: UpstreamRefused) -> bool:
    """Refusals of our access (Maskinporten set-up, scope, package, address), not of the data."""
    return (
        _is_token_refused(exc)
        or exc.code.endswith(("-003", "-005"))
        or exc.code in ("DAS-002", "DAS-008")
        or getattr(exc, "status", None) in (403, 404)
    )


def _unavailable(upstream: str, exc: UpstreamUnavailable | None) -> BrokerError:
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(int(retry_after) if retry_after else 5)}
    extensions = {
        "kode": getattr(exc, "kode", None),
        "korrelasjonsid": getattr(exc, "korrelasjonsid", None),
    }
    if getattr(exc, "timed_out", False):
        return GatewayTimeout(
            f"{upstream} did not answer in time",
            code="upstream_timeout",
            headers=headers,
            extensions=extensions,
        )
    return ServiceUnavailable(
        f"{upstream} is unavailable; try again later",
        code="upstream_unavailable",
        headers=headers,
        extensions=extensions,
    )
