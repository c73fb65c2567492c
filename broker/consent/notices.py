"""What a procurement system is told when one of its consent requests changes: webhook events.

The state machine says *that* a request reached a state (``Notify``); this module turns that into
the event the client receives, and ``publish`` queues it in the outbox of the unit of work that
makes the change, so the event exists exactly when the change does (transactional outbox).

Event types (the ``type`` of the payload; persisted, never renamed):

- ``consent_request.granted``: confirmed with Altinn and Maskinporten;
- ``consent_request.denied``: the person refused in Altinn;
- ``consent_request.expired``: ``valid_to`` passed, before an answer or after a grant;
- ``consent_request.revoked``: a grant ended early, with who (``revocation.by``: ``end_user`` in
  Altinn, ``skatteetaten`` with its ``-007``, ``admin``, or ``client`` for the client's own
  DELETE of a grant, whose status is then ``cancelled``) and why (``revocation.reason``);
- ``consent_request.failed``: the flow cannot complete.

A client cancelling a request that was never granted is told nothing: it made the change itself
and got the answer. Moving to ``redirected`` is not an event either. Payloads are thin: ids,
status, reasons and times, never a token, a personal number or the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from broker.consent.ids import uuid7
from broker.consent.machine import ConsentFlow, Notify
from broker.consent.model import ConsentRequest, RevokedBy, State
from broker.consent.ports import Notice, UnitOfWork

__all__ = ["REVOCATION_REASONS", "EventType", "notices", "publish"]


class EventType(StrEnum):
    GRANTED = "consent_request.granted"
    DENIED = "consent_request.denied"
    EXPIRED = "consent_request.expired"
    REVOKED = "consent_request.revoked"
    FAILED = "consent_request.failed"


_BY_STATE = {
    State.GRANTED: EventType.GRANTED,
    State.DENIED: EventType.DENIED,
    State.EXPIRED: EventType.EXPIRED,
    State.REVOKED: EventType.REVOKED,
    State.FAILED: EventType.FAILED,
}

# ``status_reason`` where the machine gives none: expiry always means ``valid_to`` passed, and
# only the client cancels (DELETE).
_DEFAULT_REASONS = {State.EXPIRED: "valid_to", State.CANCELLED: "client"}

# What ``revocation.reason`` says when the revoking side gave no reason of its own.
REVOCATION_REASONS = {
    RevokedBy.END_USER: "withdrawn_in_altinn",
    RevokedBy.SKATTEETATEN: "refused_by_skatteetaten",
    RevokedBy.ADMIN: "revoked_by_administrator",
    RevokedBy.CLIENT: "withdrawn_by_client",
}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_type(before: State, effect: Notify) -> EventType | None:
    if effect.state is State.CANCELLED:
        # The client's DELETE of a grant withdraws consent; of an open request, it is not news.
        return EventType.REVOKED if before is State.GRANTED else None
    return _BY_STATE.get(effect.state)


def _revocation(effect: Notify) -> dict[str, str] | None:
    if effect.state is State.REVOKED and effect.reason is not None:
        by = RevokedBy(effect.reason)
    elif effect.state is State.CANCELLED:
        by = RevokedBy.CLIENT
    else:
        return None
    return {"by": by.value, "reason": effect.detail or REVOCATION_REASONS[by]}


def payload(
    request: ConsentRequest, moved: ConsentFlow, effect: Notify, kind: EventType, at: datetime
) -> dict[str, Any]:
    """The JSON body (Standard Webhooks' recommended ``type``/``timestamp``/``data`` shape)."""
    return {
        "type": kind.value,
        "timestamp": _iso(at),
        "data": {
            "id": str(request.id),
            "status": effect.state.value,
            "status_reason": effect.reason or _DEFAULT_REASONS.get(effect.state),
            "requestor": request.requestor_org,
            "subject": request.subject_org,
            "external_reference": request.external_reference,
            "valid_to": _iso(moved.valid_to),
            "revocation": _revocation(effect),
        },
    }


def notices(
    request: ConsentRequest, moved: ConsentFlow, effects: Sequence[Notify], *, at: datetime
) -> list[Notice]:
    """The events for ``effects`` of moving ``request`` (as it was before) to ``moved``."""
    found = []
    for effect in effects:
        kind = _event_type(request.state, effect)
        if kind is None:
            continue
        found.append(
            Notice(
                id=uuid7(at),
                client_id=request.client_id,
                consent_request_id=request.id,
                event_type=kind.value,
                occurred_at=at,
                payload=payload(request, moved, effect, kind, at),
            )
        )
    return found


async def publish(
    uow: UnitOfWork,
    request: ConsentRequest,
    moved: ConsentFlow,
    effects: Sequence[Notify],
    *,
    at: datetime,
) -> None:
    """Queue the events of a change in ``uow``: call it before ``uow.commit()``."""
    for notice in notices(request, moved, effects, at=at):
        await uow.outbox.add(notice)
