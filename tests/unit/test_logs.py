from __future__ import annotations

import io
import json
import logging

import pytest

from broker.logs import REQUEST_ID, JsonFormatter, Redactor

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWNhbmFyeQ"
FNR = "01017012345"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("authorization=Basic dXNlcjpwYXNzd29yZC1jYW5hcnk=", "dXNlcjpwYXNzd29yZC1jYW5hcnk="),
        ('{"access_token": "opaque-token-canary", "x": 1}', "opaque-token-canary"),
        ("AltinnSamtykke: consent-token-canary", "consent-token-canary"),
        ("assertion=assertion-canary&grant_type=x", "assertion-canary"),
        ("password='hunter2-canary'", "hunter2-canary"),
        ('client said token=\\"escaped-canary\\" here', "escaped-canary"),
        ("AuthorizationCode=a2-code-canary&Status=OK", "a2-code-canary"),
        (
            "signing secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (f"person {FNR} asked", FNR),
        ("person 010170 12345 asked", "010170 12345"),
        (f"a bare jwt {JWT} in text", JWT),
    ],
)
def test_known_secret_shapes_are_redacted(text: str, secret: str) -> None:
    redacted = Redactor().redact(text)
    assert secret not in redacted
    assert "[REDACTED" in redacted


def test_configured_secret_values_are_redacted_literally() -> None:
    redactor = Redactor(["literal-secret-value-canary", "short"])
    assert redactor.redact("x literal-secret-value-canary y short") == "x [REDACTED] y short"


@pytest.mark.parametrize(
    "text",
    [
        "GET /v1/consent-requests/{id} 200 in 3.2 ms",
        "org 974760673 asked for 991825827",  # organisation numbers are not personal data
        "epoch 1732780000123 ms",
        "request_id=0b6a3f0e-8a5c-4b8e-9c1d-2f3e4a5b6c7d",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_formatter_writes_one_redacted_json_line_with_extras_and_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor()))
    logger = logging.getLogger("tests.formatter")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = REQUEST_ID.set("req-123")
    try:
        try:
            raise ValueError(f"upstream said token={JWT}")
        except ValueError:
            logger.exception("failed\nwith %s", FNR, extra={"route": "/x", "authorization": JWT})
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") == 1  # one line, even with a newline and a traceback inside
    entry = json.loads(output)
    assert entry["request_id"] == "req-123"
    assert entry["route"] == "/x"
    assert entry["level"] == "ERROR"
    assert "Traceback" in entry["exception"]
    assert JWT not in output
    assert FNR not in output
