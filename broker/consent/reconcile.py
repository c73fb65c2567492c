"""The reconciler: no request stays pending, redirected or granted past its validity, and an
answer given without a return to the broker (a closed tab, an answer in the Altinn portal) is
still recorded.

Each pass takes the next batch of open requests in (updated_at, id) order, continuing where the
last pass stopped and starting over at the end, so requests that nobody answers (and that a
check therefore does not change) cannot hide newer ones. A request past ``valid_to`` expires. A
request with an Altinn id is confirmed exactly as a browser return would be (Altinn, then
Maskinporten), under the same single-use claim, so a return arriving at the same moment cannot
race it. Then the grants whose ``valid_to`` has passed expire (the expiry job), so the client
hears ``consent_request.expired`` at ``valid_to`` (within one interval) instead of at the next
data call; each expiry goes through the state machine and queues its event with the change.
Each pass also retries the withdrawals at Altinn 2 that failed (``withdraw.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from broker.consent.confirm import Confirmer
from broker.consent.machine import ConsentFlow, Expired, InvalidTransition, step
from broker.consent.model import ConsentRequest, State
from broker.consent.notices import publish
from broker.consent.ports import PageCursor, UnitOfWork, UpstreamUnavailable
from broker.consent.service import audit_transition
from broker.consent.withdraw import Withdrawals

__all__ = ["Reconciler", "Report"]

logger = logging.getLogger("broker.consent.reconcile")
_ACTOR = ("system", "reconciler")


@dataclass(frozen=True)
class Report:
    checked: int
    changed: int
    unavailable: int
    grants_expired: int = 0
    withdrawn: int = 0


class Reconciler:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        confirmer: Confirmer,
        now: Callable[[], datetime],
        batch: int = 100,
        withdrawals: Withdrawals | None = None,
    ) -> None:
        self._units = units
        self._confirmer = confirmer
        self._withdrawals = withdrawals
        self._now = now
        self._batch = batch
        self._after: PageCursor | None = None

    async def run_once(self) -> Report:
        async with self._units() as uow:
            requests = await uow.consents.open_requests(limit=self._batch, after=self._after)
        # Round robin: continue after this batch next time, or start over when it was the last.
        last = requests[-1] if len(requests) == self._batch else None
        self._after = PageCursor(last.updated_at, last.id) if last else None
        changed = unavailable = 0
        for request in requests:
            try:
                changed += await self._one(request)
            except UpstreamUnavailable:
                unavailable += 1
        grants_expired = await self.expire_grants()
        withdrawn = await self._withdrawals.run_due(limit=self._batch) if self._withdrawals else 0
        if changed or unavailable or grants_expired or withdrawn:
            logger.info(
                "reconciled",
                extra={
                    "checked": len(requests),
                    "changed": changed,
                    "unavailable": unavailable,
                    "grants_expired": grants_expired,
                    "withdrawn": withdrawn,
                },
            )
        return Report(
            len(requests),
            changed,
            unavailable,
            grants_expired=grants_expired,
            withdrawn=withdrawn,
        )

    async def expire_grants(self, *, max_batches: int = 10) -> int:
        """Expire granted requests past ``valid_to``, oldest first; return how many."""
        expired = 0
        for _ in range(max_batches):
            async with self._units() as uow:
                due = await uow.consents.due_grants(now=self._now(), limit=self._batch)
            for request in due:
                expired += await self._expire(request)
            if len(due) < self._batch:
                break
        return expired

    async def _one(self, request: ConsentRequest) -> int:
        if request.valid_to <= self._now():
            return await self._expire(request)
        if request.altinn_consent_id is None:
            return 0
        async with self._units() as uow:
            claimed = await uow.consents.claim_return(request.id, at=self._now())
            await uow.commit()
        if not claimed:
            return 0  # pending (claims need redirected) or a return is being handled right now
        try:
            outcome = await self._confirmer.confirm(request, actor=_ACTOR, correlation_id=None)
        finally:
            async with self._units() as uow:
                current = await uow.consents.get(request.id, client_id=None)
                if current is not None and current.state in (State.PENDING, State.REDIRECTED):
                    await uow.consents.release_return(request.id)
                    await uow.commit()
        return int(outcome.changed)

    async def _expire(self, request: ConsentRequest) -> int:
        now = self._now()
        try:
            moved, effects = step(
                ConsentFlow(str(request.id), request.state, request.valid_to), Expired(), now=now
            )
        except InvalidTransition:
            return 0
        async with self._units() as uow:
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason="valid_to", at=now
            ):
                return 0
            if request.state is State.GRANTED:
                await uow.consents.end_grant(request.id, at=now, by=None, reason="valid_to")
            await uow.audit.append(
                audit_transition(
                    request, "expired", actor=_ACTOR, state=moved.state, reason="valid_to"
                ),
                at=now,
            )
            await publish(uow, request, moved, effects, at=now)
            await uow.commit()
        return 1
