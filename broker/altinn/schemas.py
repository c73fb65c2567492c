"""The Altinn 3 consent API's wire formats: request bodies out, DTOs and ProblemDetails in.

Follows ``shared/reference/altinn-consent.md`` §2.2 (create/read/events), §4.2 (statuses and
event types) and §5.1 (ProblemDetails). Parsing is tolerant of what we do not use (unknown
fields, enum and property-name casing, ``metaData`` vs ``metadata``; §7.6 leaves the live casing
open) and strict on what we rely on: a missing or malformed id, party, ``validTo``, status or
``viewUri`` raises :class:`WireError`, which the client reports as an upstream failure.
No HTTP here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from broker.consent.ports import AltinnCreated, AltinnRequest, AltinnState, AltinnStatus

__all__ = [
    "DEFAULT_MESSAGE_KEYS",
    "DEFAULT_MESSAGE_TEXTS",
    "LEGACY_MESSAGE_KEYS",
    "ORG_URN",
    "AltinnEvent",
    "AltinnEventType",
    "EventsPage",
    "Problem",
    "RequestMessages",
    "WireError",
    "create_body",
    "parse_created",
    "parse_events",
    "parse_problem",
    "parse_state",
]

ORG_URN = "urn:altinn:organization:identifier-no:"
RESOURCE_TYPE = "urn:altinn:resource"
_ORGNR = re.compile(r"\d{9}")
_TITLE_LIMIT = 200

# Altinn's own e2e tests send en/nb/nn (§2.2); Altinn 2 used no-nb/no-nn. Which keys Altinn 3
# shows for Digdir's templates is open (§7.8), hence the mapping is configuration.
DEFAULT_MESSAGE_KEYS: Mapping[str, str] = {"nb": "nb", "nn": "nn", "en": "en"}
LEGACY_MESSAGE_KEYS: Mapping[str, str] = {"nb": "no-nb", "nn": "no-nn", "en": "en"}
DEFAULT_MESSAGE_TEXTS: Mapping[str, str] = {
    "nb": "Oppdragsgiveren ber om samtykke til å hente opplysninger fra Skatteetaten om "
    "oppdrag og arbeidstakere i Norge (Oppdrag utenlandske virksomheter).",
    "nn": "Oppdragsgivaren ber om samtykke til å hente opplysningar frå Skatteetaten om "
    "oppdrag og arbeidstakarar i Noreg (Oppdrag utanlandske verksemder).",
    "en": "The contracting authority asks for your consent to obtain information from the "
    "Norwegian Tax Administration about your assignments and employees in Norway.",
}


class WireError(ValueError):
    """An Altinn body we cannot use. The message names the field, never a value."""


class AltinnEventType(StrEnum):
    """Altinn 3's consent event types (§4.2): the six statuses plus ``Used``."""

    CREATED = "Created"
    REJECTED = "Rejected"
    ACCEPTED = "Accepted"
    REVOKED = "Revoked"
    DELETED = "Deleted"
    EXPIRED = "Expired"
    USED = "Used"


@dataclass(frozen=True)
class AltinnEvent:
    """One entry of the events feed. The feed carries no event id or actor today (§2.2);
    ``id`` and ``performed_by`` are filled in only if Altinn ever sends them."""

    consent_id: uuid.UUID
    event_type: AltinnEventType
    created: datetime
    id: uuid.UUID | None = None
    performed_by: str | None = None


@dataclass(frozen=True)
class EventsPage:
    """A page of the events feed.

    ``next`` is the continuation token from ``links.next``: more events may follow at once (the
    next page may also be empty). Without it the feed has no token for "after the last event"
    (the events carry no ids), so ``cursor`` is what to ask with next time: ``next`` when there
    is one, else the continuation this page was read with. The events of a partial page are
    then read again, so a poller de-duplicates on (consent id, type, created).
    """

    events: tuple[AltinnEvent, ...]
    next: str | None
    cursor: str | None


@dataclass(frozen=True)
class RequestMessages:
    """The ``requestMessage`` sent with a request: the text for its language under Altinn's key.

    ``texts`` maps our language (nb/nn/en) to the text; an unknown language falls back to
    ``default_language``. ``texts=None`` sends no message at all (Skatteetaten's own templates
    forbade one in Altinn 2; whether Digdir's allow one is open, §7.8).
    """

    texts: Mapping[str, str] | None = field(default_factory=lambda: dict(DEFAULT_MESSAGE_TEXTS))
    keys: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MESSAGE_KEYS))
    default_language: str = "nb"

    def __post_init__(self) -> None:
        if self.texts is not None and self.default_language not in self.texts:
            raise ValueError("the default language needs a text")

    def wire(self, language: str) -> dict[str, str] | None:
        if self.texts is None:
            return None
        chosen = language if language in self.texts else self.default_language
        return {self.keys.get(chosen, chosen): self.texts[chosen]}


@dataclass(frozen=True)
class Problem:
    """An Altinn ProblemDetails, reduced to what is safe to pass on: codes and titles only
    (``detail`` and extensions may echo input such as party numbers, so they are dropped)."""

    status: int
    code: str
    title: str
    codes: tuple[str, ...]  # the leaf codes: validation errors and nested problems
    summary: str
    trace_id: str | None = None


def _org_urn(orgnr: str) -> str:
    if not _ORGNR.fullmatch(orgnr):
        raise ValueError("an organisation number has 9 digits")
    return ORG_URN + orgnr


def create_body(request: AltinnRequest, *, messages: RequestMessages) -> dict[str, Any]:
    """``ConsentRequestDto`` for ``POST /consentrequests`` (§2.2, example request)."""
    if request.valid_to.utcoffset() is None:
        raise ValueError("valid_to must carry a UTC offset")
    body: dict[str, Any] = {
        "id": str(request.id),
        "from": _org_urn(request.subject_org),
        "to": _org_urn(request.requestor_org),
        "validTo": request.valid_to.isoformat(),
        "consentRights": [
            {
                "action": ["consent"],
                "resource": [{"type": RESOURCE_TYPE, "value": request.resource}],
                "metadata": {},
            }
        ],
    }
    message = messages.wire(request.language)
    if message is not None:
        body["requestMessage"] = message
    body["redirectUrl"] = request.redirect_url
    body["portalViewMode"] = "hide"
    return body


# --- reading ------------------------------------------------------------------------------------


def _object(value: Any, name: str) -> dict[str, Any]:
    """A JSON object with its keys folded to lower case (ASP.NET binds names that way)."""
    if not isinstance(value, dict):
        raise WireError(f"{name} is not an object")
    return {str(key).lower(): item for key, item in value.items()}


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireError(f"{name} is not a list")
    return value


def _text(obj: Mapping[str, Any], key: str, name: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{name} is missing")
    return value


def _uuid(obj: Mapping[str, Any], key: str, name: str) -> uuid.UUID:
    text = _text(obj, key, name)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise WireError(f"{name} is not a GUID") from None


def _time(obj: Mapping[str, Any], key: str, name: str) -> datetime:
    text = _text(obj, key, name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise WireError(f"{name} is not an ISO 8601 time") from None
    if parsed.utcoffset() is None:
        # .NET writes DateTimeOffset with an offset; guessing one would move validTo by hours.
        raise WireError(f"{name} has no UTC offset")
    return parsed


def _orgnr(obj: Mapping[str, Any], key: str, name: str) -> str:
    urn = _text(obj, key, name)
    orgnr = urn.removeprefix(ORG_URN)
    if urn == orgnr or not _ORGNR.fullmatch(orgnr):
        raise WireError(f"{name} is not an organisation URN")
    return orgnr


def _enum_value(raw: Any, lookup: Mapping[str, Any], name: str) -> Any:
    member = lookup.get(raw.lower()) if isinstance(raw, str) else None
    if member is None:
        raise WireError(f"{name} has an unknown value")
    return member


_STATUSES = {s.value.lower(): s for s in AltinnStatus}
_EVENT_TYPES = {t.value.lower(): t for t in AltinnEventType}


def parse_created(body: Any, *, consent_id: uuid.UUID) -> AltinnCreated:
    """The create answer (201, or 200 on replay). The 200 body may be Altinn's core model
    rather than the DTO (§2.2, inferred), so only ``id`` and ``viewUri`` are read."""
    obj = _object(body, "consent request")
    if _uuid(obj, "id", "id") != consent_id:
        raise WireError("id is not the id we sent")
    return AltinnCreated(id=consent_id, view_uri=_text(obj, "viewuri", "viewUri"))


def _resources(obj: Mapping[str, Any]) -> tuple[str, ...]:
    values: list[str] = []
    for i, right in enumerate(_list(obj.get("consentrights"), "consentRights")):
        right_obj = _object(right, f"consentRights[{i}]")
        for j, resource in enumerate(_list(right_obj.get("resource"), "resource")):
            values.append(_text(_object(resource, "resource"), "value", f"resource[{j}].value"))
    return tuple(values)


def _request_events(obj: Mapping[str, Any]) -> list[tuple[AltinnEventType, datetime]]:
    raw = obj.get("consentrequestevents")
    events: list[tuple[AltinnEventType, datetime]] = []
    for i, item in enumerate(_list(raw if raw is not None else [], "consentRequestEvents")):
        event = _object(item, f"consentRequestEvents[{i}]")
        kind = _EVENT_TYPES.get(str(event.get("eventtype", "")).lower())
        if kind is not None:  # an event type added later is not ours to interpret
            events.append((kind, _time(event, "created", "consentRequestEvents.created")))
    return events


def _effective_status(
    stored: AltinnStatus, valid_to: datetime, expired_event: bool, now: datetime
) -> AltinnStatus:
    # Altinn never stores Expired: it synthesises the event on read (§2.2, §4.2). Only an open
    # or granted request expires; a rejection or revocation that came first is the answer.
    if stored in (AltinnStatus.CREATED, AltinnStatus.ACCEPTED) and (
        valid_to <= now or expired_event
    ):
        return AltinnStatus.EXPIRED
    return stored


def parse_state(body: Any, *, now: datetime) -> AltinnState:
    """``ConsentRequestDetailsDto`` from ``GET /consentrequests/{id}`` as our ``AltinnState``."""
    obj = _object(body, "consent request")
    valid_to = _time(obj, "validto", "validTo")
    events = _request_events(obj)
    stored = _enum_value(obj.get("status"), _STATUSES, "status")
    expired_event = any(kind is AltinnEventType.EXPIRED for kind, _ in events)
    accepted = [at for kind, at in events if kind is AltinnEventType.ACCEPTED]
    consented_at = accepted[-1] if accepted else None
    if consented_at is None and obj.get("consented") is not None:
        consented_at = _time(obj, "consented", "consented")
    return AltinnState(
        id=_uuid(obj, "id", "id"),
        status=_effective_status(stored, valid_to, expired_event, now),
        subject_org=_orgnr(obj, "from", "from"),
        requestor_org=_orgnr(obj, "to", "to"),
        resources=_resources(obj),
        valid_to=valid_to,
        consented_at=consented_at,
    )


def _feed_event(item: Any, index: int) -> AltinnEvent | None:
    obj = _object(item, f"data[{index}]")
    kind = _EVENT_TYPES.get(str(obj.get("eventtype", "")).lower())
    if kind is None:
        return None
    event_id = obj.get("consenteventid")
    performed_by = obj.get("performedby")
    return AltinnEvent(
        consent_id=_uuid(obj, "consentrequestid", "consentRequestId"),
        event_type=kind,
        created=_time(obj, "changeddate", "changedDate"),
        id=_uuid(obj, "consenteventid", "consentEventId") if event_id is not None else None,
        performed_by=performed_by if isinstance(performed_by, str) else None,
    )


def _continuation(links: Any) -> str | None:
    next_url = _object(links if links is not None else {}, "links").get("next")
    if next_url is None or next_url == "":
        return None
    if not isinstance(next_url, str):
        raise WireError("links.next is not a URL")
    tokens = parse_qs(urlsplit(next_url).query).get("continuationToken")
    if not tokens or not tokens[0]:
        raise WireError("links.next has no continuationToken")
    return tokens[0]


def parse_events(body: Any, *, requested: str | None) -> EventsPage:
    """``{"links": {"next"}, "data": [...]}`` from ``GET /consentrequests/events``. Events of
    a type we do not know are left out rather than failing the whole feed."""
    obj = _object(body, "events page")
    parsed = (_feed_event(item, i) for i, item in enumerate(_list(obj.get("data"), "data")))
    events = tuple(event for event in parsed if event is not None)
    next_token = _continuation(obj.get("links"))
    return EventsPage(events, next_token, next_token if next_token is not None else requested)


# --- problems -----------------------------------------------------------------------------------


def _title(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return " ".join(text.split())[:_TITLE_LIMIT]


def _validation_lines(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    raw = obj.get("validationerrors")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        error = _object(item, "validationError")
        paths = error.get("paths")
        where = ", ".join(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else ""
        title = _title(error.get("title"))
        lines.append((str(error.get("code", "")), f"{title} ({where})" if where else title))
    return lines


def _leaves(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(code, text) for each leaf: validation errors, nested problems, or the problem itself."""
    leaves = _validation_lines(obj)
    raw = obj.get("problems")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            leaves.extend(_leaves(_object(item, "problem")))
    if not leaves:
        leaves.append((str(obj.get("code", "")), _title(obj.get("title"))))
    return leaves


def parse_problem(body: Any, *, status: int) -> Problem | None:
    """Altinn's ProblemDetails (§5.1), or None when ``body`` is not one (no ``code``)."""
    if not isinstance(body, dict):
        return None
    obj = _object(body, "problem")
    code = obj.get("code")
    if not isinstance(code, str) or not code:
        return None
    leaves = _leaves(obj)
    summary = "; ".join(f"{leaf_code} {text}".strip() for leaf_code, text in leaves)
    trace_id = obj.get("traceid")
    return Problem(
        status=status,
        code=code,
        title=_title(obj.get("title")),
        codes=tuple(leaf_code for leaf_code, _ in leaves if leaf_code),
        summary=summary,
        trace_id=trace_id if isinstance(trace_id, str) else None,
    )
