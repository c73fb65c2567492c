"""Giving a consent up at Altinn, and an administrator's revocation.

When the client cancels a request or withdraws its grant, or an administrator revokes a grant,
the broker stops using the consent at once (a local state change, committed first). Then, where
the generation allows it, Altinn is told: Altinn 2 deletes an unanswered request or discards a
grant's rights (``DELETE /api/authorization/token/{code}``, ``altinn-consent.md`` §4.1); Altinn 3
has no consumer-side call (§2.2). A failed ``DELETE`` loses nothing: the request stays due and
the reconciler's pass tries it again (``run_due``), until Altinn has been told.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from broker.consent.machine import ConsentFlow, InvalidTransition, Revoked, step
from broker.consent.model import ConsentRequest, RevokedBy, State
from broker.consent.notices import publish
from broker.consent.ports import (
    AuditRecord,
    Gateways,
    UnitOfWork,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.service import OBJECT, audit_transition
from broker.errors import Conflict, NotFound

__all__ = ["Withdrawals"]

logger = logging.getLogger("broker.consent.withdraw")
_SYSTEM = ("system", "withdrawals")


class Withdrawals:
    def __init__(
        self, units: Callable[[], UnitOfWork], *, gateways: Gateways, now: Callable[[], datetime]
    ) -> None:
        self._units = units
        self._gateways = gateways
        self._now = now

    async def revoke(
        self,
        request_id: uuid.UUID,
        *,
        reason: str,
        actor: tuple[str, str],
        correlation_id: str | None = None,
    ) -> ConsentRequest:
        """End a request or its grant as an administrator: ``revoked`` (``revoked_by`` admin),
        then withdrawn at Altinn where the generation allows. 404 for an unknown id, 409 for a
        request that has ended already."""
        now = self._now()
        async with self._units() as uow:
            request = await uow.consents.get(request_id, client_id=None)
            if request is None:
                raise NotFound("No such consent request")
            event = Revoked(RevokedBy.ADMIN, reason)
            try:
                moved, effects = step(
                    ConsentFlow(str(request.id), request.state, request.valid_to), event, now=now
                )
            except InvalidTransition:
                raise Conflict(
                    f"A {request.state.value} request cannot be revoked", code="invalid_state"
                ) from None
            # The reason is the administrator's text; the state's reason says who (admin).
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason=moved.reason, at=now
            ):
                raise Conflict("The request changed meanwhile; try again", code="state_changed")
            if request.state is State.GRANTED:
                await uow.consents.end_grant(
                    request.id, at=now, by=RevokedBy.ADMIN, reason=reason[:500]
                )
            await uow.audit.append(
                audit_transition(
                    request,
                    "revoked",
                    actor=actor,
                    state=moved.state,
                    reason=moved.reason,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            # The client's consent_request.revoked event, queued with the change (the outbox).
            await publish(uow, request, moved, effects, at=now)
            updated = await uow.consents.get(request.id, client_id=None)
            await uow.commit()
        assert updated is not None
        await self.withdraw(updated, actor=actor)
        return updated

    async def withdraw(self, request: ConsentRequest, *, actor: tuple[str, str]) -> bool:
        """Tell Altinn the broker gives the consent up; True once Altinn knows. Failures are
        logged and audited, never raised: the reconciler tries again."""
        gateway = self._gateways.get(request.generation)
        if gateway is None or request.altinn_consent_id is None or request.altinn_withdrawn_at:
            return False
        try:
            done = await gateway.altinn.withdraw(
                request.altinn_consent_id,
                requestor_org=request.requestor_org,
                granted=request.grant is not None,
            )
        except (UpstreamUnavailable, UpstreamRefused) as exc:
            code = exc.code if isinstance(exc, UpstreamRefused) else "unavailable"
            logger.warning("withdrawal at Altinn failed (%s); it will be tried again", code)
            await self._audit(request, actor, outcome="failure", reason=code)
            return False
        if not done:
            return False  # this generation has no such call (Altinn 3)
        now = self._now()
        async with self._units() as uow:
            await uow.consents.mark_withdrawn(request.id, at=now)
            await uow.audit.append(self._record(request, actor, "success", None), at=now)
            await uow.commit()
        return True

    async def run_due(self, *, limit: int = 100) -> int:
        """Withdrawals that failed before (Altinn was down): try each once more."""
        async with self._units() as uow:
            due = await uow.consents.withdrawals_due(limit=limit)
        done = 0
        for request in due:
            done += await self.withdraw(request, actor=_SYSTEM)
        return done

    async def _audit(
        self, request: ConsentRequest, actor: tuple[str, str], *, outcome: str, reason: str
    ) -> None:
        async with self._units() as uow:
            await uow.audit.append(self._record(request, actor, outcome, reason), at=self._now())
            await uow.commit()

    @staticmethod
    def _record(
        request: ConsentRequest, actor: tuple[str, str], outcome: str, reason: str | None
    ) -> AuditRecord:
        return AuditRecord(
            actor_type=actor[0],
            actor_id=actor[1],
            action="altinn.withdraw",
            object_type=OBJECT,
            object_id=str(request.id),
            client_id=request.client_id,
            outcome=outcome,
            reason=reason,
            details={"generation": request.generation.value, "granted": request.grant is not None},
        )
