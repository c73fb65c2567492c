"""Enhetsregisteret's names for Altinn 2's OfferedByName: found, cached, unknown, unavailable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from broker.brreg.client import EnhetsregisteretClient
from broker.consent.ports import UpstreamRefused, UpstreamUnavailable
from tests.support import Answer, Script

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BASE = "https://data.brreg.no/enhetsregisteret/api"


def _client(answers: list[Answer], clock: list[datetime]) -> tuple[EnhetsregisteretClient, Script]:
    script = Script(answers)
    http = httpx.AsyncClient(transport=httpx.MockTransport(script), base_url=BASE)
    return EnhetsregisteretClient(http, clock=lambda: clock[0]), script


async def test_a_name_is_looked_up_once_an_hour() -> None:
    clock = [NOW]
    body = {"organisasjonsnummer": "310100013", "navn": " NORDBYGG POLSKA NUF "}
    client, script = _client([httpx.Response(200, json=body)] * 2, clock)
    assert await client.name("310100013") == "NORDBYGG POLSKA NUF"
    assert await client.name("310100013") == "NORDBYGG POLSKA NUF"
    assert [str(r.url) for r in script.requests] == [f"{BASE}/enheter/310100013"]
    clock[0] = NOW + timedelta(hours=1, seconds=1)
    await client.name("310100013")
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [404, 410])
async def test_an_unknown_or_deleted_organisation_is_refused(status: int) -> None:
    client, _ = _client([httpx.Response(status)], [NOW])
    with pytest.raises(UpstreamRefused) as refused:
        await client.name("310100056")
    assert refused.value.code == "unknown_organisation"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(503),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"navn": ""}),
        httpx.Response(200, json=["navn"]),
        httpx.ConnectError("down"),
    ],
)
async def test_anything_else_is_unavailable(answer: Answer) -> None:
    client, _ = _client([answer], [NOW])
    with pytest.raises(UpstreamUnavailable):
        await client.name("310100013")


async def test_only_organisation_numbers_are_looked_up() -> None:
    client, script = _client([], [NOW])
    with pytest.raises(ValueError, match="nine digits"):
        await client.name("../admin")
    assert script.requests == []
