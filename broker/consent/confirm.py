"""Believe an answer only when Altinn and Maskinporten both confirm it.

The redirect back from Altinn proves nothing (its ``Status`` is a hint anyone can type). So the
request's state is read from Altinn and, when Altinn says Accepted, a consent token is obtained
from Maskinporten and its claims compared with the request: consent id, ``from``, ``to``, the
resource and ``validTo``. Only then is the grant recorded, with the token kept (encrypted) as
the receipt. The caller must hold the request's return claim, so no two confirmations race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from broker.consent.machine import (
    ConsentFlow,
    Denied,
    Event,
    Expired,
    Failed,
    Granted,
    InvalidTransition,
    step,
)
from broker.consent.model import ConsentRequest, Grant, State
from broker.consent.notices import publish
from broker.consent.ports import (
    AltinnState,
    AltinnStatus,
    ConsentUnavailable,
    Gateway,
    Gateways,
    UnitOfWork,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.service import audit_transition

__all__ = ["Confirmer", "Outcome"]

logger = logging.getLogger("broker.consent")

_ACTIONS = {
    State.GRANTED: "granted",
    State.DENIED: "denied",
    State.EXPIRED: "expired",
    State.FAILED: "failed",
}


@dataclass(frozen=True)
class Outcome:
    state: State  # the request's state afterwards (unchanged when nobody has answered yet)
    changed: bool


class Confirmer:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        gateways: Gateways,
        now: Callable[[], datetime],
    ) -> None:
        self._units = units
        self._gateways = gateways
        self._now = now

    def _gateway(self, request: ConsentRequest) -> Gateway:
        gateway = self._gateways.get(request.generation)
        if gateway is None:
            # A deployment without this generation's adapter: nothing to ask, try later.
            raise UpstreamUnavailable(f"no adapter for {request.generation.value}")
        return gateway

    async def confirm(
        self, request: ConsentRequest, *, actor: tuple[str, str], correlation_id: str | None
    ) -> Outcome:
        """Read Altinn (and Maskinporten) and record what they say. Raises UpstreamUnavailable
        when they cannot be asked; the request is then left as it was."""
        assert request.altinn_consent_id is not None
        try:
            state = await self._gateway(request).altinn.status(
                request.altinn_consent_id, requestor_org=request.requestor_org
            )
        except UpstreamRefused as exc:
            if request.state is State.PENDING and exc.code == "not_found":
                # Our id was stored but the POST never reached Altinn: nothing to confirm yet.
                return Outcome(request.state, changed=False)
            return await self._record(request, Failed(f"altinn_{exc.code}"), actor, correlation_id)
        event = await self._event_for(request, state)
        if event is None:
            return Outcome(request.state, changed=False)
        return await self._record(request, event[0], actor, correlation_id, receipt=event[1])

    async def _event_for(
        self, request: ConsentRequest, state: AltinnState
    ) -> tuple[Event, bytes | None] | None:
        if mismatch := _mismatch(request, state):
            logger.warning("altinn state does not match the request: %s", mismatch)
            return Failed("altinn_mismatch"), None
        if state.status is AltinnStatus.CREATED:
            return None
        if state.status is AltinnStatus.REJECTED:
            return Denied(), None
        if state.status is AltinnStatus.EXPIRED or state.valid_to <= self._now():
            return Expired(), None
        if state.status is not AltinnStatus.ACCEPTED:
            return Failed(f"altinn_{state.status.value.lower()}"), None
        return await self._token_event(request, state)

    async def _token_event(
        self, request: ConsentRequest, state: AltinnState
    ) -> tuple[Event, bytes | None]:
        assert request.altinn_consent_id is not None
        try:
            token = await self._gateway(request).tokens.consent_token(
                consent_id=request.altinn_consent_id,
                subject_org=request.subject_org,
                requestor_org=request.requestor_org,
            )
        except ConsentUnavailable as exc:
            logger.warning("maskinporten refused the consent token: %s", exc.code)
            return Failed("consent_not_confirmed"), None
        problems = [
            name
            for name, ok in (
                ("id", token.consent_id == request.altinn_consent_id),
                ("from", token.subject_org == request.subject_org),
                ("to", token.requestor_org == request.requestor_org),
                ("resource", request.resource in token.resources),
                ("validTo", abs((token.valid_to - state.valid_to).total_seconds()) < 1),
                ("expired", token.valid_to > self._now()),
            )
            if not ok
        ]
        if problems:
            logger.warning("consent token does not match the request: %s", ", ".join(problems))
            return Failed("token_mismatch"), None
        return Granted(token.consented_at, token.valid_to), token.token.encode()

    async def _record(
        self,
        request: ConsentRequest,
        event: Event,
        actor: tuple[str, str],
        correlation_id: str | None,
        *,
        receipt: bytes | None = None,
    ) -> Outcome:
        now = self._now()
        flow = ConsentFlow(str(request.id), request.state, request.valid_to)
        try:
            moved, effects = step(flow, event, now=now)
        except InvalidTransition:
            return Outcome(request.state, changed=False)
        async with self._units() as uow:
            valid_to = moved.valid_to if isinstance(event, Granted) else None
            if not await uow.consents.move(
                request.id,
                expected=request.state,
                to=moved.state,
                reason=moved.reason,
                at=now,
                valid_to=valid_to,
            ):
                current = await uow.consents.get(request.id, client_id=None)
                return Outcome(current.state if current else request.state, changed=False)
            if isinstance(event, Granted):
                await uow.consents.add_grant(
                    request, Grant(event.consented_at, event.valid_to), receipt=receipt or b""
                )
            await uow.audit.append(
                audit_transition(
                    request,
                    _ACTIONS[moved.state],
                    actor=actor,
                    state=moved.state,
                    reason=moved.reason,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            await publish(uow, request, moved, effects, at=now)
            await uow.commit()
        return Outcome(moved.state, changed=True)


def _mismatch(request: ConsentRequest, state: AltinnState) -> str | None:
    if state.id != request.altinn_consent_id:
        return "id"
    if state.subject_org != request.subject_org:
        return "from"
    if state.requestor_org != request.requestor_org:
        return "to"
    if request.resource not in state.resources:
        return "resource"
    return None
