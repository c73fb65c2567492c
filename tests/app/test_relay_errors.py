"""The relay's error table, each row against the sandbox (or, where the sandbox cannot give the
answer, a substitute answer on the wire): Skatteetaten's refusals, its outages, timeouts and
the circuit breaker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.app.api_support import expect_problem
from tests.app.relay_support import (
    EBEVIS,
    KODE,
    RelayChecker,
    feil,
    fetch,
    grant,
    relay_stack,
    revoke_in_altinn,
    sandbox_calls,
    set_fault,
    set_latency,
)
from tests.flow import AUTHORITY, SUPPLIER
from tests.support import sqlite_url


def _kept(body: object, call: dict[str, object]) -> None:
    """Skatteetaten's kode and korrelasjonsid are kept in the problem."""
    assert isinstance(body, dict)
    assert body["kode"] == call["outcome"]
    assert body["korrelasjonsid"] == call["korrelasjonsid"]


async def test_007_revokes_the_grant_as_skatteetaten(database_url: str, tmp_path: Path) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, altinn_id = await grant(s)
        assert (await fetch(s, request_id)).status_code == 200
        await revoke_in_altinn(s, altinn_id)  # the consent token is still cached by the broker
        body = expect_problem(await fetch(s, request_id), 409, "consent_revoked")
        call = (await sandbox_calls(s))[-1]
        assert call["outcome"] == KODE + "007"
        _kept(body, call)
        read = await s.read(request_id)
        assert read["status"] == "revoked"
        assert read["grant"]["revoked_by"] == "skatteetaten"
        history = (
            await s.api.get(f"/v1/consent-requests/{request_id}/history", headers=s.tenant.headers)
        ).json()["items"]
        assert history[-1]["state"] == "revoked"
        expect_problem(await fetch(s, request_id), 409, "consent_not_granted")
        assert len(await sandbox_calls(s)) == 2


async def test_008_is_subject_not_found(database_url: str, tmp_path: Path) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        s.sandbox.skatteetaten.remove_org(SUPPLIER)
        body = expect_problem(await fetch(s, request_id), 404, "subject_not_found")
        [call] = await sandbox_calls(s)
        assert call["outcome"] == KODE + "008"
        _kept(body, call)
        assert (await s.read(request_id))["status"] == "granted"  # the grant stands


async def test_005_is_a_configuration_fault(database_url: str, tmp_path: Path) -> None:
    async with relay_stack(database_url, tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        s.sandbox.skatteetaten.withdraw_package(AUTHORITY, EBEVIS)
        body = expect_problem(await fetch(s, request_id), 502, "upstream_configuration")
        [call] = await sandbox_calls(s)  # a refusal is not retried
        assert call["outcome"] == KODE + "005"
        _kept(body, call)
        assert (await s.read(request_id))["status"] == "granted"


async def test_maskinporten_refusing_the_broker_is_a_configuration_fault(
    tmp_path: Path,
) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        s.sandbox.clock.advance(300)  # past the cached consent token's lifetime
        refusal = {"status": 400, "error": "invalid_client", "description": "MP-100"}
        assert (
            await s.sandbox_http.post("/control/maskinporten/fail-next", json=refusal)
        ).is_success
        expect_problem(await fetch(s, request_id), 502, "upstream_configuration")
        assert await sandbox_calls(s) == []
        assert (await s.read(request_id))["status"] == "granted"


@pytest.mark.parametrize(
    ("status", "kode", "code"),
    [
        (400, KODE + "006", "upstream_rejected_request"),
        (406, KODE + "009", "upstream_rejected_request"),
        (403, KODE + "005", "upstream_configuration"),
        (401, KODE + "004", "upstream_configuration"),
    ],
)
async def test_refusals_the_sandbox_cannot_give_map_to_502(
    tmp_path: Path, status: int, kode: str, code: str
) -> None:
    """-006 and -009 need a call the broker never makes; substituted on the wire."""
    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        sent = "5b0c3f0e-4c52-4a53-9d1a-0e9a4c4f7c11"
        rs.tap.substitute = lambda request: feil(status, kode, sent)
        body = expect_problem(await fetch(s, request_id), 502, code)
        assert body["kode"] == kode
        assert body["korrelasjonsid"] == sent
        # A refused token (-004) is dropped and fetched again, once; nothing else is retried.
        assert len(rs.tap.exchanges) == (2 if status == 401 else 1)
        assert (await s.read(request_id))["status"] == "granted"


@pytest.mark.parametrize(
    "fault", ["error-001", "error-002", "das-003", "unavailable", "bad-gateway"]
)
async def test_outages_are_retried_then_503_with_retry_after(tmp_path: Path, fault: str) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await set_fault(s, fault)
        answer = await fetch(s, request_id)
        body = expect_problem(answer, 503, "upstream_unavailable")
        assert int(answer.headers["retry-after"]) > 0
        calls = await sandbox_calls(s)
        assert len(calls) == 3  # bounded retries
        assert len({c["korrelasjonsid"] for c in calls}) == 3  # a new id for every attempt
        assert body["korrelasjonsid"] == calls[-1]["korrelasjonsid"]
        if fault.startswith(("error", "das")):
            assert body["kode"] == calls[-1]["outcome"]
        assert (await s.read(request_id))["status"] == "granted"


async def test_a_transient_outage_is_retried_away(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        request_id, _ = await grant(rs.s)
        await set_fault(rs.s, "error-002", times=2)
        answer = await fetch(rs.s, request_id)
        assert answer.status_code == 200, answer.text
        assert [c["outcome"] for c in await sandbox_calls(rs.s)] == [
            KODE + "002",
            KODE + "002",
            "OK",
        ]
        assert answer.content == rs.tap.exchanges[-1].body


async def test_a_dropped_connection_is_503(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        request_id, _ = await grant(rs.s)
        await set_fault(rs.s, "connection-reset")
        answer = await fetch(rs.s, request_id)
        expect_problem(answer, 503, "upstream_unavailable")
        assert "retry-after" in answer.headers
        assert len(await sandbox_calls(rs.s)) == 3


async def test_latency_beyond_the_read_timeout_is_504_after_retries(tmp_path: Path) -> None:
    async with relay_stack(
        sqlite_url(tmp_path), tmp_path, checker=RelayChecker(), http_read_timeout="0.2"
    ) as rs:
        request_id, _ = await grant(rs.s)
        await set_latency(rs.s, 1.0)
        answer = await fetch(rs.s, request_id)
        body = expect_problem(answer, 504, "upstream_timeout")
        assert int(answer.headers["retry-after"]) > 0
        assert [e.status for e in rs.tap.exchanges] == [None, None, None]
        sent = [e.request.headers["korrelasjonsid"] for e in rs.tap.exchanges]
        assert body["korrelasjonsid"] == sent[-1]
        await set_latency(rs.s, 0)
        assert (await fetch(rs.s, request_id)).status_code == 200


async def test_the_circuit_breaker_opens_and_then_fails_fast(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path, checker=RelayChecker()) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await set_fault(s, "unavailable")
        expect_problem(await fetch(s, request_id), 503, "upstream_unavailable")
        expect_problem(await fetch(s, request_id), 503, "upstream_unavailable")
        assert len(await sandbox_calls(s)) == 5  # 3 + 2: the fifth failure opened the breaker
        for _ in range(3):
            answer = await fetch(s, request_id)
            expect_problem(answer, 503, "upstream_unavailable")
            assert 0 < int(answer.headers["retry-after"]) <= 30
        assert len(await sandbox_calls(s)) == 5  # failed fast: nothing sent
        await set_fault(s, None)
        response = await s.sandbox_http.post("/control/clock/advance", json={"seconds": 31})
        assert response.status_code == 200
        assert (await fetch(s, request_id)).status_code == 200  # the probe closes it
        assert (await fetch(s, request_id)).status_code == 200
        assert len(await sandbox_calls(s)) == 7


async def test_a_refusal_does_not_count_towards_the_breaker(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        s.sandbox.skatteetaten.remove_org(SUPPLIER)
        for _ in range(6):
            expect_problem(await fetch(s, request_id), 404, "subject_not_found")
        assert len(await sandbox_calls(s)) == 6


async def test_a_body_that_is_not_oppdrag_is_not_passed_on(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        request_id, _ = await grant(rs.s)
        rs.tap.substitute = lambda request: httpx.Response(200, text="<html>login</html>")
        answer = await fetch(rs.s, request_id)
        assert answer.status_code in (502, 503), answer.text
        assert b"login" not in answer.content
