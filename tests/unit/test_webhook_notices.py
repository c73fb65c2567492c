"""Which state changes become which webhook events, and what their thin payloads say (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from broker.consent.machine import (
    Cancelled,
    ConsentFlow,
    Denied,
    Event,
    Expired,
    Failed,
    Granted,
    Revoked,
    Started,
    step,
)
from broker.consent.model import ConsentRequest, Generation, Language, RevokedBy, State
from broker.consent.notices import REVOCATION_REASONS, EventType, notices
from broker.webhooks.payloads import EVENT_EXAMPLES, EVENT_SCHEMAS
from tests.app.api_support import FORMATS

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
VALID_TO = NOW + timedelta(days=30)


def _request(state: State) -> ConsentRequest:
    return ConsentRequest(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        requestor_org="310200018",
        subject_org="310100013",
        resource="digdir-oppdragutenlandskevirksomheter-skatteetaten",
        reference="case-42",
        external_reference="case-4711",
        language=Language.NB,
        return_url="https://portal.example/return",
        state=state,
        state_reason=None,
        generation=Generation.ALTINN3,
        altinn_consent_id=uuid.uuid4(),
        valid_to=VALID_TO,
        idempotency_key=None,
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
    )


def _events(state: State, event: Event) -> list[dict[str, object]]:
    request = _request(state)
    moved, effects = step(ConsentFlow(str(request.id), state, request.valid_to), event, now=NOW)
    found = notices(request, moved, effects, at=NOW)
    for notice in found:
        assert notice.client_id == request.client_id
        assert notice.consent_request_id == request.id
        assert notice.occurred_at == NOW
        assert notice.id.version == 7  # time-ordered: the delivery list pages by it
        assert notice.payload["type"] == notice.event_type
    return [dict(n.payload) for n in found]


CASES: list[tuple[State, Event, str | None, str, str | None, dict[str, str] | None]] = [
    # (state before, event, event type, status, status_reason, revocation)
    (State.REDIRECTED, Granted(NOW, VALID_TO), "granted", "granted", None, None),
    (State.PENDING, Granted(NOW, VALID_TO), "granted", "granted", None, None),
    (State.REDIRECTED, Denied(), "denied", "denied", None, None),
    (State.PENDING, Expired(), "expired", "expired", "valid_to", None),
    (State.GRANTED, Expired(), "expired", "expired", "valid_to", None),
    (State.REDIRECTED, Failed("altinn_AM-00008"), "failed", "failed", "altinn_AM-00008", None),
    (
        State.GRANTED,
        Revoked(RevokedBy.END_USER, "withdrawn_in_altinn"),
        "revoked",
        "revoked",
        "end_user",
        {"by": "end_user", "reason": "withdrawn_in_altinn"},
    ),
    (
        State.GRANTED,
        Revoked(RevokedBy.SKATTEETATEN, "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"),
        "revoked",
        "revoked",
        "skatteetaten",
        {"by": "skatteetaten", "reason": "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"},
    ),
    (
        State.GRANTED,
        Revoked(RevokedBy.ADMIN, "complaint 2026-117"),
        "revoked",
        "revoked",
        "admin",
        {"by": "admin", "reason": "complaint 2026-117"},
    ),
    (
        State.GRANTED,
        Cancelled(),
        "revoked",
        "cancelled",
        "client",
        {"by": "client", "reason": "withdrawn_by_client"},
    ),
    # Not news for the client: it cancelled itself, or the person only opened the link.
    (State.PENDING, Cancelled(), None, "cancelled", None, None),
    (State.REDIRECTED, Cancelled(), None, "cancelled", None, None),
    (State.PENDING, Started(), None, "redirected", None, None),
    (State.REDIRECTED, Started(), None, "redirected", None, None),
]


@pytest.mark.parametrize(
    ("before", "event", "kind", "status", "reason", "revocation"),
    CASES,
    ids=lambda v: v.value if isinstance(v, State) else None,
)
def test_each_change_gives_its_event_with_who_and_why(
    before: State,
    event: Event,
    kind: str | None,
    status: str,
    reason: str | None,
    revocation: dict[str, str] | None,
) -> None:
    payloads = _events(before, event)
    if kind is None:
        assert payloads == []
        return
    [payload] = payloads
    assert payload["type"] == f"consent_request.{kind}"
    data = payload["data"]
    assert isinstance(data, dict)
    assert (data["status"], data["status_reason"], data["revocation"]) == (
        status,
        reason,
        revocation,
    )
    errors = list(
        Draft202012Validator(EVENT_SCHEMAS[payload["type"]], format_checker=FORMATS).iter_errors(
            payload
        )
    )
    assert errors == []


def test_payloads_are_thin() -> None:
    [payload] = _events(State.REDIRECTED, Granted(NOW, VALID_TO))
    assert payload == {
        "type": "consent_request.granted",
        "timestamp": "2026-11-28T12:00:00Z",
        "data": {
            "id": payload["data"]["id"],  # type: ignore[index]
            "status": "granted",
            "status_reason": None,
            "requestor": "310200018",
            "subject": "310100013",
            "external_reference": "case-4711",
            "valid_to": "2026-12-28T12:00:00Z",
            "revocation": None,
        },
    }
    # Nothing about the flow's internals: no Altinn id, return URL, reference or language.
    text = json.dumps(payload)
    for absent in ("altinn", "return", "case-42", "resource", "language"):
        assert absent not in text


def test_every_revoker_has_a_default_reason_and_every_type_a_schema_and_example() -> None:
    assert set(REVOCATION_REASONS) == set(RevokedBy)
    assert set(EVENT_SCHEMAS) == set(EVENT_EXAMPLES) == {t.value for t in EventType}
    for kind, schema in EVENT_SCHEMAS.items():
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema, format_checker=FORMATS)
        assert list(validator.iter_errors(EVENT_EXAMPLES[kind])) == [], kind
        for other, example in EVENT_EXAMPLES.items():
            if other != kind:
                assert not validator.is_valid(example), (kind, other)
