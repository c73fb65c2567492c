"""Reading an operator's export of migrated Altinn 2 grants: every line is checked, every
problem is reported with its line, and nothing about a code is ever echoed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.consent.migrated import DEFAULT_REFERENCE, parse_grants

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CODE = str(uuid.uuid4())


def _line(**fields: Any) -> str:
    record: dict[str, Any] = {
        "AuthorizationCode": CODE,
        "CoveredBy": "310200018",
        "OfferedBy": "310100013",
        "ValidTo": "2027-02-26T11:00:00.000",
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not None})


def test_an_altinn_2_request_object_is_read_with_its_local_times() -> None:
    grants, problems = parse_grants(
        _line(RequestStatus="Accepted", DelegatedDate=1795000000, OfferedByName="ignored") + "\n",
        now=NOW,
    )
    assert problems == []
    [grant] = grants
    assert str(grant.code) == CODE
    assert (grant.requestor, grant.subject) == ("310200018", "310100013")
    assert grant.valid_to == datetime(2027, 2, 26, 10, tzinfo=UTC)  # 11:00 in Oslo (CET)
    assert grant.consented_at == datetime.fromtimestamp(1795000000, UTC)
    assert grant.reference == DEFAULT_REFERENCE
    assert CODE not in repr(grant)


def test_the_short_form_and_a_json_array_are_read_too() -> None:
    short = {
        "authorization_code": CODE,
        "requestor": "310200018",
        "subject": "310100013",
        "valid_to": "2027-01-01T00:00:00+01:00",
        "consented_at": "2026-11-01T10:00:00Z",
        "reference": "Anbud 2026/17",
        "external_reference": "case-1",
    }
    grants, problems = parse_grants(json.dumps([short]), now=NOW)
    assert problems == []
    assert (grants[0].reference, grants[0].external_reference) == ("Anbud 2026/17", "case-1")
    assert grants[0].valid_to == datetime(2026, 12, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"AuthorizationCode": "nope"}, "the AuthorizationCode is not a GUID"),
        ({"AuthorizationCode": None}, "the AuthorizationCode is not a GUID"),
        ({"CoveredBy": "310200019"}, "requestor is not a valid organisation number"),
        ({"OfferedBy": None}, "subject is not a valid organisation number"),
        ({"OfferedBy": "310200018"}, "requestor and subject are the same organisation"),
        ({"ValidTo": None}, "valid_to is missing"),
        ({"ValidTo": "soon"}, "valid_to is not a date-time"),
        ({"ValidTo": "2026-11-30T00:00:00Z"}, "the grant has expired"),
        ({"RequestStatus": "Rejected"}, "RequestStatus is not Accepted"),
        (
            {"RequestResources": [{"ServiceCode": "5616", "ServiceEditionCode": 3}]},
            "RequestResources does not name 5616/2",
        ),
        ({"reference": ""}, "reference must be 1-200 characters"),
        ({"reference": "a\x00b"}, "reference has control characters"),
        ({"external_reference": "x" * 201}, "external_reference must be 1-200 characters"),
    ],
)
def test_each_problem_is_named_with_its_line(fields: dict[str, Any], problem: str) -> None:
    text = _line(AuthorizationCode=str(uuid.uuid4())) + "\n" + _line(**fields) + "\n"
    grants, problems = parse_grants(text, now=NOW)
    assert len(grants) == 1
    assert problems == [f"line 2: {problem}"]


def test_the_resources_of_an_altinn_2_object_may_name_the_service() -> None:
    resources = [{"servicecode": "5616", "serviceeditioncode": 2, "metadata": {}}]
    grants, problems = parse_grants(_line(RequestResources=resources), now=NOW)
    assert (len(grants), problems) == (1, [])


def test_a_code_twice_and_broken_lines_are_problems() -> None:
    text = "\n".join([_line(), "", _line(), "{not json", "[1]"])
    grants, problems = parse_grants(text, now=NOW)
    assert len(grants) == 1
    assert problems == [
        "line 3: the same code as line 1",
        "line 4: not a JSON object",
        "line 5: not a JSON object",
    ]
    assert all(CODE not in p for p in problems)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "line 1: the file holds no grants"),
        ("[1, 2", "line 1: the file is not a valid JSON array"),
    ],
)
def test_an_empty_or_broken_file(text: str, problem: str) -> None:
    assert parse_grants(text, now=NOW) == ([], [problem])


def test_a_far_future_grant_is_not_refused_here() -> None:
    later = (NOW + timedelta(days=3000)).isoformat()
    grants, problems = parse_grants(_line(ValidTo=later), now=NOW)
    assert (len(grants), problems) == (1, [])
