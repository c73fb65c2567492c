"""Revocations in Altinn, found by reading Altinn 3's consent events feed.

Altinn pushes nothing for consent (``altinn-consent.md`` §4.2): a person who withdraws consent in
the Altinn portal shows up only as a ``Revoked`` event in ``GET /consentrequests/events``, a feed
per requestor (``to``) that hides events younger than Altinn's safety lag (300 s). So every
``BROKER_ALTINN_EVENTS_INTERVAL`` seconds, for each requestor that holds a grant here:

1. read the feed from the continuation token persisted for that requestor (``job_cursors``,
   ``altinn3_events:<orgnr>``); without one, from ``valid_to``'s horizon (``max_days`` + 1 days
   back), as no older grant can still be live;
2. for a ``Revoked`` (or ``Deleted``) event of a request that is ``granted`` here, re-read the
   request from Altinn with our own credentials, because an event is only a hint; only when
   Altinn says ``Revoked``/``Deleted`` does the request become ``revoked`` (by ``end_user``),
   through the state machine, with its webhook event queued in the same transaction;
3. persist the page's token only after its events were handled, so a crash or an unreachable
   Altinn re-reads the page next time. A partial page keeps the token it was read with (the
   feed gives no later one), so its events are read again: acting on them is idempotent, as a
   request that is no longer granted is skipped without asking Altinn.

The safety lag means a revocation is seen 5 minutes after it happened at the earliest, plus
up to one interval; until then the relay still refuses the data at once when Maskinporten or
Skatteetaten (``-007``) does. Accepted and rejected events are left to the reconciler.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.consent.machine import ConsentFlow, InvalidTransition, Revoked, step
from broker.consent.model import ConsentRequest, RevokedBy, State
from broker.consent.notices import publish
from broker.consent.ports import (
    AltinnConsents,
    AltinnFeed,
    AltinnStatus,
    UnitOfWork,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.service import audit_transition

__all__ = ["PollReport", "RevocationPoller", "cursor_name"]

logger = logging.getLogger("broker.consent.revocations")
_ACTOR = ("system", "altinn-events")
_WITHDRAWN = {"revoked", "deleted"}
_ENDED = {AltinnStatus.REVOKED: "withdrawn_in_altinn", AltinnStatus.DELETED: "deleted_in_altinn"}


def cursor_name(requestor_org: str) -> str:
    return f"altinn3_events:{requestor_org}"


@dataclass(frozen=True)
class PollReport:
    requestors: int
    events: int
    revoked: int
    unavailable: int  # requestors whose feed (or a re-read) could not be read this time


class RevocationPoller:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        feed: AltinnFeed,
        altinn: AltinnConsents,
        now: Callable[[], datetime],
        max_days: int,
        max_pages: int = 20,
    ) -> None:
        self._units = units
        self._feed = feed
        self._altinn = altinn
        self._now = now
        self._horizon = timedelta(days=max_days + 1)
        self._max_pages = max_pages

    async def run_once(self) -> PollReport:
        async with self._units() as uow:
            requestors = await uow.consents.granted_requestors()
        events = revoked = unavailable = 0
        for org in requestors:
            try:
                seen, ended = await self._poll(org)
            except UpstreamUnavailable:
                unavailable += 1
                continue
            except UpstreamRefused as exc:
                # E.g. the requestor has not delegated read access: nothing to do but say so.
                logger.warning("altinn refused the events feed of a requestor: %s", exc.code)
                unavailable += 1
                continue
            events += seen
            revoked += ended
        if revoked or unavailable:
            logger.info(
                "altinn events read",
                extra={"requestors": len(requestors), "revoked": revoked},
            )
        return PollReport(len(requestors), events, revoked, unavailable)

    async def _poll(self, org: str) -> tuple[int, int]:
        name = cursor_name(org)
        async with self._units() as uow:
            token = await uow.cursors.get(name)
        start = None if token is not None else self._now() - self._horizon
        seen = ended = 0
        for _ in range(self._max_pages):
            page = await self._feed.events(token, requestor_org=org, created_after=start)
            for event in page.events:
                seen += 1
                if event.event_type.lower() in _WITHDRAWN:
                    ended += await self._check(event.consent_id)
            if page.cursor is not None and page.cursor != token:
                async with self._units() as uow:
                    await uow.cursors.put(name, page.cursor, at=self._now())
                    await uow.commit()
                token, start = page.cursor, None
            if page.next is None:
                break
        return seen, ended

    async def _check(self, altinn_id: uuid.UUID) -> int:
        async with self._units() as uow:
            request = await uow.consents.by_altinn_id(altinn_id)
        if request is None or request.state is not State.GRANTED:
            return 0  # not ours, or already ended: nothing to ask Altinn
        try:
            state = await self._altinn.status(altinn_id, requestor_org=request.requestor_org)
        except UpstreamRefused as exc:
            logger.warning("altinn refused a re-read after a revocation event: %s", exc.code)
            return 0
        reason = _ENDED.get(state.status)
        if reason is None:
            return 0  # the event is not borne out by the request itself: ignore it
        return await self._revoke(request, reason)

    async def _revoke(self, request: ConsentRequest, reason: str) -> int:
        now = self._now()
        try:
            moved, effects = step(
                ConsentFlow(str(request.id), request.state, request.valid_to),
                Revoked(RevokedBy.END_USER, reason),
                now=now,
            )
        except InvalidTransition:
            return 0
        async with self._units() as uow:
            if not await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason=moved.reason, at=now
            ):
                return 0
            await uow.consents.end_grant(request.id, at=now, by=RevokedBy.END_USER, reason=reason)
            await uow.audit.append(
                audit_transition(
                    request, "revoked", actor=_ACTOR, state=moved.state, reason=moved.reason
                ),
                at=now,
            )
            await publish(uow, request, moved, effects, at=now)
            await uow.commit()
        return 1
