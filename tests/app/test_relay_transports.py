"""Both upstream transports (BROKER_HTTP_TRANSPORT) relay the same bytes and fail the same way,
over real loopback sockets to the sandbox served by uvicorn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.relay_support import fetch, grant, sandbox_calls, set_fault, set_latency
from tests.flow import loopback_stack
from tests.support import problem, sqlite_url


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


async def test_json_and_xml_are_relayed_over_either_transport(
    tmp_path: Path, transport: str
) -> None:
    async with loopback_stack(sqlite_url(tmp_path), tmp_path, http_transport=transport) as s:
        client = s.app.state.resources.http("skatteetaten")
        uses_aiohttp = type(client._transport).__name__ == "AiohttpTransport"
        assert uses_aiohttp is (transport == "aiohttp")
        request_id, _ = await grant(s)
        as_json = await fetch(s, request_id)
        assert as_json.status_code == 200, as_json.text
        assert as_json.headers["content-type"].startswith("application/json")
        assert "antall" in as_json.text or "oppdrag" in as_json.text
        as_xml = await fetch(s, request_id, accept="application/xml")
        assert as_xml.status_code == 200, as_xml.text
        assert as_xml.content.lstrip().startswith(b"<")
        calls = await sandbox_calls(s)
        assert [c["outcome"] for c in calls] == ["OK", "OK"]


async def test_a_dropped_connection_is_503_over_either_transport(
    tmp_path: Path, transport: str
) -> None:
    async with loopback_stack(sqlite_url(tmp_path), tmp_path, http_transport=transport) as s:
        request_id, _ = await grant(s)
        await set_fault(s, "connection-reset")
        answer = await fetch(s, request_id)
        assert answer.status_code == 503, answer.text
        assert problem(answer)["code"] == "upstream_unavailable"
        await set_fault(s, None)
        assert (await fetch(s, request_id)).status_code == 200


async def test_a_read_timeout_is_504_over_either_transport(tmp_path: Path, transport: str) -> None:
    async with loopback_stack(
        sqlite_url(tmp_path),
        tmp_path,
        http_transport=transport,
        http_read_timeout="0.2",
    ) as s:
        request_id, _ = await grant(s)
        await set_latency(s, 1.0)
        answer = await fetch(s, request_id)
        assert answer.status_code == 504, answer.text
        assert problem(answer)["code"] == "upstream_timeout"
        await set_latency(s, 0)
        assert (await fetch(s, request_id)).status_code == 200
