"""The relay's audit trail: one append-only row per upstream call, with who, what and how it
went, and never a raw consent id or token (read from ``audit_events`` directly)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.app.relay_support import (
    KODE,
    all_audit_text,
    audit_rows,
    fetch,
    grant,
    relay_stack,
    sandbox_calls,
    set_fault,
)
from tests.flow import AUTHORITY, SUPPLIER
from tests.support import sqlite_url


async def test_one_row_per_call_with_its_fields(database_url: str, tmp_path: Path) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        request_id, altinn_id = await grant(s)
        ok = await fetch(s, request_id, headers={"X-Request-ID": "audit-1"})
        assert ok.status_code == 200
        s.sandbox.skatteetaten.remove_org(SUPPLIER)
        assert (await fetch(s, request_id)).status_code == 404
        s.sandbox.skatteetaten.set_fixture(SUPPLIER)
        rows = await audit_rows(s)
        calls = await sandbox_calls(s)
        assert len(rows) == len(calls) == 2

        success, refused = rows
        for row in rows:
            assert row.actor_type == "client"
            assert row.actor_id == str(s.tenant.client_id)
            assert row.client_id == s.tenant.client_id
            assert row.object_id == request_id
            assert row.details["requestor"] == AUTHORITY
            assert row.details["subject"] == SUPPLIER
            assert row.details["duration_ms"] >= 0
            assert row.occurred_at is not None
            consent = row.details["consent"]
            assert consent != altinn_id
            assert altinn_id not in consent
            assert len(consent) >= 16
        assert success.details["consent"] == refused.details["consent"]  # correlatable
        assert success.outcome == "success"
        assert success.correlation_id == "audit-1"
        assert success.upstream_correlation_id == calls[0]["korrelasjonsid"]
        assert success.upstream_correlation_id == ok.headers["skatteetaten-korrelasjonsid"]
        assert refused.outcome == "failure"
        assert refused.reason == KODE + "008"
        assert refused.upstream_correlation_id == calls[1]["korrelasjonsid"]
        assert rows[0].occurred_at <= rows[1].occurred_at


async def test_no_raw_consent_id_or_token_in_the_audit_trail(
    database_url: str, tmp_path: Path
) -> None:
    async with relay_stack(database_url, tmp_path) as rs:
        s = rs.s
        request_id, altinn_id = await grant(s)
        assert (await fetch(s, request_id)).status_code == 200
        token = rs.tap.exchanges[0].request.headers["authorization"].removeprefix("Bearer ")
        text = await all_audit_text(s)
        assert request_id in text  # the rows are there
        for secret in (altinn_id, uuid.UUID(altinn_id).hex, token, token.split(".")[1]):
            assert secret not in text


async def test_refusals_before_any_call_leave_no_fetch_row(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        pending = (await s.create())["id"]
        assert (await fetch(s, pending)).status_code == 409
        assert (await fetch(s, request_id, tenant=s.other)).status_code == 404
        assert (await fetch(s, request_id, accept="text/html")).status_code == 406
        assert await audit_rows(s) == []


async def test_an_unavailable_upstream_leaves_a_failure_row_per_attempt(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await set_fault(s, "das-003", times=3)
        assert (await fetch(s, request_id)).status_code == 503
        rows = await audit_rows(s)
        assert [row.outcome for row in rows] == ["failure"] * 3
        calls = await sandbox_calls(s)
        assert [row.upstream_correlation_id for row in rows] == [
            call["korrelasjonsid"] for call in calls[-3:]
        ]


async def test_every_retried_attempt_is_an_audited_upstream_call(tmp_path: Path) -> None:
    async with relay_stack(sqlite_url(tmp_path), tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        await set_fault(s, "error-002", times=2)
        assert (await fetch(s, request_id)).status_code == 200
        calls = await sandbox_calls(s)
        rows = await audit_rows(s)
        assert len(calls) == 3
        assert [r.upstream_correlation_id for r in rows] == [c["korrelasjonsid"] for c in calls]
