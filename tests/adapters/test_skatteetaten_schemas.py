"""The wire readers on their own: ``levert`` in its forms, tolerant counts, XML without DTDs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from broker.skatteetaten.schemas import (
    Feil,
    OppdragCounts,
    WireError,
    body_format,
    parse_feil,
    parse_levert,
    parse_oppdrag,
    parse_xml,
)

OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Winter (CET, +01:00) and summer (CEST, +02:00) wall time without an offset.
        ("2020-09-17T09:44:42.877055", datetime(2020, 9, 17, 7, 44, 42, 877055, tzinfo=UTC)),
        ("2020-09-21T09:22:08", datetime(2020, 9, 21, 7, 22, 8, tzinfo=UTC)),
        ("2026-01-15T11:00:00", datetime(2026, 1, 15, 10, 0, tzinfo=UTC)),
        ("2026-01-15T11:00:00.5", datetime(2026, 1, 15, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-15T11:00:00.1234567", datetime(2026, 1, 15, 10, 0, 0, 123456, tzinfo=UTC)),
        # With an offset, the offset wins.
        ("2026-01-15T11:00:00Z", datetime(2026, 1, 15, 11, 0, tzinfo=UTC)),
        ("2026-01-15T11:00:00.25+03:00", datetime(2026, 1, 15, 8, 0, 0, 250000, tzinfo=UTC)),
        (" 2026-01-15T11:00:00 ", datetime(2026, 1, 15, 10, 0, tzinfo=UTC)),
        # The autumn hour that happens twice: the first (still summer time) is taken.
        ("2026-10-25T02:30:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_levert_forms(text: str, expected: datetime) -> None:
    moment = parse_levert(text, OSLO)
    assert moment == expected
    assert moment is not None
    assert moment.tzinfo is UTC


@pytest.mark.parametrize("value", [None, 20200917, "", "i går", "2020-13-01T00:00:00", []])
def test_unreadable_levert_is_none(value: object) -> None:
    assert parse_levert(value, OSLO) is None


def test_levert_in_another_zone() -> None:
    zone = timezone(timedelta(hours=-5))
    assert parse_levert("2026-01-15T05:00:00", zone) == datetime(2026, 1, 15, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b"", "json"),
        ("application/json; charset=utf-8", b"", "json"),
        ("Application/Problem+JSON", b"", "json"),
        ("text/xml", b"", "xml"),
        ("application/xml;charset=UTF-8", b"", "xml"),
        ("application/vnd.skatteetaten+xml", b"", "xml"),
        ("text/html", b"{}", None),
        (None, b'\xef\xbb\xbf  {"a": 1}', "json"),
        (None, b"\n<x/>", "xml"),
        (None, b"404 NOT FOUND", None),
        ("", b"", None),
    ],
)
def test_body_format(content_type: str | None, body: bytes, expected: str | None) -> None:
    assert body_format(content_type, body) == expected


def _json(**document: object) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("oppdrag", "expected"),
    [
        (
            {
                "antallAktiveOppdragSomArbeidsgiver": 44,
                "antallAktiveArbeidstakere": 64,
                "antallRegistrerteOppdragSomOppdragsgiver": 14,
            },
            OppdragCounts(44, 64, 14),
        ),
        ({"antallAktiveArbeidstakere": "7", "ny": 1}, OppdragCounts(None, 7, None)),
        (
            {
                "antallAktiveOppdragSomArbeidsgiver": True,
                "antallAktiveArbeidstakere": -1,
                "antallRegistrerteOppdragSomOppdragsgiver": 3.0,
            },
            OppdragCounts(None, None, 3),
        ),
        ({"antallAktiveArbeidstakere": 2.5}, OppdragCounts(None, None, None)),
        ({"antallAktiveArbeidstakere": "mange"}, OppdragCounts(None, None, None)),
        (None, OppdragCounts(None, None, None)),
        ([1, 2, 3], OppdragCounts(None, None, None)),
    ],
)
def test_counts_are_read_tolerantly(oppdrag: object, expected: OppdragCounts) -> None:
    document = parse_oppdrag(_json(oppdrag=oppdrag), "json", zone=OSLO)
    assert document.counts == expected
    assert (document.forespurt_organisasjon, document.levert) == (None, None)


def test_xml_in_any_namespace_or_none() -> None:
    for namespace in ('xmlns="urn:no:skatteetaten:datasamarbeid:oppdrag:v2"', ""):
        body = (
            f"<svar {namespace}><levert>2026-01-15T11:00:00</levert><ekstra><a>1</a></ekstra>"
            "<oppdrag><antallAktiveArbeidstakere> 64 </antallAktiveArbeidstakere>"
            '<antallAktiveOppdragSomArbeidsgiver xmlns:xsi="http://www.w3.org/2001/'
            'XMLSchema-instance" xsi:nil="true"/></oppdrag>'
            "<forespurteOrganisasjon>310100013</forespurteOrganisasjon>"
            "<forespurteOrganisasjon>999999999</forespurteOrganisasjon></svar>"
        ).encode()
        document = parse_oppdrag(body, "xml", zone=OSLO)
        assert document.counts == OppdragCounts(None, 64, None)
        assert document.forespurt_organisasjon == "310100013"  # the first of repeats
        assert document.levert == datetime(2026, 1, 15, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE x SYSTEM "http://evil.test/x.dtd"><x/>',
        b'<!DOCTYPE x [<!ENTITY a "aa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode(
            "utf-16"
        ),
    ],
)
def test_xml_with_a_dtd_is_refused(body: bytes) -> None:
    with pytest.raises(WireError, match="it declares a DTD"):
        parse_xml(body)
    assert parse_feil(body, "application/xml") is None


@pytest.mark.parametrize("body", [b"", b"<x>&undefined;</x>", b"<a><b></a>", b"plain"])
def test_broken_xml_is_refused(body: bytes) -> None:
    with pytest.raises(WireError, match="it is not XML"):
        parse_xml(body)


def test_feil_in_json_and_xml() -> None:
    as_json = _json(korrelasjonsid="k", kode="K-1", melding="m", ny=[1])
    assert parse_feil(as_json, "application/json") == Feil("K-1", "m", "k")
    as_xml = b"<feil xmlns='urn:x'><kode>K-2</kode><korrelasjonsid>k2</korrelasjonsid></feil>"
    assert parse_feil(as_xml, "application/xml") == Feil("K-2", None, "k2")
    assert parse_feil(as_xml, None) == Feil("K-2", None, "k2")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"404 NOT FOUND", "text/plain"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b"Unknown instance. ID=8ac2", None),
        (b"<html><body>busy</body></html>", "application/xml"),  # XML, but no <feil>
        (b'{"kode": 7, "melding": ""}', "application/json"),  # nothing usable
        (b"[1]", "application/json"),
        (b"{broken", "application/json"),
        (b"<feil><kode>", "application/xml"),
    ],
)
def test_bodies_without_a_feil(body: bytes, content_type: str | None) -> None:
    assert parse_feil(body, content_type) is None
