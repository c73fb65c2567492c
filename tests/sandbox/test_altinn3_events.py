"""The fake Altinn 3 consent API's events feed: safety lag, paging, filters, query validation."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from broker.sandbox.altinn3 import API_PATH
from broker.sandbox.consents import org_urn
from broker.sandbox.jose import SigningKeys
from tests.sandbox.altinn3_helpers import (
    AUTHORITY_2,
    KARI,
    PUBLIC_BASE,
    READ,
    WRITE,
    Fake,
    client_fixture,  # noqa: F401 - pytest fixture
    consent_body,
    create,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    make_fake,
    problem,
    validation,
    vld,
)

# --- events feed --------------------------------------------------------------------------------

EVENTS = f"{API_PATH}/events"


async def _accepted(fake: Fake, client: httpx.AsyncClient) -> str:
    created = await create(fake, client)
    fake.clock.advance(1)
    fake.state.approve(created["id"], KARI)
    return str(created["id"])


async def test_events_are_hidden_for_the_safety_lag(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await _accepted(fake, client)
    response = await client.get(EVENTS, headers=fake.auth(scope=READ))
    assert response.json() == {"links": {}, "data": []}
    fake.clock.advance(300)
    response = await client.get(EVENTS, headers=fake.auth(scope=READ))
    assert response.json() == {
        "links": {},
        "data": [
            {
                "consentRequestId": consent_id,
                "eventType": "Created",
                "changedDate": "2026-03-02T09:00:00+00:00",
            },
            {
                "consentRequestId": consent_id,
                "eventType": "Accepted",
                "changedDate": "2026-03-02T09:00:01+00:00",
            },
        ],
    }


async def test_events_page_with_next_link_and_opaque_cursor(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=2, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        await create(fake, client)
        first = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
        assert len(first["data"]) == 2
        last = fake.register.events()[1]
        token = base64.b64encode(last.id.bytes_le).decode()
        next_url = httpx.URL(first["links"]["next"])
        assert next_url.params["continuationToken"] == token
        assert str(next_url).startswith(f"{PUBLIC_BASE}{EVENTS}?")
        second = (await client.get(next_url, headers=fake.auth(scope=READ))).json()
        assert [d["eventType"] for d in second["data"]] == ["Created"]
        assert second["links"] == {}


async def test_full_last_page_still_links_to_an_empty_page(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=2, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        first = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
        second = await client.get(first["links"]["next"], headers=fake.auth(scope=READ))
    assert second.json() == {"links": {}, "data": []}


async def test_next_link_keeps_the_filters(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_page_size=1, events_safety_lag_seconds=0)
    async with fake.client() as client:
        consent_id = await _accepted(fake, client)
        params = {"eventType": "accepted", "createdAfter": "2026-03-01T00:00:00Z"}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    link = httpx.URL(page["links"]["next"])
    assert link.params.get_list("eventType") == ["accepted"]
    assert link.params["createdAfter"] == "2026-03-01T00:00:00.0000000Z"
    assert page["data"] == [
        {
            "consentRequestId": consent_id,
            "eventType": "Accepted",
            "changedDate": "2026-03-02T09:00:01+00:00",
        }
    ]


@pytest.mark.parametrize(
    ("params", "types"),
    [
        ({"eventType": ["Accepted", "revoked"]}, ["Accepted"]),
        ({"createdAfter": "2026-03-02T09:00:01Z"}, ["Accepted"]),
        ({"createdBefore": "2026-03-02T09:00:01Z"}, ["Created"]),
    ],
)
async def test_events_filters(keys: SigningKeys, params: dict[str, Any], types: list[str]) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    assert [d["eventType"] for d in page["data"]] == types


async def test_events_filter_by_request_and_only_for_the_to_party(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        mine = await create(fake, client)
        await create(fake, client, consent_body(to=org_urn(AUTHORITY_2)), consumer=AUTHORITY_2)
        params = {"consentRequestId": mine["id"]}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
        everything = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
    assert [d["consentRequestId"] for d in page["data"]] == [mine["id"]]
    assert [d["consentRequestId"] for d in everything["data"]] == [mine["id"]]


async def test_events_lowercase_switch(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0, pascal_case_event_types=False)
    async with fake.client() as client:
        await _accepted(fake, client)
        page = (await client.get(EVENTS, headers=fake.auth(scope=READ))).json()
    assert [d["eventType"] for d in page["data"]] == ["created", "accepted"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"createdAfter": "2026-03-02T10:00:00Z", "createdBefore": "2026-03-02T09:00:00Z"},
            vld("AM.VLD-00051", "createdAfter must be before createdBefore", "$QUERY/createdAfter"),
        ),
        (
            {"eventType": ["accepted", "created"]},
            vld("AM.VLD-00052", "Invalid event type", "$QUERY/eventType"),
        ),
        (
            {"continuationToken": "not base64!"},
            vld("AM.VLD-00053", "Invalid continuation token", "$QUERY/continuationToken"),
        ),
        (
            {"continuationToken": base64.b64encode(b"short").decode()},
            vld("AM.VLD-00053", "Invalid continuation token", "$QUERY/continuationToken"),
        ),
    ],
)
async def test_events_query_validation(
    fake: Fake, client: httpx.AsyncClient, params: dict[str, Any], error: dict[str, Any]
) -> None:
    response = await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))
    assert problem(response, 400) == validation(error)


async def test_events_query_errors_are_collected(fake: Fake, client: httpx.AsyncClient) -> None:
    params = {"eventType": "used2", "continuationToken": "%%%"}
    response = await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))
    codes = [e["code"] for e in problem(response, 400)["validationErrors"]]
    assert codes == ["AM.VLD-00052", "AM.VLD-00053"]


@pytest.mark.parametrize("name", ["createdAfter", "consentRequestId"])
async def test_events_query_binding_errors(
    fake: Fake, client: httpx.AsyncClient, name: str
) -> None:
    response = await client.get(EVENTS, params={name: "nonsense"}, headers=fake.auth(scope=READ))
    detail = "The value 'nonsense' is not valid."
    expected = vld("STD.VLD-00002", "The value provided is invalid.", f"/$QUERY/{name}", detail)
    assert problem(response, 400) == validation(expected)


async def test_events_need_token_scope_and_consumer(fake: Fake, client: httpx.AsyncClient) -> None:
    assert (await client.get(EVENTS)).status_code == 401
    assert (await client.get(EVENTS, headers=fake.auth(scope="openid"))).status_code == 403
    response = await client.get(EVENTS, headers=fake.auth(consumer=None, scope=WRITE))
    assert (response.status_code, response.content) == (401, b"")


async def test_unknown_cursor_falls_back_to_id_order(keys: SigningKeys) -> None:
    fake = make_fake(keys, events_safety_lag_seconds=0)
    async with fake.client() as client:
        await _accepted(fake, client)
        zero = base64.b64encode(uuid.UUID(int=0).bytes_le).decode()
        params = {"continuationToken": zero}
        page = (await client.get(EVENTS, params=params, headers=fake.auth(scope=READ))).json()
    assert len(page["data"]) == 2
