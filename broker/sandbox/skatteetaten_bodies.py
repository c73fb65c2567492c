"""Wire bodies of the fake Skatteetaten API: content negotiation, success and error documents.

Follows ``shared/reference/skatteetaten.md``: §2.1 (JSON body), §2.2 (XML shape, inferred),
§3.1 (``{kode, melding, korrelasjonsid}`` and ``<feil>``), §3.2/§3.3 (codes and statuses) and §6
(negotiation: no ``Accept``, ``*/*`` or JSON gives JSON; XML gives XML; anything else is 406).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "AUTHENTICATION",
    "AUTHORISATION",
    "BACKEND_ERROR",
    "CONSENT",
    "DAS_FORBIDDEN",
    "DAS_UNAVAILABLE",
    "EXAMPLE_FIXTURE",
    "EXAMPLE_ORGNR",
    "FEIL_NAMESPACE",
    "FORMAT",
    "INPUT_VALIDATION",
    "ORG_NOT_FOUND",
    "UNEXPECTED_ERROR",
    "UNKNOWN_URL",
    "ErrorCode",
    "Format",
    "OppdragFixture",
    "error_body",
    "format_levert",
    "is_uuid",
    "negotiate",
    "success_body",
    "success_document",
]

FEIL_NAMESPACE = "urn:no:skatteetaten:datasamarbeid:feil:v1"
_PREFIX = "OPPDRAGUTENLANDSKEVIRKSOMHETER"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class ErrorCode:
    kode: str
    status: int
    melding: str  # the table's wording; a refusal may give a more precise one (§3.1)


UNEXPECTED_ERROR = ErrorCode(f"{_PREFIX}-001", 500, "Uventet feil på tjenesten.")
BACKEND_ERROR = ErrorCode(f"{_PREFIX}-002", 500, "Uventet feil i et bakenforliggende system.")
UNKNOWN_URL = ErrorCode(f"{_PREFIX}-003", 404, "Ukjent url benyttet.")
AUTHENTICATION = ErrorCode(f"{_PREFIX}-004", 401, "Feil i forbindelse med autentisering.")
AUTHORISATION = ErrorCode(f"{_PREFIX}-005", 403, "Feil i forbindelse med autorisering.")
INPUT_VALIDATION = ErrorCode(
    f"{_PREFIX}-006", 400, "Feil i forbindelse med validering av inputdata."
)
CONSENT = ErrorCode(f"{_PREFIX}-007", 403, "Feil i forbindelse med samtykke.")
ORG_NOT_FOUND = ErrorCode(f"{_PREFIX}-008", 404, "Fant ikke angitt organisasjonsnummer.")
FORMAT = ErrorCode(
    f"{_PREFIX}-009", 406, "Feil tilknyttet dataformat. Kun json eller xml er støttet."
)
DAS_UNAVAILABLE = ErrorCode(
    "DAS-003", 500, "Informasjonen er midlertidig utilgjengelig. Prøv igjen senere."
)
DAS_FORBIDDEN = ErrorCode("DAS-008", 403, "Ikke autorisert for den forespurte ressursen.")


class Format(StrEnum):
    JSON = "application/json"
    XML = "application/xml"


@dataclass(frozen=True)
class OppdragFixture:
    """The counts returned for one organisation; ``None`` is a null (JSON) or absent (XML) count."""

    antall_aktive_oppdrag_som_arbeidsgiver: int | None = 44
    antall_aktive_arbeidstakere: int | None = 64
    antall_registrerte_oppdrag_som_oppdragsgiver: int | None = 14


EXAMPLE_ORGNR = "974761076"
EXAMPLE_FIXTURE = OppdragFixture()  # the documented example (44 / 64 / 14), §2.1


def negotiate(accept: str | None) -> Format | None:
    """The body format for an ``Accept`` header, or None when neither JSON nor XML is acceptable.

    The most specific matching range gives a format its quality; JSON wins ties (it is the default).
    """
    if accept is None or not accept.strip():
        return Format.JSON
    ranges = [_parse_range(part) for part in accept.split(",") if part.strip()]
    json_q, xml_q = _quality(ranges, Format.JSON), _quality(ranges, Format.XML)
    if json_q <= 0 and xml_q <= 0:
        return None
    return Format.XML if xml_q > json_q else Format.JSON


def _parse_range(part: str) -> tuple[str, float]:
    media, *params = (piece.strip() for piece in part.split(";"))
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                quality = 0.0
    return media.lower(), quality if 0.0 <= quality <= 1.0 else 0.0


def _quality(ranges: list[tuple[str, float]], fmt: Format) -> float:
    specificity = {str(fmt): 2, "application/*": 1, "*/*": 0}
    matches = [(specificity[media], q) for media, q in ranges if media in specificity]
    return max(matches)[1] if matches else 0.0


def is_uuid(value: str) -> bool:
    """The canonical 8-4-4-4-12 form that Skatteetaten asks for in ``Korrelasjonsid``."""
    return _UUID.fullmatch(value) is not None


def format_levert(moment: datetime, zone: ZoneInfo, *, with_fraction: bool) -> str:
    """Local wall time without offset, with microseconds or without any fraction (§2.1)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    return local.isoformat(timespec="microseconds" if with_fraction else "seconds")


def success_document(
    orgnr: str, fixture: OppdragFixture, levert: str, *, extra_field: bool, reordered: bool
) -> dict[str, Any]:
    oppdrag: dict[str, Any] = {
        "antallAktiveOppdragSomArbeidsgiver": fixture.antall_aktive_oppdrag_som_arbeidsgiver,
        "antallAktiveArbeidstakere": fixture.antall_aktive_arbeidstakere,
        "antallRegistrerteOppdragSomOppdragsgiver": (
            fixture.antall_registrerte_oppdrag_som_oppdragsgiver
        ),
    }
    if reordered:
        # Sibling eBevis APIs put ``levert`` first (§2.1); order is not part of the contract.
        oppdrag = dict(reversed(oppdrag.items()))
        document: dict[str, Any] = {"levert": levert, "oppdrag": oppdrag}
        document["forespurteOrganisasjon"] = orgnr
    else:
        document = {"forespurteOrganisasjon": orgnr, "oppdrag": oppdrag, "levert": levert}
    if extra_field:
        # New fields arrive without a new version (§1.6), so clients must ignore unknown ones.
        document["tilleggsinformasjon"] = {"kilde": "Oppdrags- og arbeidsforholdsregisteret"}
    return document


def success_body(document: Mapping[str, Any], fmt: Format, *, root: str, namespace: str) -> bytes:
    if fmt is Format.JSON:
        return _json(document)
    return _xml(root, namespace, document)


def error_body(code: ErrorCode, melding: str, korrelasjonsid: str, fmt: Format) -> bytes:
    document = {"kode": code.kode, "melding": melding, "korrelasjonsid": korrelasjonsid}
    if fmt is Format.JSON:
        return _json(document)
    return _xml("feil", FEIL_NAMESPACE, document)


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _xml(root: str, namespace: str, document: Mapping[str, Any]) -> bytes:
    element = ET.Element(f"{{{namespace}}}{root}")
    _fill(element, namespace, document)
    # default_namespace avoids ET.register_namespace, which mutates process-wide state.
    text = ET.tostring(element, encoding="unicode", default_namespace=namespace)
    return (_XML_DECLARATION + text).encode("utf-8")


def _fill(parent: ET.Element, namespace: str, document: Mapping[str, Any]) -> None:
    for name, value in document.items():
        if value is None:
            continue
        child = ET.SubElement(parent, f"{{{namespace}}}{name}")
        if isinstance(value, Mapping):
            _fill(child, namespace, value)
        else:
            child.text = str(value)
