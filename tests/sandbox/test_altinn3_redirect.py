"""The redirect back to the service after an answer (reference §5.4): where Status goes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from broker.sandbox.altinn3_page import with_status
from broker.sandbox.consents import ConsentRecord, ConsentStatus, org_urn
from tests.sandbox.altinn3_helpers import (
    AUTHORITY,
    START,
    SUPPLIER,
    Fake,
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    right,
)

# --- the redirect back (§5.4) -------------------------------------------------------------------


def _answered(status: ConsentStatus | None, fake: Fake) -> ConsentRecord:
    record = ConsentRecord(
        id=uuid.uuid4(),
        from_party=org_urn(SUPPLIER),
        to_party=org_urn(AUTHORITY),
        handled_by=None,
        required_delegator=None,
        valid_to=START + timedelta(days=1),
        consent_rights=[right()],
        request_message=None,
        redirect_url="https://x.example/",
        portal_view_mode="Hide",
        created=START,
    )
    fake.register.add(record, performed_by=None)
    if status is not None:
        fake.register.set_status(record, status, at=START, performed_by=None)
    return record


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/consent", "https://x/consent?Status=OK"),
        ("https://x/consent?ref=1", "https://x/consent?ref=1&Status=OK"),
        ("https://x/consent?", "https://x/consent?Status=OK"),
        ("https://x/consent#fragment", "https://x/consent?Status=OK#fragment"),
        (
            "https://x/consent/#/path?authcode=123",
            "https://x/consent/#/path?authcode=123&Status=OK",
        ),
        ("https://x/#/path", "https://x/#/path?Status=OK"),
        ("myapp://consent", "myapp://consent?Status=OK"),
    ],
)
def test_status_is_appended_by_the_fragment_rules(fake: Fake, url: str, expected: str) -> None:
    assert with_status(url, _answered(ConsentStatus.ACCEPTED, fake)) == expected


def test_rejected_status_keeps_the_fragment(fake: Fake) -> None:
    record = _answered(ConsentStatus.REJECTED, fake)
    expected = "https://x/c?Status=Failed&ErrorMessage=User+did+not+give+consent#fragment"
    assert with_status("https://x/c#fragment", record) == expected


def test_unanswered_request_adds_nothing(fake: Fake) -> None:
    assert with_status("https://x/c?a=1", _answered(None, fake)) == "https://x/c?a=1"


def test_revoked_after_acceptance_still_reports_ok(fake: Fake) -> None:
    record = _answered(ConsentStatus.ACCEPTED, fake)
    fake.register.set_status(record, ConsentStatus.REVOKED, at=START, performed_by=None)
    assert with_status("https://x/c", record) == "https://x/c?Status=OK"
