"""Idempotency-Key on POST /v1/consent-requests (security.md §4.2): a repeat gets the first
answer, another body with the same key is refused, concurrent repeats create one request, and
keys belong to one client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.app.api_support import (
    api_stack,
    expect_problem,
    field_errors,
    new_body,
    post,
    request_rows,
)


async def test_a_repeat_gets_the_first_answer_and_creates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        body = new_body(external_reference="order-1")
        first = await post(s, body, key="order-1-create")
        assert first.status_code == 201, first.text
        s.sandbox.clock.advance(5)
        again = await post(s, body, key="order-1-create")
        reordered = await s.api.post(
            "/v1/consent-requests",
            content=json.dumps(dict(reversed(list(body.items()))), indent=2).encode(),
            headers={
                **s.tenant.headers,
                "Content-Type": "application/json",
                "Idempotency-Key": "order-1-create",
            },
        )
        for repeat in (again, reordered):
            assert repeat.status_code == 201
            assert repeat.content == first.content  # byte for byte, consent_url included
            assert repeat.headers["location"] == first.headers["location"]
        assert await request_rows(s, s.tenant) == 1

        # The replay is the first answer even after the request moved on.
        request_id = first.json()["id"]
        cancel = await s.api.delete(f"/v1/consent-requests/{request_id}", headers=s.tenant.headers)
        assert cancel.status_code == 200
        later = await post(s, body, key="order-1-create")
        assert (later.status_code, later.content) == (201, first.content)
        assert (await s.read(request_id))["status"] == "cancelled"

        # Without a key, each POST creates a request; a new key creates a new one.
        await post(s, body)
        await post(s, body)
        await post(s, body, key="order-1-create-2")
        assert await request_rows(s, s.tenant) == 4


async def test_the_same_key_with_another_body_is_422_and_keys_belong_to_one_client(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        first = await post(s, new_body(), key="k-1")
        assert first.status_code == 201
        for other in (
            new_body(reference="another case"),
            new_body(language="nb"),  # the default, but a different body
            new_body(subject="310100021"),
            {**new_body(), "valid_to": None},
        ):
            response = await post(s, other, key="k-1")
            body = expect_problem(response, 422, "idempotency_key_reused")
            assert "errors" not in body
        assert await request_rows(s, s.tenant) == 1
        # An invalid body is refused before the key is looked at, and does not take the key.
        assert field_errors(await post(s, new_body(subject="1"), key="k-1")) == {"subject"}
        assert field_errors(await post(s, new_body(subject="1"), key="k-2")) == {"subject"}
        fresh = await post(s, new_body(), key="k-2")
        assert fresh.status_code == 201
        assert fresh.json()["id"] != first.json()["id"]

        # Keys are per client: B reusing A's key creates B's own request.
        body = new_body()
        mine = await post(s, body, key="shared-key")
        theirs = await post(s, body, key="shared-key", tenant=s.other)
        assert mine.status_code == theirs.status_code == 201
        assert mine.json()["id"] != theirs.json()["id"]
        assert await request_rows(s, s.other) == 1
        # From then on each client's record of the key answers for that client alone.
        other_body = await post(s, new_body(reference="B's own"), key="shared-key", tenant=s.other)
        expect_problem(other_body, 422, "idempotency_key_reused")
        again = await post(s, body, key="shared-key")
        assert again.content == mine.content


async def test_concurrent_repeats_create_one_request_and_get_one_answer(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        body = new_body(reference="double click")
        answers = await asyncio.gather(*(post(s, body, key="click-1") for _ in range(30)))
        assert {a.status_code for a in answers} == {201}, {a.text for a in answers}
        assert len({a.content for a in answers}) == 1
        assert await request_rows(s, s.tenant) == 1
        history = await s.api.get(
            f"/v1/consent-requests/{answers[0].json()['id']}/history", headers=s.tenant.headers
        )
        assert [e["action"] for e in history.json()["items"]] == ["created"]


async def test_malformed_keys_are_400_invalid_idempotency_key(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        malformed = ["", " ", " lead", "trail ", "x" * 256, "tab\tkey", "new\x7fline"]
        for key in malformed:
            response = await post(s, new_body(), key=key)
            expect_problem(response, 400, "invalid_idempotency_key")
        latin1 = await s.api.post(
            "/v1/consent-requests",
            content=json.dumps(new_body()).encode(),
            headers=[
                *((name.encode(), value.encode()) for name, value in s.tenant.headers.items()),
                (b"Content-Type", b"application/json"),
                (b"Idempotency-Key", "n\xf8kkel".encode("latin-1")),
            ],
        )
        expect_problem(latin1, 400, "invalid_idempotency_key")
        assert await request_rows(s, s.tenant) == 0
        for key in ("x", "x" * 255, "with inner spaces", "0198f0d2-6c1e-7a4b-9d3e", "~!@#$%^&*()"):
            assert (await post(s, new_body(), key=key)).status_code == 201, key
        assert await request_rows(s, s.tenant) == 5
