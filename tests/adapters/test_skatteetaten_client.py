"""Successful calls against the composed sandbox: a granted consent, a real consent token from the
fake Maskinporten, and the fake Skatteetaten answering in JSON and XML."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import httpx
import pytest

from broker.sandbox.skatteetaten_bodies import OppdragFixture
from broker.skatteetaten import OppdragCounts, SkatteetatenClient
from tests.adapters.skatteetaten_support import (
    BASE,
    START,
    SUPPLIER,
    mock_client,
    ok_json,
    ske_world,
)

XML_NS = "{urn:no:skatteetaten:datasamarbeid:oppdragutenlandskevirksomheter:v1}"
PATH = f"/skatteetaten/v1/ebevis/utenlandskevirksomheter/{SUPPLIER}/oppdrag/antall"
EXAMPLE = OppdragCounts(44, 64, 14)


async def test_json_answer_is_passed_through_byte_identical() -> None:
    async with ske_world() as w:
        await w.quirks(levert_style="with-fraction")
        bearer = await w.consent_token()
        answer = await w.client().oppdrag(SUPPLIER, token=bearer, accept="json")
        raw = await w.http.get(PATH, headers={"Authorization": f"Bearer {bearer}"})
    assert raw.status_code == 200
    assert answer.body == raw.content
    assert answer.content_type == raw.headers["content-type"] == "application/json"
    assert answer.body_format == "json"
    assert answer.forespurt_organisasjon == SUPPLIER
    assert answer.counts == EXAMPLE
    assert answer.levert == START
    assert answer.korrelasjonsid == w.ids.issued[0]
    # The fake adds an unknown field and reorders keys by default; both are ignored.
    document = json.loads(answer.body)
    assert "tilleggsinformasjon" in document
    assert next(iter(document)) == "levert"


async def test_xml_answer_is_read_and_passed_through() -> None:
    async with ske_world() as w:
        await w.quirks(levert_style="without-fraction")
        bearer = await w.consent_token()
        answer = await w.client().oppdrag(SUPPLIER, token=bearer, accept="xml")
        raw = await w.http.get(
            PATH, headers={"Authorization": f"Bearer {bearer}", "Accept": "application/xml"}
        )
    assert answer.body == raw.content
    assert answer.content_type == "application/xml"
    assert answer.body_format == "xml"
    assert answer.counts == EXAMPLE
    assert answer.levert == START
    root = ET.fromstring(answer.body)  # noqa: S314 - our own fake's output
    assert root.tag == f"{XML_NS}oppdragUtenlandskeVirksomheter"


async def test_levert_is_read_with_and_without_a_fraction() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        client = w.client()
        first = await client.oppdrag(SUPPLIER, token=bearer)  # the fake alternates
        second = await client.oppdrag(SUPPLIER, token=bearer)
    levert = [json.loads(a.body)["levert"] for a in (first, second)]
    # 10:00 UTC is 11:00 in Oslo: Skatteetaten writes local time without an offset.
    assert levert == ["2026-11-28T11:00:00.000000", "2026-11-28T11:00:00"]
    assert first.levert == second.levert == START


async def test_the_request_carries_exactly_the_prescribed_headers() -> None:
    seen: list[httpx.Request] = []
    async with ske_world(event_hooks={"request": [_record(seen)]}) as w:
        bearer = await w.consent_token()
        client = w.client()
        await client.oppdrag(SUPPLIER, token=bearer, accept="json")
        await client.oppdrag(SUPPLIER, token=bearer, accept="xml")
        calls = await w.calls()
    assert [r.url.path for r in seen] == [PATH, PATH]
    assert str(seen[0].url) == f"{BASE}{PATH}"
    for request, accept in zip(seen, ["application/json", "application/xml"], strict=True):
        assert request.method == "GET"
        assert request.headers.get_list("authorization") == [f"Bearer {bearer}"]
        assert request.headers["accept"] == accept
        assert "altinnsamtykke" not in request.headers
        assert request.content == b""
        assert set(request.headers) <= {
            "host",
            "accept",
            "accept-encoding",
            "connection",
            "user-agent",
            "authorization",
            "korrelasjonsid",
        }
    # A new Korrelasjonsid, a UUID, for every call; the fake saw exactly those.
    sent = [r.headers["korrelasjonsid"] for r in seen]
    assert sent == w.ids.issued
    assert len(set(sent)) == 2
    assert all(str(uuid.UUID(value)) == value for value in sent)
    assert [c["korrelasjonsid"] for c in calls] == sent
    assert [c["outcome"] for c in calls] == ["OK", "OK"]


def _record(seen: list[httpx.Request]) -> Callable[[httpx.Request], Awaitable[None]]:
    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    return hook


async def test_the_default_korrelasjonsid_is_a_fresh_uuid() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        client = SkatteetatenClient(w.ske_http, clock=w.sandbox.clock.now)
        first = await client.oppdrag(SUPPLIER, token=bearer)
        second = await client.oppdrag(SUPPLIER, token=bearer)
    assert uuid.UUID(first.korrelasjonsid).version == 4
    assert first.korrelasjonsid != second.korrelasjonsid


async def test_null_and_missing_counts_are_unknown() -> None:
    async with ske_world() as w:
        w.sandbox.skatteetaten.set_fixture(SUPPLIER, OppdragFixture(None, 3, None))
        bearer = await w.consent_token()
        as_json = await w.client().oppdrag(SUPPLIER, token=bearer, accept="json")
        as_xml = await w.client().oppdrag(SUPPLIER, token=bearer, accept="xml")
    assert json.loads(as_json.body)["oppdrag"]["antallAktiveOppdragSomArbeidsgiver"] is None
    assert b"antallAktiveOppdragSomArbeidsgiver" not in as_xml.body  # XML leaves it out
    assert as_json.counts == as_xml.counts == OppdragCounts(None, 3, None)


async def test_zero_counts_and_the_plain_documented_order() -> None:
    async with ske_world() as w:
        w.sandbox.skatteetaten.set_fixture(SUPPLIER, OppdragFixture(0, 0, 0))
        await w.quirks(extra_unknown_field=False, reordered_keys=False)
        bearer = await w.consent_token()
        answer = await w.client().oppdrag(SUPPLIER, token=bearer)
    assert answer.counts == OppdragCounts(0, 0, 0)
    assert next(iter(json.loads(answer.body))) == "forespurteOrganisasjon"


async def test_an_echoed_korrelasjonsid_header_is_preferred() -> None:
    echoed = str(uuid.uuid4())
    answer = ok_json()
    answer.headers["Korrelasjonsid"] = echoed
    client, _ = mock_client([answer])
    result = await client.oppdrag(SUPPLIER, token="t0k3n")
    assert result.korrelasjonsid == echoed


FULL_WIDTH = "".join(chr(0xFF10 + int(digit)) for digit in SUPPLIER)


@pytest.mark.parametrize("orgnr", ["31010001", "3101000130", "31010001x", "../../x12", FULL_WIDTH])
async def test_an_orgnr_that_is_not_nine_digits_is_never_sent(orgnr: str) -> None:
    client, script = mock_client([])
    with pytest.raises(ValueError, match="nine digits"):
        await client.oppdrag(orgnr, token="t0k3n")
    assert script.requests == []


@pytest.mark.parametrize("bad", ["", "two words", "line\nbreak", "ø"])
async def test_a_token_that_cannot_go_in_a_header_is_refused_without_echo(bad: str) -> None:
    client, script = mock_client([])
    with pytest.raises(ValueError, match="bearer token") as caught:
        await client.oppdrag(SUPPLIER, token=bad)
    assert script.requests == []
    assert str(caught.value) == "token must be a bearer token"


async def test_accept_and_rettighetspakke_are_checked() -> None:
    client, _ = mock_client([])
    with pytest.raises(ValueError, match="accept"):
        await client.oppdrag(SUPPLIER, token="t", accept="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rettighetspakke"):
        mock_client([], rettighetspakke="../admin")
    other, script = mock_client([ok_json()], rettighetspakke="arbeidstilsynet")
    await other.oppdrag(SUPPLIER, token="t")
    assert script.requests[0].url.path == (
        f"/v1/arbeidstilsynet/utenlandskevirksomheter/{SUPPLIER}/oppdrag/antall"
    )
