"""Tenant isolation (G18): client B, calling every client endpoint with every id of client A in
every state (and in every spelling a UUID parser takes), gets exactly what it gets for an id
that does not exist, and no byte of A's data."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.app.api_support import (
    api_stack,
    denied,
    expect_problem,
    granted,
    redirect,
    without,
)
from tests.flow import Stack


async def _a_in_every_state(s: Stack) -> dict[str, dict[str, Any]]:
    def secret(state: str) -> dict[str, Any]:
        tag = uuid.uuid4().hex
        return {"reference": f"A-ref-{state}-{tag}", "external_reference": f"A-ext-{tag}"}

    soon = (s.sandbox.clock.now() + timedelta(hours=1)).isoformat()
    made = {
        "pending": await s.create(**secret("pending")),
        "redirected": await s.create(**secret("redirected")),
        "granted": await granted(s, **secret("granted")),
        "denied": await denied(s, **secret("denied")),
        "cancelled": await s.create(**secret("cancelled")),
        "withdrawn": await granted(s, **secret("withdrawn")),
        "expired": await s.create(valid_to=soon, **secret("expired")),
    }
    await redirect(s, made["redirected"])
    for name in ("cancelled", "withdrawn"):
        response = await s.api.delete(
            f"/v1/consent-requests/{made[name]['id']}", headers=s.tenant.headers
        )
        assert response.status_code == 200
    s.sandbox.clock.advance(7200)
    await s.reconciler.run_once()
    states = {name: (await s.read(r["id"]))["status"] for name, r in made.items()}
    assert states == {
        "pending": "pending",
        "redirected": "redirected",
        "granted": "granted",
        "denied": "denied",
        "cancelled": "cancelled",
        "withdrawn": "cancelled",
        "expired": "expired",
    }
    return made


def _id_spellings(request_id: str) -> list[str]:
    parsed = uuid.UUID(request_id)
    return [request_id, request_id.upper(), parsed.hex, f"{{{request_id}}}", f"urn:uuid:{parsed}"]


def _comparable(response: httpx.Response) -> tuple[int, list[str], dict[str, Any]]:
    body = dict(response.json())
    assert body.pop("instance") == response.request.url.path  # B's own path, echoed
    assert body.pop("request_id") == response.headers["x-request-id"]
    headers = sorted(name for name in response.headers if name != "x-request-id")
    return response.status_code, headers, body


async def test_client_b_sees_nothing_of_client_a(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        a = await _a_in_every_state(s)
        b_own = [await s.create(s.other, reference="B-ref"), await granted(s, s.other)]
        a_before = {r["id"]: without(await s.read(r["id"]), "consent_url") for r in a.values()}
        a_history = {
            rid: (
                await s.api.get(f"/v1/consent-requests/{rid}/history", headers=s.tenant.headers)
            ).json()
            for rid in a_before
        }
        secrets = {
            *(r["id"] for r in a.values()),
            *(uuid.UUID(r["id"]).hex for r in a.values()),
            *(r["reference"] for r in a.values()),
            *(r["external_reference"] for r in a.values()),
        }
        b_answers: list[httpx.Response] = []

        async def as_b(method: str, path: str, **params: str) -> httpx.Response:
            response = await s.api.request(method, path, params=params, headers=s.other.headers)
            b_answers.append(response)
            return response

        # Single-request endpoints: exactly the answer for an id that does not exist.
        for suffix, method in (("", "GET"), ("/history", "GET"), ("", "DELETE")):
            nowhere = await as_b(method, f"/v1/consent-requests/{uuid.uuid4()}{suffix}")
            expect_problem(nowhere, 404, "not_found")
            probes = [spelling for r in a.values() for spelling in _id_spellings(r["id"])]
            probes += ["not-a-uuid", "1", "%20", "00000000-0000-0000-0000-000000000000"]
            for spelling in probes:
                response = await as_b(method, f"/v1/consent-requests/{spelling}{suffix}")
                expect_problem(response, 404, "not_found")
                assert _comparable(response) == _comparable(nowhere), (method, suffix, spelling)

        # Lists: every filter, every page.
        listed: list[str] = []
        since = (s.sandbox.clock.now() - timedelta(days=1)).isoformat()
        filters: list[dict[str, str]] = [{}, {"changed_after": since}, {"limit": "100"}]
        filters += [{"status": state} for state in ("pending", "redirected", "granted", "denied")]
        filters += [{"status": state} for state in ("cancelled", "expired", "revoked", "failed")]
        for params in filters:
            response = await as_b("GET", "/v1/consent-requests", **params)
            assert response.status_code == 200
            listed += [item["id"] for item in response.json()["items"]]
        cursor: str | None = None
        while True:
            page = await as_b(
                "GET", "/v1/consent-requests", limit="1", **({"cursor": cursor} if cursor else {})
            )
            listed += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert set(listed) == {r["id"] for r in b_own}

        # No byte of A's data anywhere in B's answers (bodies without the echoed path, headers).
        for response in b_answers:
            body = response.json()
            if isinstance(body, dict):
                body.pop("instance", None)
            text = json.dumps(body) + json.dumps(list(response.headers.items()))
            leaked = [value for value in secrets if value.lower() in text.lower()]
            assert not leaked, (response.request.url, leaked)

        # And B's DELETEs changed nothing of A's.
        for rid, before in a_before.items():
            assert without(await s.read(rid), "consent_url") == before
            history = await s.api.get(
                f"/v1/consent-requests/{rid}/history", headers=s.tenant.headers
            )
            assert history.json() == a_history[rid]
