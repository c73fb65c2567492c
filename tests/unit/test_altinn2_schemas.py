"""Altinn 2's wire formats as the broker writes and reads them (altinn-consent.md §2.1, §3.1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker.altinn.altinn2_schemas import ServiceEdition, create_body, parse_errors
from broker.consent.ports import AltinnRequest


def _request(valid_to: datetime) -> AltinnRequest:
    return AltinnRequest(
        id=None,
        subject_org="310100013",
        requestor_org="310200018",
        resource="5616_2",
        valid_to=valid_to,
        redirect_url="https://broker.example/consent/return?h=x",
        language="nb",
    )


def _body(valid_to: datetime, handled_by: str | None = "310300012") -> dict[str, object]:
    return create_body(
        _request(valid_to),
        service=ServiceEdition("5616", 2),
        subject_name="NORDBYGG POLSKA NUF",
        requestor_name="DIREKTORATET",
        handled_by=handled_by,
    )


def test_the_body_is_a_pre_registered_request_without_a_message() -> None:
    body = _body(datetime(2027, 2, 26, 10, 30, 15, 999999, tzinfo=UTC))
    assert body == {
        "CoveredBy": "310200018",
        "OfferedBy": "310100013",
        "OfferedByName": "NORDBYGG POLSKA NUF",
        "ValidTo": "2027-02-26T11:30:15+01:00",
        "RedirectUrl": "https://broker.example/consent/return?h=x",
        "RequestResources": [
            {
                "ServiceCode": "5616",
                "ServiceEditionCode": 2,
                "Metadata": {"requestor": "310200018", "requestorName": "DIREKTORATET"},
            }
        ],
        "PortalViewMode": "Hide",
        "HandledBy": "310300012",
    }
    assert "HandledBy" not in _body(datetime(2027, 1, 1, tzinfo=UTC), handled_by=None)


def test_a_valid_to_in_the_repeated_autumn_hour_moves_an_hour_earlier() -> None:
    # 2026-10-25 02:30 happens twice in Oslo (summer time ends at 03:00 CEST).
    ambiguous = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, the second one
    assert _body(ambiguous)["ValidTo"] == "2026-10-25T01:30:00+02:00"
    with pytest.raises(ValueError, match="offset"):
        _body(datetime(2027, 1, 1))


@pytest.mark.parametrize("value", ["5616_2", "5616,2", " 5616_2 "])
def test_a_service_edition_is_parsed(value: str) -> None:
    assert ServiceEdition.parse(value).key == "5616_2"


def test_a_malformed_service_edition_is_refused() -> None:
    with pytest.raises(ValueError, match="5616_2"):
        ServiceEdition.parse("5616")


def test_error_texts_are_clipped_and_cleaned() -> None:
    [error] = parse_errors([{"errorCode": 19023, "errorDescription": "a\nb" + "x" * 500}, 7])
    assert error.code == "19023"
    assert error.description == "ab" + "x" * 198
    assert parse_errors([{"errorCode": " "}]) == []
