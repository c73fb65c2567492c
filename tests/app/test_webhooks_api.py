"""The client's webhook API: registering an endpoint (SSRF rules included), enabling and
disabling it, rotating its secret, listing deliveries, redelivering; every answer is checked
against the OpenAPI document (``api_stack``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests.app.api_support import api_stack, expect_problem, field_errors, granted
from tests.app.webhook_support import RECEIVER_URL, Receiver, deliver_all, register
from tests.flow import Stack, Tenant

ENDPOINT = "/v1/webhook-endpoint"


async def _put(s: Stack, body: object, tenant: Tenant | None = None) -> httpx.Response:
    return await s.api.put(ENDPOINT, json=body, headers=(tenant or s.tenant).headers)


async def test_registering_shows_the_secret_once_and_later_changes_do_not(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        h = s.tenant.headers
        expect_problem(await s.api.get(ENDPOINT, headers=h), 404, "not_found")
        created = await _put(s, {"url": RECEIVER_URL})
        assert created.status_code == 201
        body = created.json()
        assert body["secret"].startswith("whsec_")
        assert (body["url"], body["enabled"], body["disabled_reason"]) == (RECEIVER_URL, True, None)
        [secret_info] = body["secrets"]
        assert secret_info["expires_at"] is None

        shown = (await s.api.get(ENDPOINT, headers=h)).json()
        assert "secret" not in shown
        assert body["secret"] not in (await s.api.get(ENDPOINT, headers=h)).text

        moved = await _put(s, {"url": "https://93.184.216.35/hooks"})
        assert moved.status_code == 200
        assert "secret" not in moved.json()
        assert moved.json()["url"] == "https://93.184.216.35/hooks"
        assert moved.json()["secrets"] == [secret_info]  # the secret stays

        off = await _put(s, {"url": RECEIVER_URL, "enabled": False})
        assert (off.json()["enabled"], off.json()["disabled_reason"]) == (
            False,
            "disabled by the client",
        )
        on = await _put(s, {"url": RECEIVER_URL, "enabled": True})
        assert (on.json()["enabled"], on.json()["disabled_reason"]) == (True, None)


async def test_bad_bodies_and_internal_urls_are_refused_at_registration(
    database_url: str, tmp_path: Path
) -> None:
    refused = [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://metadata.google.internal/",
        "https://user:pw@93.184.216.34/hook",
    ]
    async with api_stack(database_url, tmp_path) as s:
        for url in refused:
            response = await _put(s, {"url": url})
            assert field_errors(response) == {"url"}, url
        assert field_errors(await _put(s, {})) == {"url"}
        assert field_errors(await _put(s, {"url": RECEIVER_URL, "enabled": "yes"})) == {"enabled"}
        assert field_errors(await _put(s, {"url": RECEIVER_URL, "secret": "mine"})) == {"secret"}
        assert field_errors(await _put(s, ["not", "an", "object"])) == {""}
        raw = {**s.tenant.headers, "content-type": "application/json"}
        expect_problem(await s.api.put(ENDPOINT, content=b"{", headers=raw), 400, "invalid_json")
        expect_problem(
            await s.api.put(ENDPOINT, content=b"{}", headers=s.tenant.headers),
            415,
            "unsupported_media_type",
        )
        anonymous = await s.api.put(ENDPOINT, json={"url": RECEIVER_URL})
        expect_problem(anonymous, 401, "unauthenticated")
        # Nothing was registered by any of them.
        expect_problem(await s.api.get(ENDPOINT, headers=s.tenant.headers), 404, "not_found")


async def test_a_rotation_keeps_the_old_secret_signing_for_the_overlap(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        h = s.tenant.headers
        rotate = f"{ENDPOINT}/secrets"
        expect_problem(await s.api.post(rotate, headers=h), 404, "not_found")
        first = await register(s)
        now = s.sandbox.clock.now()
        rotated = await s.api.post(rotate, json={"overlap_seconds": 3600}, headers=h)
        assert rotated.status_code == 201
        second = rotated.json()["secret"]
        assert second != first
        new, old = rotated.json()["secrets"]
        assert new["expires_at"] is None
        expires = datetime.fromisoformat(old["expires_at"])
        assert abs(expires - (now + timedelta(hours=1))) < timedelta(seconds=5)

        # Without a body: the default overlap (24 h) for the secrets in use, and the expired
        # one is forgotten after its time.
        s.sandbox.clock.advance(3601)
        third = await s.api.post(rotate, headers=h)
        assert third.status_code == 201
        assert len(third.json()["secrets"]) == 2  # the first one has expired
        assert len({first, second, third.json()["secret"]}) == 3
        for body in ({"overlap_seconds": -1}, {"overlap_seconds": 8 * 86400}, {"x": 1}):
            assert field_errors(await s.api.post(rotate, json=body, headers=h))
        assert field_errors(await s.api.post(rotate, json={"overlap_seconds": True}, headers=h))
        expect_problem(await s.api.post(rotate), 401, "unauthenticated")


async def test_deliveries_are_listed_newest_first_per_client_and_can_be_redelivered(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        h, other = s.tenant.headers, s.other.headers
        await register(s)
        await register(s, s.other)
        requests = [await granted(s) for _ in range(3)]
        mine_elsewhere = await granted(s, s.other)
        receiver.reply(503, times=1)
        assert await deliver_all(s) == 4

        listed = (await s.api.get("/v1/webhook-deliveries", headers=h)).json()
        assert [i["consent_request_id"] for i in listed["items"]] == [
            r["id"] for r in reversed(requests)
        ]
        assert listed["next_cursor"] is None
        statuses = sorted(i["status"] for i in listed["items"])
        assert statuses.count("delivered") + statuses.count("pending") == 3

        page1 = (await s.api.get("/v1/webhook-deliveries?limit=2", headers=h)).json()
        page2 = (
            await s.api.get(
                f"/v1/webhook-deliveries?limit=2&cursor={page1['next_cursor']}", headers=h
            )
        ).json()
        assert [i["id"] for i in page1["items"] + page2["items"]] == [
            i["id"] for i in listed["items"]
        ]
        assert page2["next_cursor"] is None
        one = requests[0]["id"]
        only = (await s.api.get(f"/v1/webhook-deliveries?consent_request={one}", headers=h)).json()
        assert [i["consent_request_id"] for i in only["items"]] == [one]
        for bad in ("status=done", "limit=0", "limit=abc", "cursor=x", "consent_request=1"):
            assert field_errors(await s.api.get(f"/v1/webhook-deliveries?{bad}", headers=h))

        delivered = next(i for i in listed["items"] if i["status"] == "delivered")
        path = f"/v1/webhook-deliveries/{delivered['id']}"
        detail = (await s.api.get(path, headers=h)).json()
        assert [a["status_code"] for a in detail["history"]] == [200]
        # Another client's ids are as unknown as ids that do not exist (BOLA).
        theirs = (await s.api.get("/v1/webhook-deliveries", headers=other)).json()["items"]
        assert [i["consent_request_id"] for i in theirs] == [mine_elsewhere["id"]]
        for probe in (path, f"{path}/redeliver"):
            method = s.api.post if probe.endswith("redeliver") else s.api.get
            expect_problem(await method(probe, headers=other), 404, "not_found")
        expect_problem(
            await s.api.get("/v1/webhook-deliveries/not-an-id", headers=h), 404, "not_found"
        )

        again = await s.api.post(f"{path}/redeliver", headers=h)
        assert again.status_code == 202
        assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
        assert await deliver_all(s) == 1
        ids = [d.webhook_id for d in receiver.got]
        assert ids.count(delivered["id"]) == 2  # the same webhook-id, sent again
        history = (await s.api.get(path, headers=h)).json()["history"]
        assert [a["status_code"] for a in history] == [200, 200]

        await _put(s, {"url": RECEIVER_URL, "enabled": False})
        expect_problem(await s.api.post(f"{path}/redeliver", headers=h), 409, "endpoint_disabled")
        for probe in ("/v1/webhook-deliveries", path):
            expect_problem(await s.api.get(probe), 401, "unauthenticated")
        expect_problem(await s.api.post(f"{path}/redeliver"), 401, "unauthenticated")


async def test_events_are_kept_only_for_clients_with_an_endpoint(
    database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    async with api_stack(database_url, tmp_path, webhooks=receiver.transport) as s:
        await granted(s)  # no endpoint yet: nothing is queued
        await register(s)
        await _put(s, {"url": RECEIVER_URL, "enabled": False})
        await granted(s)  # disabled: kept as failed, for a redelivery by hand
        assert await deliver_all(s) == 0
        items = (await s.api.get("/v1/webhook-deliveries", headers=s.tenant.headers)).json()
        [item] = items["items"]
        assert (item["status"], item["last_error"]) == ("failed", "endpoint disabled")
        await _put(s, {"url": RECEIVER_URL})
        redo = await s.api.post(
            f"/v1/webhook-deliveries/{item['id']}/redeliver", headers=s.tenant.headers
        )
        assert redo.status_code == 202
        assert await deliver_all(s) == 1
    assert [d.webhook_id for d in receiver.got] == [item["id"]]


async def test_two_first_registrations_at_once_give_one_endpoint_and_one_secret(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        answers = await asyncio.gather(
            _put(s, {"url": RECEIVER_URL}), _put(s, {"url": "https://93.184.216.35/hooks"})
        )
        endpoint = (await s.api.get(ENDPOINT, headers=s.tenant.headers)).json()
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert sum("secret" in a.json() for a in answers) == 1
    assert len(endpoint["secrets"]) == 1
