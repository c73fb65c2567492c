"""The consent flow as a pure state machine: no I/O, no clock (``now`` is passed in).

Theory of operation. A consent request is created ``pending`` by the client's POST. When the
person opens the consent link, the broker creates the Altinn request and sends the browser
there (``Started``: pending → redirected; opening the link again keeps it redirected, the Altinn
request is re-posted idempotently). The person's answer comes back through the redirect or is
found by the reconciler; either way it is only believed once Altinn and Maskinporten confirm it
(``Granted``/``Denied``). A grant ends by reaching ``valid_to`` (``Expired``), by revocation
(end user in Altinn, Skatteetaten ``-007``, an admin: ``Revoked``) or by the client
(``Cancelled``). ``Failed`` ends a flow that cannot complete. Final states accept nothing.

Diagram (every edge is in ``TRANSITIONS``; a test checks that the two agree)::

    pending    --Started-->   redirected
    pending    --Granted-->   granted
    pending    --Denied-->    denied
    pending    --Expired-->   expired
    pending    --Revoked-->   revoked
    pending    --Cancelled--> cancelled
    pending    --Failed-->    failed
    redirected --Started-->   redirected
    redirected --Granted-->   granted
    redirected --Denied-->    denied
    redirected --Expired-->   expired
    redirected --Revoked-->   revoked
    redirected --Cancelled--> cancelled
    redirected --Failed-->    failed
    granted    --Expired-->   expired
    granted    --Revoked-->   revoked
    granted    --Cancelled--> cancelled

``pending --Granted-->`` exists for the reconciler: the Altinn request may have been created
and answered although the broker never recorded the redirect (a crash between the two).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from broker.consent.model import RevokedBy, State

__all__ = [
    "FINAL_STATES",
    "TRANSITIONS",
    "Cancelled",
    "ConsentFlow",
    "Denied",
    "Event",
    "Expired",
    "Failed",
    "Granted",
    "InvalidTransition",
    "Notify",
    "Revoked",
    "Started",
    "step",
]


@dataclass(frozen=True)
class ConsentFlow:
    """What the machine needs to know about a consent request."""

    id: str
    state: State
    valid_to: datetime
    reason: str | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Granted:
    consented_at: datetime
    valid_to: datetime


@dataclass(frozen=True)
class Denied:
    pass


@dataclass(frozen=True)
class Expired:
    pass


@dataclass(frozen=True)
class Revoked:
    by: RevokedBy
    reason: str


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class Failed:
    reason: str


Event = Started | Granted | Denied | Expired | Revoked | Cancelled | Failed

_OPEN = {
    Started: State.REDIRECTED,
    Granted: State.GRANTED,
    Denied: State.DENIED,
    Expired: State.EXPIRED,
    Revoked: State.REVOKED,
    Cancelled: State.CANCELLED,
    Failed: State.FAILED,
}

TRANSITIONS: dict[State, dict[type[Event], State]] = {
    State.PENDING: dict(_OPEN),
    State.REDIRECTED: dict(_OPEN),
    State.GRANTED: {
        Expired: State.EXPIRED,
        Revoked: State.REVOKED,
        Cancelled: State.CANCELLED,
    },
    State.DENIED: {},
    State.EXPIRED: {},
    State.REVOKED: {},
    State.CANCELLED: {},
    State.FAILED: {},
}

FINAL_STATES = frozenset(state for state, edges in TRANSITIONS.items() if not edges)


@dataclass(frozen=True)
class Notify:
    """Tell the client (webhook) that the request reached ``state``. ``detail`` says why a
    revocation happened (e.g. Skatteetaten's ``kode``); ``reason`` names who or what."""

    state: State
    reason: str | None
    detail: str | None = None


class InvalidTransition(Exception):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{type(event).__name__} is not allowed in state {state}")
        self.state = state
        self.event = event


def step(flow: ConsentFlow, event: Event, *, now: datetime) -> tuple[ConsentFlow, list[Notify]]:
    """Apply ``event``; return the new flow and the effects the shell must carry out."""
    target = TRANSITIONS[flow.state].get(type(event))
    if target is None:
        raise InvalidTransition(flow.state, event)
    if isinstance(event, Granted) and event.valid_to <= now:
        # A grant that is already over is not a grant; the shell records it as expired.
        raise InvalidTransition(flow.state, event)
    reason = _reason(event)
    changed = replace(flow, state=target, reason=reason, changed_at=now)
    if isinstance(event, Granted):
        changed = replace(changed, valid_to=event.valid_to)
    detail = event.reason if isinstance(event, Revoked) else None
    effects = [] if target == flow.state else [Notify(target, reason, detail)]
    return changed, effects


def _reason(event: Event) -> str | None:
    if isinstance(event, Revoked):
        return event.by.value
    if isinstance(event, Failed):
        return event.reason
    return None
