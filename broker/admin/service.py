"""The operators' use cases on consent requests and the audit trail: search, inspect, revoke,
export a request's trail, verify the whole chain.

Revocation goes through the consent state machine exactly as the other revocations do (the
Altinn events poller, the relay's ``-007``): ``step`` with ``Revoked(ADMIN, reason)``, a
compare-and-set move, the grant ended, the audit row and the client's
``consent_request.revoked`` webhook event in one transaction. The relay then refuses the
request at once with ``409 consent_revoked_by_admin``. After the commit, an Altinn 2 consent is
also given up at Altinn 2 (``consent.withdraw``: ``DELETE /api/authorization/token/{code}``; a
failure is retried by the reconciler).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from broker.admin.auth import Actor
from broker.admin.ports import AdminUnit, AuditEntry, ChainReport, ClientDetails
from broker.admin.schemas import (
    audit_json,
    decode_cursor,
    encode_cursor,
    parse_filters,
    parse_reason,
)
from broker.consent.machine import ConsentFlow, InvalidTransition, Revoked, step
from broker.consent.model import ConsentRequest, RevokedBy, State
from broker.consent.notices import notices
from broker.consent.service import OBJECT, audit_transition
from broker.errors import Conflict, NotFound

__all__ = ["REVOCABLE", "AdminService", "RequestDetail", "SearchPage"]

REVOCABLE = (State.PENDING, State.REDIRECTED, State.GRANTED)
PAGE_SIZE = 50

# Tells Altinn the broker gives a consent up (``Withdrawals.withdraw``); never raises.
Withdraw = Callable[[ConsentRequest, tuple[str, str]], Awaitable[bool]]


@dataclass(frozen=True)
class SearchPage:
    items: list[ConsentRequest]
    next_cursor: str | None


@dataclass(frozen=True)
class RequestDetail:
    request: ConsentRequest
    client: ClientDetails | None
    events: list[AuditEntry]  # every audit row about the request, oldest first

    @property
    def revocable(self) -> bool:
        return self.request.state in REVOCABLE


class AdminService:
    def __init__(
        self,
        units: Callable[[], AdminUnit],
        *,
        now: Callable[[], datetime],
        withdraw: Withdraw | None = None,
    ) -> None:
        self._units = units
        self._now = now
        self._withdraw = withdraw

    async def search(
        self, query: dict[str, str], *, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> SearchPage:
        filters = parse_filters(query)
        before = decode_cursor(cursor)
        async with self._units() as uow:
            items = await uow.consents.search(filters, before=before, limit=limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return SearchPage(items, encode_cursor(items[-1]) if more else None)

    async def clients(self) -> list[ClientDetails]:
        async with self._units() as uow:
            return await uow.clients.all_details()

    async def detail(self, request_id: str) -> RequestDetail:
        parsed = _parse_id(request_id)
        async with self._units() as uow:
            request = await _request(uow, parsed)
            client = await uow.clients.details(request.client_id)
            events = await uow.audit.events(OBJECT, str(request.id))
        return RequestDetail(request, client, events)

    async def revoke(
        self, actor: Actor, request_id: str, reason: Any, *, correlation_id: str | None
    ) -> ConsentRequest:
        actor.require_admin()
        why = parse_reason(reason)
        parsed = _parse_id(request_id)
        now = self._now()
        async with self._units() as uow:
            request = await _request(uow, parsed)
            flow = ConsentFlow(str(request.id), request.state, request.valid_to)
            try:
                moved, effects = step(flow, Revoked(RevokedBy.ADMIN, why), now=now)
            except InvalidTransition:
                raise Conflict(
                    f"A {request.state.value} request cannot be revoked; nothing changed",
                    code="invalid_state",
                ) from None
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason=moved.reason, at=now
            ):
                raise Conflict("The request changed meanwhile; look again", code="state_changed")
            if request.state is State.GRANTED:
                await uow.consents.end_grant(request.id, at=now, by=RevokedBy.ADMIN, reason=why)
            record = audit_transition(
                request,
                "revoked",
                actor=("admin", actor.username),
                state=moved.state,
                reason=why,
                correlation_id=correlation_id,
            )
            details = {**record.details, "via": actor.via, "previous_state": request.state.value}
            await uow.audit.append(replace(record, details=details), at=now)
            # The client's consent_request.revoked event, by the same rules as every other
            # change's (consent.notices), queued in this transaction (the outbox).
            for notice in notices(request, moved, effects, at=now):
                await uow.outbox.add(notice)
            updated = await uow.consents.get(request.id, client_id=None)
            await uow.commit()
        assert updated is not None
        if self._withdraw is not None:
            # After the commit: the broker has stopped using the consent whatever Altinn says.
            await self._withdraw(updated, ("admin", actor.username))
        return updated

    async def export(
        self, actor: Actor, request_id: str, *, correlation_id: str | None
    ) -> dict[str, Any]:
        """The request and every audit row about it, as JSON. The export is audited too."""
        parsed = _parse_id(request_id)
        now = self._now()
        async with self._units() as uow:
            request = await _request(uow, parsed)
            entries = await uow.audit.events(OBJECT, str(request.id))
            await uow.audit.append(
                actor.audit(
                    "audit.exported",
                    OBJECT,
                    str(request.id),
                    client_id=request.client_id,
                    correlation_id=correlation_id,
                    details={"rows": len(entries)},
                ),
                at=now,
            )
            await uow.commit()
        return audit_json(request, entries, exported_by=actor.username, at=now)

    async def recent_audit(self, *, before: int | None, limit: int = 100) -> list[AuditEntry]:
        async with self._units() as uow:
            return await uow.audit.recent(before=before, limit=limit)

    async def verify(self, *, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
        async with self._units() as uow:
            return await uow.audit.verify(anchors=anchors)


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("No such consent request") from None


async def _request(uow: AdminUnit, request_id: uuid.UUID) -> ConsentRequest:
    request = await uow.consents.get(request_id, client_id=None)
    if request is None:
        raise NotFound("No such consent request")
    return request
