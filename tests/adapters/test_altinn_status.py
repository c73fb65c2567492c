"""Reading a consent request's state back from the sandbox's fake Altinn 3 (and, for spellings
the fake does not produce, from canned answers)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from broker.altinn import READ_SCOPE, WRITE_SCOPE, AltinnBadResponse, AltinnMode, AltinnRefused
from broker.consent.ports import AltinnStatus, UpstreamRefused
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
    request_dto,
    sandbox_world,
)


async def _created(w: World, **overrides: Any) -> uuid.UUID:
    request = make_request(**overrides)
    await w.client().create(request)
    return request.id


async def test_a_new_request_is_created_and_not_consented() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert state.id == consent_id
    assert state.status is AltinnStatus.CREATED
    assert (state.subject_org, state.requestor_org) == (SUPPLIER, AUTHORITY)
    assert state.resources == (RESOURCE,)
    assert state.valid_to == START + timedelta(days=90)
    assert state.consented_at is None


async def test_approved_request_is_accepted_with_the_time_of_consent() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.clock.advance(60)
        w.sandbox.altinn.approve(consent_id, APPROVER)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert state.status is AltinnStatus.ACCEPTED
    assert state.consented_at == START + timedelta(seconds=60)


async def test_rejected_request() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.reject(consent_id, APPROVER)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert (state.status, state.consented_at) == (AltinnStatus.REJECTED, None)


async def test_revoked_request_keeps_its_consent_time() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.approve(consent_id, APPROVER)
        w.sandbox.clock.advance(3600)
        w.sandbox.altinn.revoke(consent_id)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert (state.status, state.consented_at) == (AltinnStatus.REVOKED, START)


async def test_expired_request_is_expired_although_altinn_stores_accepted() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.approve(consent_id, APPROVER)
        w.sandbox.clock.advance(60)
        w.sandbox.altinn.expire(consent_id)
        record = w.sandbox.altinn.get(consent_id)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert record is not None
    assert record.status.value == "Accepted"
    assert state.status is AltinnStatus.EXPIRED
    assert state.consented_at == START


async def test_valid_to_reached_on_our_clock_is_expired_before_altinn_says_so() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.approve(consent_id, APPROVER)
        later = START + timedelta(days=90)  # == validTo: Altinn adds Expired only after it
        state = await w.client(clock=lambda: later).status(consent_id, requestor_org=AUTHORITY)
    assert state.status is AltinnStatus.EXPIRED


async def test_a_synthetic_expired_event_wins_over_a_lagging_clock() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.expire(consent_id)
        earlier = START - timedelta(days=1)
        state = await w.client(clock=lambda: earlier).status(consent_id, requestor_org=AUTHORITY)
    assert state.status is AltinnStatus.EXPIRED


async def test_a_rejection_stays_a_rejection_after_valid_to() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        w.sandbox.altinn.reject(consent_id, APPROVER)
        w.sandbox.altinn.expire(consent_id)
        state = await w.client().status(consent_id, requestor_org=AUTHORITY)
    assert state.status is AltinnStatus.REJECTED


async def test_unknown_request_is_not_found() -> None:
    async with sandbox_world() as w:
        with pytest.raises(UpstreamRefused) as caught:
            await w.client().status(uuid.uuid4(), requestor_org=AUTHORITY)
    assert caught.value.code == "not_found"
    assert isinstance(caught.value, AltinnRefused)
    assert caught.value.codes == ("AM-00001",)
    assert caught.value.status == 404


async def test_a_request_to_another_requestor_is_am_00000() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        with pytest.raises(AltinnRefused) as caught:
            await w.client().status(consent_id, requestor_org="310200026")
    assert (caught.value.code, caught.value.status) == ("AM-00000", 403)


async def test_org_mode_cannot_read_a_request_to_the_requestor_back() -> None:
    # Altinn lets only ``to`` read a request; ``handledBy`` does not count (reference §2.2).
    async with sandbox_world() as w:
        request = make_request()
        await w.client(AltinnMode.ORG).create(request)
        with pytest.raises(AltinnRefused) as caught:
            await w.client(AltinnMode.ORG).status(request.id, requestor_org=AUTHORITY)
    assert caught.value.code == "AM-00000"


async def test_reads_share_the_write_token_unless_told_otherwise() -> None:
    async with sandbox_world() as w:
        consent_id = await _created(w)
        await w.client().status(consent_id, requestor_org=AUTHORITY)
        assert w.tokens.fetched == [(WRITE_SCOPE, AUTHORITY)]
        # The seed delegates only ``.write`` to the broker, so ``.read`` is tried for itself.
        own_id = await _created(w, requestor_org=BROKER)
        state = await w.client(read_scope=READ_SCOPE).status(own_id, requestor_org=BROKER)
    assert state.requestor_org == BROKER
    assert w.tokens.fetched[-1] == (READ_SCOPE, None)


async def test_enum_and_property_casing_and_times_are_read_tolerantly() -> None:
    consent_id = uuid.uuid4()
    body = request_dto(
        consent_id,
        status="accepted",
        validTo="2027-02-26T10:00:00.1234567Z",
        consentRights=[
            {
                "Action": ["consent"],
                "Resource": [{"Type": "urn:altinn:resource", "Value": RESOURCE}],
                "metaData": {"x": "y"},
            }
        ],
        consentRequestEvents=[
            {"eventType": "created", "created": "2026-11-28T10:00:00+00:00"},
            {"eventType": "accepted", "created": "2026-11-28T11:00:00+01:00", "new": 1},
            {"eventType": "Teleported", "created": "2026-11-28T12:00:00+00:00"},
        ],
        unknownField={"nested": True},
    )
    client, script, _ = mock_client([httpx.Response(200, json=body)])
    state = await client.status(consent_id, requestor_org=AUTHORITY)
    assert str(script.requests[0].url) == (
        f"{ALTINN_BASE}/accessmanagement/api/v1/enterprise/consentrequests/{consent_id}"
    )
    assert state.status is AltinnStatus.ACCEPTED
    assert state.valid_to == datetime(2027, 2, 26, 10, 0, 0, 123456, tzinfo=UTC)
    assert state.consented_at == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert state.resources == (RESOURCE,)


async def test_consented_is_the_fallback_when_no_accepted_event_is_listed() -> None:
    consent_id = uuid.uuid4()
    body = request_dto(consent_id, status="Accepted", consented="2026-11-28T10:30:00+00:00")
    client, _, _ = mock_client([httpx.Response(200, json=body)])
    state = await client.status(consent_id, requestor_org=AUTHORITY)
    assert state.consented_at == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"status": "Teleported"}, "status has an unknown value"),
        ({"status": None}, "status has an unknown value"),
        ({"validTo": "2027-02-26T10:00:00"}, "validTo has no UTC offset"),
        ({"validTo": "tomorrow"}, "validTo is not an ISO 8601 time"),
        ({"from": "urn:altinn:person:identifier-no:01819040180"}, "from is not an organisation"),
        ({"to": None}, "to is missing"),
        ({"consentRights": None}, "consentRights is not a list"),
        ({"id": str(uuid.uuid4())}, "another consent request"),
    ],
)
async def test_what_we_rely_on_must_be_there(overrides: dict[str, Any], reason: str) -> None:
    consent_id = uuid.uuid4()
    client, _, _ = mock_client([httpx.Response(200, json=request_dto(consent_id, **overrides))])
    with pytest.raises(AltinnBadResponse, match=reason) as caught:
        await client.status(consent_id, requestor_org=AUTHORITY)
    assert "01819040180" not in str(caught.value)
