"""Every error is problem+json with a stable code; no traceback leaks; request ids flow."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.app import create_app
from broker.errors import Conflict, ValidationFailed
from tests.support import make_settings, problem, running, sqlite_url


def _app_with(tmp_path: Path, *routes: Route) -> object:
    app = create_app(make_settings(database_url=sqlite_url(tmp_path)))
    # Test-only endpoints that raise, so each error path is exercised through the real stack.
    app.router.routes.extend(routes)
    return app


async def _boom(request: Request) -> Response:
    raise RuntimeError("database password=hunter2-canary exploded")


async def _conflict(request: Request) -> Response:
    raise Conflict("Already used", code="handle_already_used", extensions={"hint": "start again"})


async def _invalid(request: Request) -> Response:
    raise ValidationFailed("subject must be a valid organisation number")


async def _teapot(request: Request) -> Response:
    raise HTTPException(418, detail="user input <script> echoed")


async def _payload(request: Request) -> Response:
    raise HTTPException(413)


@pytest.fixture
def app(tmp_path: Path) -> object:
    return _app_with(
        tmp_path,
        Route("/boom", _boom),
        Route("/conflict", _conflict),
        Route("/invalid", _invalid),
        Route("/teapot", _teapot),
        Route("/payload", _payload),
    )


async def test_unknown_path_is_a_404_problem(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        response = await client.get("/no/such/thing?token=abc")
    body = problem(response)
    assert response.status_code == 404
    assert body["code"] == "not_found"
    assert body["type"] == "urn:ebevis-broker:problem:not_found"
    assert body["instance"] == "/no/such/thing"
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_method_is_a_405_problem_with_allow(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        response = await client.delete("/healthz")
    body = problem(response)
    assert body["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_unhandled_exception_is_a_500_problem_without_traceback(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        response = await client.get("/boom")
    body = problem(response)
    assert response.status_code == 500
    assert body["code"] == "internal_error"
    assert "Traceback" not in response.text
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_broker_errors_carry_their_code_and_extensions(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        conflict = await client.get("/conflict")
        invalid = await client.get("/invalid")
    assert problem(conflict)["code"] == "handle_already_used"
    assert conflict.status_code == 409
    assert conflict.json()["hint"] == "start again"
    assert problem(invalid)["code"] == "validation_failed"
    assert invalid.status_code == 422
    assert invalid.json()["detail"] == "subject must be a valid organisation number"


async def test_other_http_exceptions_keep_status_but_not_starlette_detail(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        teapot = await client.get("/teapot")
        payload = await client.get("/payload")
    assert teapot.status_code == 400
    assert problem(teapot)["code"] == "bad_request"
    assert "<script>" not in teapot.text
    assert payload.status_code == 413
    assert problem(payload)["code"] == "payload_too_large"


async def test_a_well_formed_request_id_is_echoed(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        response = await client.get("/healthz", headers={"X-Request-ID": "portal-42.a:b_c"})
        failed = await client.get("/nowhere", headers={"X-Request-ID": "portal-43"})
    assert response.headers["x-request-id"] == "portal-42.a:b_c"
    assert failed.headers["x-request-id"] == "portal-43"
    assert failed.json()["request_id"] == "portal-43"


@pytest.mark.parametrize(
    "offered", ["", "has space", "x" * 129, "new\nline", "-leading-dash", "ünïcode"]
)
async def test_a_malformed_request_id_is_replaced(app: object, offered: str) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        response = await client.get("/healthz", headers=[(b"X-Request-ID", offered.encode())])
    assert response.headers["x-request-id"] != offered
    uuid.UUID(response.headers["x-request-id"])


async def test_without_a_request_id_one_is_generated(app: object) -> None:
    async with running(app) as client:  # type: ignore[arg-type]
        first = await client.get("/healthz")
        second = await client.get("/healthz")
    assert uuid.UUID(first.headers["x-request-id"]) != uuid.UUID(second.headers["x-request-id"])
