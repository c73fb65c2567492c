"""The revocation poller with fakes: the token is persisted only after a page is handled, an event
is believed only once Altinn confirms it, and each revocation queues its webhook event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from broker.consent.model import ConsentRequest, Generation, Grant, Language, State
from broker.consent.ports import AltinnState, AltinnStatus, UpstreamRefused, UpstreamUnavailable
from broker.consent.revocations import PollReport, RevocationPoller, cursor_name
from tests.unit.fakes import FakeAltinn, FakeUnits

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
AUTHORITY = "310200018"


@dataclass(frozen=True)
class Event:
    consent_id: uuid.UUID
    event_type: str
    created: datetime


@dataclass(frozen=True)
class Page:
    events: tuple[Event, ...]
    next: str | None
    cursor: str | None


@dataclass
class FakeFeed:
    """Pages by continuation token; records what was asked."""

    pages: dict[str | None, Page] = field(default_factory=dict)
    asked: list[tuple[str | None, str, datetime | None]] = field(default_factory=list)
    error: Exception | None = None

    async def events(
        self, continuation: str | None, *, requestor_org: str, created_after: datetime | None = None
    ) -> Page:
        self.asked.append((continuation, requestor_org, created_after))
        if self.error is not None:
            raise self.error
        return self.pages.get(continuation, Page((), None, continuation))


def _granted(altinn_id: uuid.UUID) -> ConsentRequest:
    return ConsentRequest(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        requestor_org=AUTHORITY,
        subject_org="310100013",
        resource="digdir-oppdragutenlandskevirksomheter-skatteetaten",
        reference="case",
        external_reference=None,
        language=Language.NB,
        return_url="https://portal.example/return",
        state=State.GRANTED,
        state_reason=None,
        generation=Generation.ALTINN3,
        altinn_consent_id=altinn_id,
        valid_to=NOW + timedelta(days=30),
        idempotency_key=None,
        created_at=NOW,
        updated_at=NOW,
        grant=Grant(NOW, NOW + timedelta(days=30)),
    )


def _altinn(altinn_id: uuid.UUID, status: AltinnStatus) -> AltinnState:
    return AltinnState(
        id=altinn_id,
        status=status,
        subject_org="310100013",
        requestor_org=AUTHORITY,
        resources=("digdir-oppdragutenlandskevirksomheter-skatteetaten",),
        valid_to=NOW + timedelta(days=30),
        consented_at=NOW,
    )


def _setup(status: AltinnStatus) -> tuple[FakeUnits, FakeFeed, FakeAltinn, ConsentRequest]:
    altinn_id = uuid.uuid4()
    units = FakeUnits()
    request = _granted(altinn_id)
    units.consents.requests[request.id] = request
    feed = FakeFeed(
        {
            None: Page((Event(uuid.uuid4(), "Accepted", NOW),), "t1", "t1"),
            "t1": Page((Event(altinn_id, "Revoked", NOW),), None, "t1"),
        }
    )
    return units, feed, FakeAltinn(state=_altinn(altinn_id, status)), request


def _poller(units: FakeUnits, feed: FakeFeed, altinn: FakeAltinn) -> RevocationPoller:
    return RevocationPoller(units, feed=feed, altinn=altinn, now=lambda: NOW, max_days=90)


async def test_a_confirmed_revocation_ends_the_grant_and_queues_its_event() -> None:
    units, feed, altinn, request = _setup(AltinnStatus.REVOKED)
    report = await _poller(units, feed, altinn).run_once()
    assert report == PollReport(requestors=1, events=2, revoked=1, unavailable=0)
    assert units.consents.requests[request.id].state is State.REVOKED
    [notice] = units.outbox.notices
    assert notice.event_type == "consent_request.revoked"
    assert notice.payload["data"]["revocation"] == {
        "by": "end_user",
        "reason": "withdrawn_in_altinn",
    }
    assert [r.action for r in units.audit.records] == ["revoked"]
    # First read from the horizon (90 + 1 days back), then by token; the token is kept.
    assert feed.asked == [(None, AUTHORITY, NOW - timedelta(days=91)), ("t1", AUTHORITY, None)]
    assert units.cursors.values == {cursor_name(AUTHORITY): "t1"}

    # The next run starts from the token; the partial page is read again, changing nothing.
    feed.asked.clear()
    again = await _poller(units, feed, altinn).run_once()
    assert again == PollReport(requestors=0, events=0, revoked=0, unavailable=0)


async def test_an_event_altinn_does_not_bear_out_changes_nothing() -> None:
    units, feed, altinn, request = _setup(AltinnStatus.ACCEPTED)
    report = await _poller(units, feed, altinn).run_once()
    assert report.revoked == 0
    assert units.consents.requests[request.id].state is State.GRANTED
    assert units.outbox.notices == []


async def test_deleted_in_altinn_is_a_revocation_too() -> None:
    units, feed, altinn, _ = _setup(AltinnStatus.DELETED)
    assert (await _poller(units, feed, altinn).run_once()).revoked == 1
    assert units.outbox.notices[0].payload["data"]["revocation"] == {
        "by": "end_user",
        "reason": "deleted_in_altinn",
    }


async def test_when_altinn_cannot_be_asked_the_token_is_not_advanced() -> None:
    units, feed, altinn, request = _setup(AltinnStatus.REVOKED)
    altinn.unavailable = True
    report = await _poller(units, feed, altinn).run_once()
    # (a requestor's events count once its feed was read to the end)
    assert report == PollReport(requestors=1, events=0, revoked=0, unavailable=1)
    # The first page was handled (its token kept); the second is read again next time.
    assert units.consents.requests[request.id].state is State.GRANTED
    assert units.cursors.values == {cursor_name(AUTHORITY): "t1"}
    altinn.unavailable = False
    assert (await _poller(units, feed, altinn).run_once()).revoked == 1


async def test_an_unreadable_or_refused_feed_is_reported_and_nothing_changes() -> None:
    for error in (UpstreamUnavailable("down"), UpstreamRefused("forbidden")):
        units, feed, altinn, request = _setup(AltinnStatus.REVOKED)
        feed.error = error
        report = await _poller(units, feed, altinn).run_once()
        assert report == PollReport(requestors=1, events=0, revoked=0, unavailable=1)
        assert units.cursors.values == {}
        assert units.consents.requests[request.id].state is State.GRANTED


async def test_events_of_unknown_or_ended_requests_ask_altinn_nothing() -> None:
    units, feed, altinn, request = _setup(AltinnStatus.REVOKED)
    units.consents.requests[request.id] = replace(request, state=State.CANCELLED)
    units.consents.requests[uuid.uuid4()] = _granted(uuid.uuid4())  # keeps a requestor watched
    altinn.unavailable = True  # would be reported if it were asked
    report = await _poller(units, feed, altinn).run_once()
    assert report == PollReport(requestors=1, events=2, revoked=0, unavailable=0)
