"""Canary secrets pushed through real requests never reach the log output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.app import create_app
from broker.logs import configure_logging
from tests.support import make_settings, running, sqlite_url

SECRET_KEY = "canary-secret-key-0123456789abcdefghijklmnop"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJjYW5hcnkiOnRydWV9.Y2FuYXJ5LXNpZ25hdHVyZQ"
FNR = "24018012345"
CANARIES = (SECRET_KEY, JWT, FNR, "whsec_Y2FuYXJ5Y2FuYXJ5", "opaque-api-key-canary")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("DEBUG", redact=[SECRET_KEY], stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


async def _leaky(request: Request) -> Response:
    # Code that logs carelessly, as future code might: the redactor is the last line of defence.
    logger = logging.getLogger("broker.tests.leaky")
    logger.info("headers %s", dict(request.headers))
    logger.info("query %s", request.url.query)
    logger.debug("key %s and person %s", SECRET_KEY, FNR, extra={"api_key": CANARIES[4]})
    raise RuntimeError(f"failed with Authorization: Bearer {JWT}")


async def test_canaries_never_reach_the_logs(tmp_path: Path, log_output: io.StringIO) -> None:
    app = create_app(make_settings(database_url=sqlite_url(tmp_path), secret_key=SECRET_KEY))
    app.router.routes.append(Route("/leaky", _leaky, methods=["POST"]))
    async with running(app) as client:
        response = await client.post(
            f"/leaky?token={JWT}&fnr={FNR}",
            headers={
                "Authorization": f"Bearer {JWT}",
                "AltinnSamtykke": JWT,
                "X-Api-Key": CANARIES[4],
                "X-Webhook-Secret": CANARIES[3],
            },
        )
    assert response.status_code == 500
    output = log_output.getvalue()
    assert "broker.tests.leaky" in output  # the careless lines were written, only redacted
    for canary in CANARIES:
        assert canary not in output, canary
        assert canary not in response.text, canary


async def test_one_access_line_per_request_with_route_template(
    tmp_path: Path, log_output: io.StringIO
) -> None:
    app = create_app(make_settings(database_url=sqlite_url(tmp_path)))
    async with running(app) as client:
        response = await client.get("/healthz?x=1", headers={"X-Request-ID": "trace-1"})
        await client.get("/nothing/here")
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "broker.access"]
    assert len(access) == 2
    first = access[0]
    assert response.status_code == 200
    assert first["method"] == "GET"
    assert first["route"] == "/healthz"
    assert first["status"] == 200
    assert first["request_id"] == "trace-1"
    assert isinstance(first["duration_ms"], float)
    assert access[1]["route"] == "<unmatched>"
    assert access[1]["status"] == 404
