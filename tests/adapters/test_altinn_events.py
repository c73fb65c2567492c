"""The consent events feed through the Altinn client: order, safety lag, paging by the opaque
continuation token, and the feed's wire format."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from broker.altinn import AltinnBadResponse, AltinnEvent, AltinnEventType, AltinnRefused
from broker.sandbox.consents import ConsentRecord, org_urn
from tests.adapters.altinn_support import (
    ALTINN_BASE,
    APPROVER,
    AUTHORITY,
    BROKER,
    RESOURCE,
    START,
    SUPPLIER,
    World,
    make_request,
    mock_client,
    sandbox_world,
)

EVENTS_URL = f"{ALTINN_BASE}/accessmanagement/api/v1/enterprise/consentrequests/events"


def _seed(w: World, count: int) -> None:
    """``count`` Created events for requests to AUTHORITY, straight into the fake's register."""
    for _ in range(count):
        record = ConsentRecord(
            id=uuid.uuid4(),
            from_party=org_urn(SUPPLIER),
            to_party=org_urn(AUTHORITY),
            handled_by=org_urn(BROKER),
            required_delegator=None,
            valid_to=START + timedelta(days=30),
            consent_rights=[
                {
                    "action": ["consent"],
                    "resource": [{"type": "urn:altinn:resource", "value": RESOURCE}],
                    "metadata": {},
                }
            ],
            request_message=None,
            redirect_url="https://broker.example/r",
            portal_view_mode="Hide",
            created=w.sandbox.clock.now(),
        )
        w.sandbox.register.add(record, performed_by=org_urn(AUTHORITY))


async def test_events_come_oldest_first_with_their_types() -> None:
    async with sandbox_world() as w:
        first, second = make_request(), make_request()
        await w.client().create(first)
        w.sandbox.clock.advance(1)
        await w.client().create(second)
        w.sandbox.clock.advance(1)
        w.sandbox.altinn.approve(first.id, APPROVER)
        w.sandbox.clock.advance(1)
        w.sandbox.altinn.reject(second.id, APPROVER)
        page = await w.client().events(None, requestor_org=AUTHORITY)
    assert page.events == (
        AltinnEvent(first.id, AltinnEventType.CREATED, START),
        AltinnEvent(second.id, AltinnEventType.CREATED, START + timedelta(seconds=1)),
        AltinnEvent(first.id, AltinnEventType.ACCEPTED, START + timedelta(seconds=2)),
        AltinnEvent(second.id, AltinnEventType.REJECTED, START + timedelta(seconds=3)),
    )
    assert (page.next, page.cursor) == (None, None)


async def test_events_younger_than_the_safety_lag_are_hidden() -> None:
    async with sandbox_world(lag=300) as w:
        request = make_request()
        await w.client().create(request)
        assert (await w.client().events(None, requestor_org=AUTHORITY)).events == ()
        w.sandbox.clock.advance(300)
        page = await w.client().events(None, requestor_org=AUTHORITY)
    assert [e.consent_id for e in page.events] == [request.id]


async def test_the_feed_holds_only_requests_to_the_requestor() -> None:
    async with sandbox_world() as w:
        ours, own = make_request(), make_request(requestor_org=BROKER)
        await w.client().create(ours)
        await w.client().create(own)
        page = await w.client().events(None, requestor_org=AUTHORITY)
        broker_page = await w.client().events(None, requestor_org=BROKER)
    assert [e.consent_id for e in page.events] == [ours.id]
    assert [e.consent_id for e in broker_page.events] == [own.id]


async def test_pages_follow_the_continuation_token_and_a_partial_page_is_read_again() -> None:
    async with sandbox_world() as w:
        _seed(w, 150)
        client = w.client()
        first = await client.events(None, requestor_org=AUTHORITY)
        assert (len(first.events), first.cursor) == (100, first.next)
        assert first.next is not None
        second = await client.events(first.cursor, requestor_org=AUTHORITY)
        assert (len(second.events), second.next, second.cursor) == (50, None, first.next)
        _seed(w, 10)
        again = await client.events(second.cursor, requestor_org=AUTHORITY)
    assert again.events[:50] == second.events
    assert len(again.events) == 60
    assert not set(first.events) & set(second.events)


async def test_a_full_last_page_links_to_an_empty_one() -> None:
    async with sandbox_world() as w:
        _seed(w, 100)
        first = await w.client().events(None, requestor_org=AUTHORITY)
        last = await w.client().events(first.cursor, requestor_org=AUTHORITY)
    assert first.next is not None
    assert (last.events, last.next, last.cursor) == ((), None, first.next)


async def test_created_after_narrows_a_start_without_a_token() -> None:
    async with sandbox_world() as w:
        old, new = make_request(), make_request()
        await w.client().create(old)
        w.sandbox.clock.advance(60)
        await w.client().create(new)
        page = await w.client().events(
            None, requestor_org=AUTHORITY, created_after=START + timedelta(seconds=30)
        )
    assert [e.consent_id for e in page.events] == [new.id]


async def test_created_after_needs_an_offset() -> None:
    client, script, _ = mock_client([])
    with pytest.raises(ValueError, match="offset"):
        await client.events(None, requestor_org=AUTHORITY, created_after=datetime(2026, 1, 1))
    assert script.requests == []


async def test_a_bad_continuation_token_is_refused_am_vld_00053() -> None:
    async with sandbox_world() as w:
        with pytest.raises(AltinnRefused) as caught:
            await w.client().events("not-base64!", requestor_org=AUTHORITY)
    assert (caught.value.code, caught.value.codes) == ("STD-00000", ("AM.VLD-00053",))


async def test_the_continuation_is_sent_verbatim_and_lowercase_types_are_read() -> None:
    consent_id, event_id = uuid.uuid4(), uuid.uuid4()
    token = "AQID+/8=="
    body = {
        "links": {"next": f"{EVENTS_URL}?continuationToken=BAUG%2B%2F8%3D&eventType=accepted"},
        "data": [
            {
                "consentRequestId": str(consent_id),
                "eventType": "revoked",
                "changedDate": "2026-11-28T10:00:00.1234567Z",
                "consentEventID": str(event_id),
                "performedBy": "urn:altinn:organization:identifier-no:310100013",
            },
            {"consentRequestId": str(consent_id), "eventType": "Archived", "changedDate": "x"},
        ],
    }
    client, script, _ = mock_client([httpx.Response(200, json=body)])
    page = await client.events(token, requestor_org=AUTHORITY)
    sent = script.requests[0].url
    assert str(sent.copy_with(query=None)) == EVENTS_URL
    assert sent.params["continuationToken"] == token
    assert page.next == page.cursor == "BAUG+/8="
    assert page.events == (
        AltinnEvent(
            consent_id,
            AltinnEventType.REVOKED,
            datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC),
            id=event_id,
            performed_by="urn:altinn:organization:identifier-no:310100013",
        ),
    )


async def test_a_used_event_is_known() -> None:
    consent_id = uuid.uuid4()
    data = [
        {
            "consentRequestId": str(consent_id),
            "eventType": "used",
            "changedDate": "2026-11-28T10:00:00Z",
        }
    ]
    client, _, _ = mock_client([httpx.Response(200, json={"links": {}, "data": data})])
    page = await client.events(None, requestor_org=AUTHORITY)
    assert [e.event_type for e in page.events] == [AltinnEventType.USED]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"links": {"next": f"{EVENTS_URL}?eventType=accepted"}, "data": []}, "continuationToken"),
        ({"links": {"next": 7}, "data": []}, "links.next is not a URL"),
        ({"links": {}}, "data is not a list"),
        ({"links": {}, "data": [{"eventType": "Accepted"}]}, "consentRequestId is missing"),
        ([], "events page is not an object"),
    ],
)
async def test_a_feed_we_cannot_follow_is_an_upstream_error(body: object, reason: str) -> None:
    client, _, _ = mock_client([httpx.Response(200, json=body)])
    with pytest.raises(AltinnBadResponse, match=reason):
        await client.events(None, requestor_org=AUTHORITY)
