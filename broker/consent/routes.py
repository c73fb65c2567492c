"""Thin HTTP endpoints: the client API under ``/v1`` and the browser's ``/consent`` pages."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from broker.consent.browser import BrowserFlow, PersonError, Redirect
from broker.consent.model import Caller
from broker.consent.pages import person_page
from broker.consent.service import ConsentService
from broker.errors import BadRequest, UnsupportedMediaType
from broker.http.request_id import request_id_of

__all__ = ["COOKIE_DEV", "COOKIE_SECURE", "api_routes", "browser_routes"]

Authenticate = Callable[[str | None], Awaitable[Caller]]

COOKIE_SECURE = "__Host-ebevis-flow"  # __Host-: Secure, Path=/, no Domain (RFC 6265bis)
COOKIE_DEV = "ebevis-flow"  # plain http on 127.0.0.1 cannot carry a Secure cookie
_NO_STORE = {"Cache-Control": "no-store"}


def api_routes(service: ConsentService, authenticate: Authenticate) -> list[Route]:
    async def caller(request: Request) -> Caller:
        return await authenticate(request.headers.get("authorization"))

    async def create(request: Request) -> Response:
        who = await caller(request)
        status, body = await service.create(
            who,
            await _json_body(request),
            idempotency_key=request.headers.get("idempotency-key"),
            correlation_id=request_id_of(request.scope),
        )
        headers = {**_NO_STORE, "Location": f"/v1/consent-requests/{body['id']}"}
        return JSONResponse(body, status_code=status, headers=headers)

    async def listing(request: Request) -> Response:
        who = await caller(request)
        params = request.query_params
        body = await service.page(
            who,
            status=params.get("status"),
            changed_after=params.get("changed_after"),
            cursor=params.get("cursor"),
            limit=params.get("limit"),
        )
        return JSONResponse(body, headers=_NO_STORE)

    async def read(request: Request) -> Response:
        body = await service.get(await caller(request), request.path_params["id"])
        return JSONResponse(body, headers=_NO_STORE)

    async def history(request: Request) -> Response:
        body = await service.history(await caller(request), request.path_params["id"])
        return JSONResponse(body, headers=_NO_STORE)

    async def cancel(request: Request) -> Response:
        body = await service.cancel(
            await caller(request),
            request.path_params["id"],
            correlation_id=request_id_of(request.scope),
        )
        return JSONResponse(body, headers=_NO_STORE)

    # One route per path, so a 405 names every method the path has in its Allow header.
    return [
        Route(
            "/v1/consent-requests", _by_method(GET=listing, POST=create), methods=["GET", "POST"]
        ),
        Route(
            "/v1/consent-requests/{id}",
            _by_method(GET=read, DELETE=cancel),
            methods=["GET", "DELETE"],
        ),
        Route("/v1/consent-requests/{id}/history", history, methods=["GET"]),
    ]


def _by_method(
    **handlers: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return dispatch


def browser_routes(flow: BrowserFlow, *, secure_cookie: bool, cookie_max_age: int) -> list[Route]:
    name = COOKIE_SECURE if secure_cookie else COOKIE_DEV

    async def start(request: Request) -> Response:
        try:
            outcome = await flow.start(
                request.path_params["id"],
                request.query_params.get("t", ""),
                request.cookies.get(name),
            )
        except PersonError as exc:
            return _person_error(exc)
        return _redirect(outcome, name, secure_cookie, cookie_max_age)

    async def finish(request: Request) -> Response:
        try:
            outcome = await flow.finish(
                request.query_params.get("h", ""),
                request.cookies.get(name),
                request.query_params.get("Status"),
            )
        except PersonError as exc:
            return _person_error(exc)
        return _redirect(outcome, name, secure_cookie, cookie_max_age)

    return [
        Route("/consent/{id}/start", start, methods=["GET"]),
        Route("/consent/return", finish, methods=["GET"]),
    ]


def _redirect(outcome: Redirect, name: str, secure: bool, max_age: int) -> Response:
    # 303 so the browser follows with GET; never 301, which browsers cache.
    response = RedirectResponse(outcome.location, status_code=303, headers=_NO_STORE)
    if outcome.cookie is not None:
        response.set_cookie(
            name,
            outcome.cookie,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
    return response


def _person_error(error: PersonError) -> Response:
    return HTMLResponse(person_page(error.kind, error.language), status_code=error.status)


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
