"""The fake Skatteetaten API: bodies, negotiation, routing, Korrelasjonsid, fixtures, quirks.

Token rules: test_skatteetaten_auth.py; consent: test_skatteetaten_consent.py; faults and latency:
test_skatteetaten_faults.py; counters, records and reset: test_skatteetaten_counters.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from broker.sandbox.skatteetaten_bodies import OppdragFixture
from broker.sandbox.skatteetaten_config import SkatteetatenConfig
from broker.sandbox.skatteetaten_state import LevertStyle, Quirks, Switches, UnknownUrlStyle
from tests.sandbox.skatteetaten_helpers import (
    FEIL_NS,
    ISSUER,
    KORRELASJONSID,
    OTHER_SUBJECT,
    SUBJECT,
    XML_NS,
    Sandbox,
    default_state,
    feil,
    json_body,
    make_sandbox,
    url,
    xml_children,
    xml_root,
)

PLAIN = Quirks(
    levert_style=LevertStyle.WITH_FRACTION,
    extra_unknown_field=False,
    reordered_keys=False,
    unknown_url_style=UnknownUrlStyle.FEIL,
)
COUNTS = {
    "antallAktiveOppdragSomArbeidsgiver": 44,
    "antallAktiveArbeidstakere": 64,
    "antallRegistrerteOppdragSomOppdragsgiver": 14,
}
EXTRA = {"kilde": "Oppdrags- og arbeidsforholdsregisteret"}


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


@pytest.fixture
def plain() -> Sandbox:
    """Every quirk off: the documented example, byte for byte in shape."""
    return make_sandbox(state=default_state(switches=Switches(quirks=PLAIN)))


# Success bodies


async def test_json_body_without_quirks_is_the_documented_example(plain: Sandbox) -> None:
    async with plain.client() as client:
        response = await client.get(url(), headers=plain.authorised())
    assert response.status_code == 200
    assert response.content == (
        b'{"forespurteOrganisasjon":"974761076","oppdrag":{'
        b'"antallAktiveOppdragSomArbeidsgiver":44,"antallAktiveArbeidstakere":64,'
        b'"antallRegistrerteOppdragSomOppdragsgiver":14},"levert":"2026-01-15T11:00:00.000000"}'
    )
    assert response.headers["content-type"] == "application/json"


async def test_default_quirks_reorder_keys_add_a_field_and_alternate_levert(
    sandbox: Sandbox,
) -> None:
    sandbox.clock.advance(0.123456)
    async with sandbox.client() as client:
        first = json_body(await client.get(url(), headers=sandbox.authorised()))
        second = json_body(await client.get(url(), headers=sandbox.authorised()))
        third = json_body(await client.get(url(), headers=sandbox.authorised()))
    assert list(first) == ["levert", "oppdrag", "forespurteOrganisasjon", "tilleggsinformasjon"]
    assert list(first["oppdrag"]) == list(reversed(COUNTS))
    assert first == {
        "levert": "2026-01-15T11:00:00.123456",
        "oppdrag": COUNTS,
        "forespurteOrganisasjon": SUBJECT,
        "tilleggsinformasjon": EXTRA,
    }
    assert second["levert"] == "2026-01-15T11:00:00"
    assert third["levert"] == "2026-01-15T11:00:00.123456"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (LevertStyle.WITH_FRACTION, ["2026-07-01T12:30:05.000250"] * 2),
        (LevertStyle.WITHOUT_FRACTION, ["2026-07-01T12:30:05"] * 2),
        (LevertStyle.ALTERNATE, ["2026-07-01T12:30:05.000250", "2026-07-01T12:30:05"]),
    ],
)
async def test_levert_is_oslo_local_time_without_offset(
    sandbox: Sandbox, style: LevertStyle, expected: list[str]
) -> None:
    sandbox.state.switches.quirks.levert_style = style
    sandbox.clock.advance(timedelta(days=167, hours=0, minutes=30, seconds=5).total_seconds())
    sandbox.clock.advance(0.00025)
    async with sandbox.client() as client:
        bodies = [json_body(await client.get(url(), headers=sandbox.authorised())) for _ in "ab"]
    assert [body["levert"] for body in bodies] == expected  # CEST, UTC+2 in July


async def test_xml_body_without_quirks(plain: Sandbox) -> None:
    headers = plain.authorised(Accept="application/xml")
    async with plain.client() as client:
        response = await client.get(url(), headers=headers)
    assert response.status_code == 200
    root = xml_root(response)
    assert root.tag == f"{{{XML_NS}}}oppdragUtenlandskeVirksomheter"
    assert list(xml_children(root, XML_NS)) == ["forespurteOrganisasjon", "oppdrag", "levert"]
    assert root.findtext(f"{{{XML_NS}}}forespurteOrganisasjon") == SUBJECT
    assert root.findtext(f"{{{XML_NS}}}levert") == "2026-01-15T11:00:00.000000"
    oppdrag = root.find(f"{{{XML_NS}}}oppdrag")
    assert oppdrag is not None
    assert xml_children(oppdrag, XML_NS) == {key: str(value) for key, value in COUNTS.items()}
    assert list(xml_children(oppdrag, XML_NS)) == list(COUNTS)


async def test_xml_body_with_default_quirks(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        response = await client.get(url(), headers=sandbox.authorised(Accept="application/xml"))
    root = xml_root(response)
    assert list(xml_children(root, XML_NS)) == [
        "levert",
        "oppdrag",
        "forespurteOrganisasjon",
        "tilleggsinformasjon",
    ]
    extra = root.find(f"{{{XML_NS}}}tilleggsinformasjon")
    assert extra is not None
    assert xml_children(extra, XML_NS) == EXTRA


async def test_null_counts_are_json_null_and_absent_in_xml(plain: Sandbox) -> None:
    plain.state.set_fixture(SUBJECT, OppdragFixture(0, None, 3))
    async with plain.client() as client:
        as_json = await client.get(url(), headers=plain.authorised())
        as_xml = await client.get(url(), headers=plain.authorised(Accept="application/xml"))
    assert json_body(as_json)["oppdrag"] == {
        "antallAktiveOppdragSomArbeidsgiver": 0,
        "antallAktiveArbeidstakere": None,
        "antallRegistrerteOppdragSomOppdragsgiver": 3,
    }
    oppdrag = xml_root(as_xml).find(f"{{{XML_NS}}}oppdrag")
    assert oppdrag is not None
    assert xml_children(oppdrag, XML_NS) == {
        "antallAktiveOppdragSomArbeidsgiver": "0",
        "antallRegistrerteOppdragSomOppdragsgiver": "3",
    }


# Content negotiation


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        ("APPLICATION/JSON; charset=utf-8", "application/json"),
        ("application/xml", "application/xml"),
        ("application/json, application/xml", "application/json"),
        ("application/json;q=0.5, application/xml", "application/xml"),
        ("application/xml;q=0.9, */*", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
        ("application/json;q=0, application/xml;q=0.2", "application/xml"),
    ],
)
async def test_accept_chooses_json_or_xml(
    sandbox: Sandbox, accept: str | None, content_type: str
) -> None:
    extra = {} if accept is None else {"Accept": accept}
    async with sandbox.client() as client:
        response = await client.get(url(), headers=sandbox.authorised(**extra))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    "accept",
    ["text/html", "text/xml", "application/json;q=0", "application/json;q=x", "image/*"],
)
async def test_unacceptable_accept_is_406_009_in_json(sandbox: Sandbox, accept: str) -> None:
    headers = sandbox.authorised(Accept=accept, Korrelasjonsid=KORRELASJONSID)
    async with sandbox.client() as client:
        response = await client.get(url(), headers=headers)
    assert response.status_code == 406
    melding = (
        "Feil tilknyttet dataformat. Kun json eller xml er støttet. "
        f"Accept-verdien {accept!r} støttes ikke."
    )
    assert json_body(response) == feil("009", melding, KORRELASJONSID)


async def test_406_comes_before_authentication(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        response = await client.get(url(), headers={"Accept": "text/plain"})
    assert response.status_code == 406
    assert json_body(response)["kode"] == "OPPDRAGUTENLANDSKEVIRKSOMHETER-009"


async def test_error_body_in_xml_form(sandbox: Sandbox) -> None:
    headers = {"Accept": "application/xml", "Korrelasjonsid": KORRELASJONSID}
    async with sandbox.client() as client:
        response = await client.get(url(), headers=headers)
    assert response.status_code == 401
    root = xml_root(response)
    assert root.tag == f"{{{FEIL_NS}}}feil"
    assert xml_children(root, FEIL_NS) == {
        "kode": "OPPDRAGUTENLANDSKEVIRKSOMHETER-004",
        "melding": "Feil i forbindelse med autentisering. Authorization-header mangler.",
        "korrelasjonsid": KORRELASJONSID,
    }


# Korrelasjonsid


async def test_valid_korrelasjonsid_is_echoed_into_the_error_body(sandbox: Sandbox) -> None:
    async with sandbox.client() as client:
        response = await client.get(url(), headers={"Korrelasjonsid": KORRELASJONSID.upper()})
    assert json_body(response)["korrelasjonsid"] == KORRELASJONSID.upper()
    assert "korrelasjonsid" not in response.headers  # not documented as a response header


@pytest.mark.parametrize("sent", [None, "abc", "{3f1c0c1e-0b7a-4b7e-9a4e-1f0f7d0e2a11}"])
async def test_missing_or_invalid_korrelasjonsid_gets_a_fresh_uuid_per_call(
    sandbox: Sandbox, sent: str | None
) -> None:
    headers = {} if sent is None else {"Korrelasjonsid": sent}
    async with sandbox.client() as client:
        first = json_body(await client.get(url(), headers=headers))["korrelasjonsid"]
        second = json_body(await client.get(url(), headers=headers))["korrelasjonsid"]
    assert str(uuid.UUID(first)) == first
    assert str(uuid.UUID(second)) == second
    assert first != second


async def test_echo_can_be_switched_off() -> None:
    sandbox = make_sandbox(config=SkatteetatenConfig(issuer=ISSUER, echo_korrelasjonsid=False))
    async with sandbox.client() as client:
        response = await client.get(url(), headers={"Korrelasjonsid": KORRELASJONSID})
    body = json_body(response)
    assert body["korrelasjonsid"] != KORRELASJONSID
    assert str(uuid.UUID(body["korrelasjonsid"])) == body["korrelasjonsid"]


async def test_korrelasjonsid_response_header_switch() -> None:
    config = SkatteetatenConfig(issuer=ISSUER, korrelasjonsid_response_header=True)
    sandbox = make_sandbox(config=config)
    async with sandbox.client() as client:
        ok = await client.get(url(), headers=sandbox.authorised(Korrelasjonsid=KORRELASJONSID))
        refused = await client.get(url(), headers={"Korrelasjonsid": KORRELASJONSID})
    assert ok.status_code == 200
    assert ok.headers["korrelasjonsid"] == KORRELASJONSID
    assert refused.status_code == 401
    assert refused.headers["korrelasjonsid"] == KORRELASJONSID


# Routing and unknown URLs

UNKNOWN_PATHS = [
    "/",
    "/v1/ebevis/utenlandskevirksomheter/974761076/oppdrag",
    "/v1/ebevis/utenlandskevirksomheter/974761076/oppdrag/antall/",
    "/v2/ebevis/utenlandskevirksomheter/974761076/oppdrag/antall",
    "/api/oppdrag/v1/ebevis/utenlandskevirksomheter/974761076/oppdrag/antall",
]


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
async def test_unknown_url_gets_the_gateway_404_by_default(sandbox: Sandbox, path: str) -> None:
    async with sandbox.client() as client:
        response = await client.get(path, headers=sandbox.authorised())
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "404 NOT FOUND"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_other_methods_on_the_route_are_unknown_urls(sandbox: Sandbox, method: str) -> None:
    async with sandbox.client() as client:
        response = await client.request(method, url(), headers=sandbox.authorised())
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
async def test_unknown_url_gets_003_when_the_quirk_is_off(plain: Sandbox, path: str) -> None:
    async with plain.client() as client:
        as_json = await client.post(path, headers={"Korrelasjonsid": KORRELASJONSID})
        as_xml = await client.get(path, headers={"Accept": "application/xml"})
    assert as_json.status_code == 404
    assert json_body(as_json) == feil("003", "Ukjent url benyttet. Sjekk adressen.", KORRELASJONSID)
    assert as_xml.status_code == 404
    assert xml_children(xml_root(as_xml), FEIL_NS)["kode"] == "OPPDRAGUTENLANDSKEVIRKSOMHETER-003"


async def test_unknown_url_as_unknown_instance(sandbox: Sandbox) -> None:
    sandbox.state.switches.quirks.unknown_url_style = UnknownUrlStyle.UNKNOWN_INSTANCE
    async with sandbox.client() as client:
        response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    prefix, _, instance = response.text.partition("ID=")
    assert prefix == "Unknown instance. "
    assert len(instance) == 32
    assert int(instance, 16) >= 0


# Fixtures


async def test_unknown_but_valid_org_is_404_008(sandbox: Sandbox) -> None:
    headers = sandbox.authorised(OTHER_SUBJECT, Korrelasjonsid=KORRELASJONSID)
    async with sandbox.client() as client:
        response = await client.get(url(OTHER_SUBJECT), headers=headers)
    assert response.status_code == 404
    melding = "Fant ikke angitt organisasjonsnummer. Organisasjonsnummer 313506673 finnes ikke."
    assert json_body(response) == feil("008", melding, KORRELASJONSID)


async def test_fixtures_can_be_added_changed_and_removed(sandbox: Sandbox) -> None:
    sandbox.state.set_fixture(OTHER_SUBJECT, OppdragFixture(1, 2, 3))
    async with sandbox.client() as client:
        added = await client.get(url(OTHER_SUBJECT), headers=sandbox.authorised(OTHER_SUBJECT))
        sandbox.state.remove_org(OTHER_SUBJECT)
        removed = await client.get(url(OTHER_SUBJECT), headers=sandbox.authorised(OTHER_SUBJECT))
    assert json_body(added)["oppdrag"] == {
        "antallRegistrerteOppdragSomOppdragsgiver": 3,
        "antallAktiveArbeidstakere": 2,
        "antallAktiveOppdragSomArbeidsgiver": 1,
    }
    assert removed.status_code == 404


async def test_known_orgs_and_fixtures_come_from_the_state() -> None:
    state = default_state(
        known_orgs=[OTHER_SUBJECT], fixtures={"991825827": OppdragFixture(0, 0, 0)}
    )
    sandbox = make_sandbox(state=state)
    async with sandbox.client() as client:
        example = await client.get(url(SUBJECT), headers=sandbox.authorised(SUBJECT))
        other = await client.get(url(OTHER_SUBJECT), headers=sandbox.authorised(OTHER_SUBJECT))
        zeros = await client.get(url("991825827"), headers=sandbox.authorised("991825827"))
    assert example.status_code == 404
    assert json_body(other)["oppdrag"] == dict(reversed(COUNTS.items()))
    assert set(json_body(zeros)["oppdrag"].values()) == {0}


async def test_all_orgs_known_answers_the_example_for_any_org(sandbox: Sandbox) -> None:
    sandbox.state.set_all_orgs_known(True)
    async with sandbox.client() as client:
        response = await client.get(url(OTHER_SUBJECT), headers=sandbox.authorised(OTHER_SUBJECT))
    body = json_body(response)
    assert body["forespurteOrganisasjon"] == OTHER_SUBJECT
    assert body["oppdrag"] == COUNTS
