"""The client API's use cases: create, read, list, history and cancel consent requests.

Each use case is one unit of work: the state change, its audit event and (for POSTs) the
idempotency record are committed together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from broker.consent.machine import Cancelled, ConsentFlow, InvalidTransition, step
from broker.consent.model import Caller, ConsentRequest, Generation, RevokedBy, State
from broker.consent.notices import publish
from broker.consent.ports import AuditRecord, DuplicateKey, UnitOfWork
from broker.consent.return_urls import matches_registered
from broker.consent.schemas import (
    FieldError,
    Invalid,
    NewRequest,
    decode_cursor,
    encode_cursor,
    history_json,
    parse_new_request,
    parse_state,
    request_json,
)
from broker.errors import BadRequest, Conflict, NotFound, ValidationFailed

__all__ = ["ConsentPolicy", "ConsentService", "audit_transition"]

OBJECT = "consent_request"
_OPEN = (State.PENDING, State.REDIRECTED)


@dataclass(frozen=True)
class ConsentPolicy:
    """``resource``: the Altinn 3 resource; ``altinn2_service``: the Altinn 2 service edition
    (``5616_2``) a request on Altinn 2 names instead; ``generation``: the deployment's default
    for a caller without its own."""

    resource: str
    max_days: int
    idempotency_hours: int = 24
    altinn2_service: str = "5616_2"
    generation: Generation = Generation.ALTINN3

    def resource_for(self, generation: Generation) -> str:
        return self.altinn2_service if generation is Generation.ALTINN2 else self.resource


class Withdrawer(Protocol):
    """Tells Altinn that the broker gives a consent up (``withdraw.Withdrawals``)."""

    def withdraw(self, request: ConsentRequest, *, actor: tuple[str, str]) -> Awaitable[bool]: ...


def audit_transition(
    request: ConsentRequest,
    action: str,
    *,
    actor: tuple[str, str],
    state: State,
    reason: str | None = None,
    correlation_id: str | None = None,
    outcome: str = "success",
) -> AuditRecord:
    return AuditRecord(
        actor_type=actor[0],
        actor_id=actor[1],
        action=action,
        object_type=OBJECT,
        object_id=str(request.id),
        client_id=request.client_id,
        outcome=outcome,
        reason=reason,
        correlation_id=correlation_id,
        details={"state": state.value},
    )


class ConsentService:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        policy: ConsentPolicy,
        consent_url: Callable[[uuid.UUID], str],
        cursor_key: bytes,
        now: Callable[[], datetime],
        withdrawals: Withdrawer | None = None,
    ) -> None:
        self._units = units
        self._withdrawals = withdrawals
        self._cursor_key = cursor_key
        self._policy = policy
        self._consent_url = consent_url
        self._now = now

    def render(self, request: ConsentRequest) -> dict[str, Any]:
        url = self._consent_url(request.id) if request.state in _OPEN else None
        return request_json(request, consent_url=url)

    async def create(
        self, caller: Caller, body: Any, *, idempotency_key: str | None, correlation_id: str | None
    ) -> tuple[int, dict[str, Any]]:
        new = self._validate(caller, body)
        _check_key(idempotency_key)
        try:
            return await self._create(caller, new, body, idempotency_key, correlation_id)
        except DuplicateKey:
            # A concurrent request with the same key won the insert; answer as a repeat would.
            return await self._create(caller, new, body, idempotency_key, correlation_id)

    async def _create(
        self,
        caller: Caller,
        new: NewRequest,
        body: Any,
        key: str | None,
        correlation_id: str | None,
    ) -> tuple[int, dict[str, Any]]:
        now = self._now()
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        async with self._units() as uow:
            if key is not None:
                stored = await uow.idempotency.get(caller.client_id, key)
                if stored is not None:
                    return _replay(stored.fingerprint, fingerprint, stored.status, stored.body)
                expires = now + timedelta(hours=self._policy.idempotency_hours)
                await uow.idempotency.start(
                    caller.client_id, key, fingerprint=fingerprint, at=now, expires_at=expires
                )
            request = self._new_request(caller, new, key, now)
            await uow.consents.add(request)
            await uow.audit.append(
                audit_transition(
                    request,
                    "created",
                    actor=("client", str(caller.client_id)),
                    state=State.PENDING,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            rendered = self.render(request)
            if key is not None:
                await uow.idempotency.finish(caller.client_id, key, status=201, body=rendered)
            await uow.commit()
        return 201, rendered

    def _validate(self, caller: Caller, body: Any) -> NewRequest:
        try:
            new = parse_new_request(body)
        except Invalid as exc:
            raise _invalid(exc.errors) from None
        errors = []
        registered = matches_registered(new.return_url, caller.return_urls)
        if registered is None:
            errors.append(FieldError("return_url", "must be one of the client's registered URLs"))
        else:
            new = replace(new, return_url=registered)
        now = self._now()
        latest = now + timedelta(days=self._policy.max_days)
        if new.valid_to is not None and not now < new.valid_to <= latest:
            errors.append(
                FieldError(
                    "valid_to", f"must be in the future and at most {self._policy.max_days} days"
                )
            )
        if errors:
            raise _invalid(errors)
        return new

    def _new_request(
        self, caller: Caller, new: NewRequest, key: str | None, now: datetime
    ) -> ConsentRequest:
        generation = caller.generation or self._policy.generation
        return ConsentRequest(
            id=uuid.uuid4(),
            client_id=caller.client_id,
            requestor_org=new.requestor,
            subject_org=new.subject,
            resource=self._policy.resource_for(generation),
            reference=new.reference,
            external_reference=new.external_reference,
            language=new.language,
            return_url=new.return_url,
            state=State.PENDING,
            state_reason=None,
            generation=generation,
            altinn_consent_id=None,
            valid_to=new.valid_to or now + timedelta(days=self._policy.max_days),
            idempotency_key=key,
            created_at=now,
            updated_at=now,
        )

    async def get(self, caller: Caller, request_id: str) -> dict[str, Any]:
        async with self._units() as uow:
            request = await _owned(uow, caller, request_id)
        return self.render(request)

    async def history(self, caller: Caller, request_id: str) -> dict[str, Any]:
        async with self._units() as uow:
            request = await _owned(uow, caller, request_id)
            entries = await uow.audit.history(OBJECT, str(request.id))
        return history_json(entries)

    async def page(
        self,
        caller: Caller,
        *,
        status: str | None,
        changed_after: str | None,
        cursor: str | None,
        limit: str | None,
    ) -> dict[str, Any]:
        try:
            state = parse_state(status)
            after = decode_cursor(cursor, self._cursor_key) if cursor else None
        except Invalid as exc:
            raise _invalid(exc.errors) from None
        since = _parse_since(changed_after)
        size = _parse_limit(limit)
        async with self._units() as uow:
            items = await uow.consents.page(
                caller.client_id, state=state, changed_after=since, after=after, limit=size + 1
            )
        more = len(items) > size
        items = items[:size]
        return {
            "items": [self.render(item) for item in items],
            "next_cursor": encode_cursor(items[-1], self._cursor_key) if more else None,
        }

    async def cancel(
        self, caller: Caller, request_id: str, *, correlation_id: str | None
    ) -> dict[str, Any]:
        now = self._now()
        async with self._units() as uow:
            request = await _owned(uow, caller, request_id)
            flow = ConsentFlow(str(request.id), request.state, request.valid_to)
            try:
                moved, effects = step(flow, Cancelled(), now=now)
            except InvalidTransition:
                raise Conflict(
                    f"A {request.state.value} request cannot be cancelled", code="invalid_state"
                ) from None
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason="client", at=now
            ):
                raise Conflict("The request changed meanwhile; try again", code="state_changed")
            if request.state is State.GRANTED:
                await uow.consents.end_grant(request.id, at=now, by=RevokedBy.CLIENT, reason=None)
            await uow.audit.append(
                audit_transition(
                    request,
                    "cancelled",
                    actor=("client", str(caller.client_id)),
                    state=moved.state,
                    reason="client",
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            await publish(uow, request, moved, effects, at=now)
            updated = await uow.consents.get(request.id, client_id=caller.client_id)
            await uow.commit()
        assert updated is not None
        if self._withdrawals is not None:
            # After the commit: the broker has stopped using the consent whatever Altinn says.
            await self._withdrawals.withdraw(updated, actor=("client", str(caller.client_id)))
        return self.render(updated)


async def _owned(uow: UnitOfWork, caller: Caller, request_id: str) -> ConsentRequest:
    """The caller's request, or 404 — also for other clients' ids, so none leaks."""
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        raise NotFound("No such consent request") from None
    request = await uow.consents.get(parsed, client_id=caller.client_id)
    if request is None:
        raise NotFound("No such consent request")
    return request


def _replay(
    stored: str, fingerprint: str, status: int | None, body: Any
) -> tuple[int, dict[str, Any]]:
    if stored != fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was used with another body", code="idempotency_key_reused"
        )
    if status is None or body is None:
        raise Conflict("A request with this Idempotency-Key is in progress", code="in_progress")
    return status, dict(body)


def _check_key(key: str | None) -> None:
    if key is not None and not (
        0 < len(key) <= 255 and key.isascii() and key.isprintable() and key.strip() == key
    ):
        raise BadRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters",
            code="invalid_idempotency_key",
        )


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("no offset")
        # In UTC at once: an offset at the ends of the calendar would overflow later.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid(
            [FieldError("changed_after", "must be an ISO 8601 date-time with offset")]
        ) from None


def _parse_limit(value: str | None) -> int:
    if value is None:
        return 50
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 100:
        raise _invalid([FieldError("limit", "must be an integer from 1 to 100")])
    return int(value)


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed(
        "The request is not valid; see errors",
        extensions={"errors": [{"field": e.field, "message": e.message} for e in errors]},
    )
