"""Standard Webhooks signatures: the reference library verifies ours, refuses tampering, and the
worked example and schemas in docs/webhooks.md are the code's own."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from broker.webhooks.payloads import EVENT_EXAMPLES, EVENT_SCHEMAS
from broker.webhooks.signing import new_secret, signed_headers
from tests.app.webhook_support import doc_schemas

DOC = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
BODY = json.dumps(EVENT_EXAMPLES["consent_request.granted"], separators=(",", ":"))
MSG_ID = "0198f0d2-7b1e-7c4b-8d3e-5a1f2b3c4d5e"


def _now() -> datetime:
    # The library checks the timestamp against the real clock, so these tests use it too.
    return datetime.now(UTC)


def test_secrets_are_whsec_with_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_a_delivery_verifies_with_the_reference_library() -> None:
    secret = new_secret()
    headers = signed_headers(MSG_ID, _now(), BODY, [secret])
    assert Webhook(secret).verify(BODY.encode(), headers) == json.loads(BODY)
    assert headers["webhook-id"] == MSG_ID
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("part", ["body", "id", "timestamp", "signature"])
def test_tampering_with_any_signed_part_is_refused(part: str) -> None:
    secret = new_secret()
    headers = signed_headers(MSG_ID, _now(), BODY, [secret])
    body = BODY
    if part == "body":
        body = BODY.replace("granted", "denied", 1)
    elif part == "id":
        headers["webhook-id"] = "0198f0d2-7b1e-7c4b-8d3e-5a1f2b3c4d5f"
    elif part == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    else:
        headers["webhook-signature"] = headers["webhook-signature"][:-6] + "AAAAA="
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body.encode(), headers)


def test_another_secret_and_stale_or_future_timestamps_are_refused() -> None:
    secret = new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY.encode(), signed_headers(MSG_ID, _now(), BODY, [secret]))
    for offset in (timedelta(minutes=-6), timedelta(minutes=6)):
        stale = signed_headers(MSG_ID, _now() + offset, BODY, [secret])
        with pytest.raises(WebhookVerificationError, match=r"too (old|new)"):
            Webhook(secret).verify(BODY.encode(), stale)
    fresh = signed_headers(MSG_ID, _now() - timedelta(minutes=4), BODY, [secret])
    Webhook(secret).verify(BODY.encode(), fresh)


def test_during_a_rotation_both_signatures_are_sent_and_each_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers(MSG_ID, _now(), BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY.encode(), headers)
    Webhook(new).verify(BODY.encode(), headers)


def test_times_in_other_offsets_sign_the_same_instant() -> None:
    secret = new_secret()
    at = _now()
    oslo = at.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+01:00").tzinfo)
    same = signed_headers(MSG_ID, at, BODY, [secret])
    assert signed_headers(MSG_ID, oslo, BODY, [secret]) == same
    with pytest.raises(ValueError, match="at least one"):
        signed_headers(MSG_ID, at, BODY, [])


def test_the_worked_example_in_the_guide_is_what_the_broker_sends() -> None:
    secret = re.search(r"secret `(whsec_[A-Za-z0-9+/=]+)`", DOC)
    timestamp = re.search(r"`webhook-timestamp` `(\d+)`", DOC)
    signature = re.search(r"webhook-signature: (v1,[A-Za-z0-9+/=]+)`", DOC)
    request = DOC.split("## 3. What you receive", 1)[1].split("```http", 1)[1].split("```", 1)[0]
    assert secret
    assert timestamp
    assert signature
    body = request.strip().splitlines()[-1]
    assert body == BODY  # the example body is the granted example, compact
    at = datetime.fromtimestamp(int(timestamp[1]), UTC)
    headers = signed_headers(MSG_ID, at, body, [secret[1]])
    assert headers["webhook-signature"] == signature[1]
    assert f"webhook-signature: {signature[1]}" in request
    assert f"webhook-id: {MSG_ID}" in request
    assert base64.b64decode(secret[1].removeprefix("whsec_")) == bytes(range(32))


def test_the_guide_publishes_the_schemas_and_examples_of_the_code() -> None:
    assert doc_schemas() == EVENT_SCHEMAS
    for kind, example in EVENT_EXAMPLES.items():
        section = DOC.split(f"### `{kind}`", 1)[1].split("#### Schema:", 1)[0]
        block = section.split("```json", 1)[1].split("```", 1)[0]
        assert json.loads(block) == example, kind
