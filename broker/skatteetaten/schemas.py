"""Wire formats of the oppdrag API (``shared/reference/skatteetaten.md`` §2, §3.1), read tolerantly.

Skatteetaten adds fields and reorders keys without a new version and advises against schema
validation (§1.6), so readers here look up what they need by name, ignore the rest, and treat a
missing or null count as unknown (``None``) rather than as a broken answer. XML is matched on
local names, whatever the namespace (§2.2 is inferred), and a document with a DTD is refused
before any entity is read.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

__all__ = [
    "MEDIA_TYPES",
    "Accept",
    "Feil",
    "OppdragAnswer",
    "OppdragCounts",
    "OppdragDocument",
    "WireError",
    "body_format",
    "parse_feil",
    "parse_levert",
    "parse_oppdrag",
    "parse_xml",
]

Accept = Literal["json", "xml"]
MEDIA_TYPES: Mapping[Accept, str] = {"json": "application/json", "xml": "application/xml"}

_COUNT = re.compile(r"[0-9]{1,18}")


class WireError(ValueError):
    """A body we cannot read. The message names the problem and never quotes the body."""


@dataclass(frozen=True)
class OppdragCounts:
    """The three counts of §2.1; ``None`` when Skatteetaten left one out or sent null."""

    aktive_oppdrag_som_arbeidsgiver: int | None
    aktive_arbeidstakere: int | None
    registrerte_oppdrag_som_oppdragsgiver: int | None


@dataclass(frozen=True)
class OppdragDocument:
    """What the client reads from a 200 body (the body itself is relayed as it came)."""

    forespurt_organisasjon: str | None
    counts: OppdragCounts
    levert: datetime | None


@dataclass(frozen=True)
class OppdragAnswer:
    """Skatteetaten's 200 answer.

    ``body`` holds the bytes exactly as they came (content-encoding undone), for the relay to
    pass on untouched, with ``content_type`` as Skatteetaten sent it. ``korrelasjonsid`` is the
    one Skatteetaten echoed in a ``Korrelasjonsid`` response header, else the one we sent.
    ``levert`` is aware, in UTC: Skatteetaten writes local Norwegian time without an offset.
    """

    body: bytes
    content_type: str
    body_format: Accept
    korrelasjonsid: str
    forespurt_organisasjon: str | None
    counts: OppdragCounts
    levert: datetime | None


@dataclass(frozen=True)
class Feil:
    """The error body ``{kode, melding, korrelasjonsid}`` or ``<feil>`` (§3.1), fields as sent."""

    kode: str | None
    melding: str | None
    korrelasjonsid: str | None


def body_format(content_type: str | None, body: bytes) -> Accept | None:
    """JSON or XML by media type (``…/json``, ``…+json``, ``…/xml``, ``…+xml``); without a
    ``Content-Type``, by the first character of the body. None for anything else."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media.endswith(("/json", "+json")):
            return "json"
        if media.endswith(("/xml", "+xml")):
            return "xml"
        return None
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if start in (b"{", b"[") else "xml" if start == b"<" else None


def parse_levert(value: object, zone: tzinfo) -> datetime | None:
    """``levert`` in UTC. Any ISO 8601 date-time is taken, with or without a fraction (of any
    length) or an offset; one without an offset is wall time in ``zone`` (§2.1). In the hour
    a clock turns back, such a time is read as the first of the two. None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def parse_oppdrag(body: bytes, fmt: Accept, *, zone: tzinfo) -> OppdragDocument:
    """The fields of a 200 body. One with neither ``oppdrag`` nor ``forespurteOrganisasjon``
    is not an answer about an organisation (an error document sent with 200, say)."""
    if fmt == "json":
        document: Mapping[str, Any] = _json_object(body)
    else:
        document = _children(parse_xml(body))
    if "oppdrag" not in document and "forespurteOrganisasjon" not in document:
        raise WireError("the body has neither oppdrag nor forespurteOrganisasjon")
    oppdrag = document.get("oppdrag")
    return OppdragDocument(
        forespurt_organisasjon=_text(document.get("forespurteOrganisasjon")),
        counts=_counts(oppdrag if isinstance(oppdrag, dict) else {}),
        levert=parse_levert(document.get("levert"), zone),
    )


def parse_feil(body: bytes, content_type: str | None) -> Feil | None:
    """The error body, or None when there is none to read (a gateway's text or HTML page)."""
    fmt = body_format(content_type, body)
    try:
        if fmt == "json":
            return _feil_from_mapping(_json_object(body))
        if fmt == "xml":
            root = parse_xml(body)
            return _feil_from_mapping(_children(root)) if _local(root.tag) == "feil" else None
    except WireError:
        return None
    return None


def parse_xml(body: bytes) -> ET.Element:
    """The document's root. A DTD (and so any entity declaration) is refused outright."""
    # Expat fetches no external entities, and ``_NoDoctype`` stops at the DTD's first line.
    parser = ET.XMLParser(target=_NoDoctype())  # noqa: S314
    try:
        parser.feed(body)
        root: ET.Element = parser.close()
    except (ET.ParseError, _DoctypeRefused) as exc:
        reason = "it declares a DTD" if isinstance(exc, _DoctypeRefused) else "it is not XML"
        raise WireError(f"the body cannot be read: {reason}") from None
    return root


# --- JSON -----------------------------------------------------------------------------------------


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise WireError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise WireError("the body is not a JSON object")
    return document


# --- XML ------------------------------------------------------------------------------------------


class _DoctypeRefused(Exception):
    pass


class _NoDoctype(ET.TreeBuilder):
    """Expat calls ``doctype`` when a DTD starts, before any of its declarations is read."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeRefused


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element) -> dict[str, Any]:
    """Child elements by local name: text for a leaf, a dict for one with children. The first
    of repeated names wins."""
    found: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        if name and name not in found:
            found[name] = _children(child) if len(child) else child.text
    return found


# --- shared ---------------------------------------------------------------------------------------


def _counts(oppdrag: Mapping[str, Any]) -> OppdragCounts:
    return OppdragCounts(
        aktive_oppdrag_som_arbeidsgiver=_count(oppdrag.get("antallAktiveOppdragSomArbeidsgiver")),
        aktive_arbeidstakere=_count(oppdrag.get("antallAktiveArbeidstakere")),
        registrerte_oppdrag_som_oppdragsgiver=_count(
            oppdrag.get("antallRegistrerteOppdragSomOppdragsgiver")
        ),
    )


def _count(value: object) -> int | None:
    """A non-negative whole number, from a JSON number or a string of digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and _COUNT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _feil_from_mapping(document: Mapping[str, Any]) -> Feil | None:
    feil = Feil(
        kode=_text(document.get("kode")),
        melding=_text(document.get("melding")),
        korrelasjonsid=_text(document.get("korrelasjonsid")),
    )
    return None if feil == Feil(None, None, None) else feil
