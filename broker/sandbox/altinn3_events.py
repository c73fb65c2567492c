"""The consent events feed, ``GET /consentrequests/events`` (reference §2.2 "Events feed").

Oldest first, only requests whose ``to`` is the caller, only events older than the safety lag
(300 s in Altinn), ``links.next`` whenever a page is full (so the next page may be empty), and an
opaque cursor: base64 of the last event id in .NET's ``Guid.ToByteArray`` order.

The register's UUIDv7 ids are random within one millisecond, so ordering by id alone would
shuffle events created at one instant of a frozen clock; the feed keeps the register's append
order (chronological while the clock only moves forward) and falls back to id order for a
cursor it does not know.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.datastructures import URL, QueryParams

from broker.sandbox.altinn3_binding import parse_time
from broker.sandbox.altinn3_problems import VLD, Problem, ValidationError, validation_problem
from broker.sandbox.consents import ConsentEvent, ConsentRegister

__all__ = ["EventQuery", "bind_query", "encode_token", "next_link", "select_events", "validate"]

_FILTERABLE = frozenset({"rejected", "accepted", "revoked", "deleted", "used"})


@dataclass(frozen=True)
class EventQuery:
    token: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    event_types: tuple[str, ...] = ()
    consent_request_id: uuid.UUID | None = None
    continue_from: uuid.UUID | None = None


def _bind_time(params: QueryParams, name: str, errors: list[ValidationError]) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    parsed = parse_time(raw)
    if parsed is None:
        errors.append(VLD.INVALID_VALUE.at(f"/$QUERY/{name}", f"The value '{raw}' is not valid."))
    return parsed


def _bind_guid(params: QueryParams, errors: list[ValidationError]) -> uuid.UUID | None:
    raw = params.get("consentRequestId")
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        detail = f"The value '{raw}' is not valid."
        errors.append(VLD.INVALID_VALUE.at("/$QUERY/consentRequestId", detail))
        return None


def bind_query(params: QueryParams) -> EventQuery | Problem:
    """ASP.NET model binding of the query: typed values, or a 400 before the action runs."""
    errors: list[ValidationError] = []
    query = EventQuery(
        token=params.get("continuationToken"),
        created_after=_bind_time(params, "createdAfter", errors),
        created_before=_bind_time(params, "createdBefore", errors),
        event_types=tuple(params.getlist("eventType")),
        consent_request_id=_bind_guid(params, errors),
    )
    return validation_problem(errors) if errors else query


def _decode_token(token: str) -> uuid.UUID | None:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    return uuid.UUID(bytes_le=raw) if len(raw) == 16 else None


def encode_token(event_id: uuid.UUID) -> str:
    return base64.b64encode(event_id.bytes_le).decode("ascii")


def validate(query: EventQuery) -> EventQuery | Problem:
    errors: list[ValidationError] = []
    after, before = query.created_after, query.created_before
    if after is not None and before is not None and after >= before:
        errors.append(VLD.INVALID_DATE_RANGE.at("$QUERY/createdAfter"))
    if any(t.lower() not in _FILTERABLE for t in query.event_types):
        errors.append(VLD.INVALID_EVENT_TYPE.at("$QUERY/eventType"))
    continue_from = None
    if query.token:
        continue_from = _decode_token(query.token)
        if continue_from is None:
            errors.append(VLD.INVALID_CONTINUATION_TOKEN.at("$QUERY/continuationToken"))
    if errors:
        return validation_problem(errors)
    return replace(query, continue_from=continue_from)


def _after_cursor(events: list[ConsentEvent], cursor: uuid.UUID | None) -> list[ConsentEvent]:
    if cursor is None:
        return events
    for index, event in enumerate(events):
        if event.id == cursor:
            return events[index + 1 :]
    return [e for e in events if e.id.int > cursor.int]


def _matches(event: ConsentEvent, query: EventQuery) -> bool:
    types = {t.lower() for t in query.event_types}
    if types and event.event_type.value.lower() not in types:
        return False
    if query.consent_request_id is not None and event.consent_id != query.consent_request_id:
        return False
    if query.created_after is not None and event.created < query.created_after:
        return False
    return query.created_before is None or event.created < query.created_before


def select_events(
    register: ConsentRegister,
    *,
    to_party: str,
    query: EventQuery,
    now: datetime,
    lag_seconds: int,
    page_size: int,
) -> list[ConsentEvent]:
    cutoff = now - timedelta(seconds=lag_seconds)
    page: list[ConsentEvent] = []
    for event in _after_cursor(register.events(), query.continue_from):
        record = register.get(event.consent_id)
        if record is None or record.to_party != to_party:
            continue
        if event.created <= cutoff and _matches(event, query):
            page.append(event)
            if len(page) == page_size:
                break
    return page


def _dotnet_round_trip(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def next_link(url: URL, params: QueryParams, query: EventQuery, last: ConsentEvent) -> str:
    """The ``links.next`` URL: the cursor plus every filter the caller sent."""
    pairs: list[tuple[str, str]] = [("continuationToken", encode_token(last.id))]
    if "consentRequestId" in params and query.consent_request_id is not None:
        pairs.append(("consentRequestId", str(query.consent_request_id)))
    if "createdAfter" in params and query.created_after is not None:
        pairs.append(("createdAfter", _dotnet_round_trip(query.created_after)))
    if "createdBefore" in params and query.created_before is not None:
        pairs.append(("createdBefore", _dotnet_round_trip(query.created_before)))
    pairs.extend(("eventType", t) for t in query.event_types)
    return f"{url.scheme}://{url.netloc}{url.path}?{urlencode(pairs)}"
