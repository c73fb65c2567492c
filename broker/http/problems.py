"""RFC 9457 ``application/problem+json`` for every error, Starlette's own included."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from broker.errors import (
    BadRequest,
    BrokerError,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from broker.http.headers import BROWSER_HEADERS
from broker.http.request_id import REQUEST_ID_HEADER, request_id_of

__all__ = ["PROBLEM_CONTENT_TYPE", "exception_handlers", "problem_response"]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:ebevis-broker:problem:"

logger = logging.getLogger("broker.errors")

# Starlette raises HTTPException for routing failures; map them to our stable codes.
_HTTP_EXCEPTIONS: dict[int, type[BrokerError]] = {
    error.status: error
    for error in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
    )
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def problem_response(request: Request, error: BrokerError) -> Response:
    request_id = request_id_of(request.scope)
    body: dict[str, Any] = {
        **error.extensions,
        "type": PROBLEM_TYPE_BASE + error.instance_code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": request.url.path,
        "code": error.instance_code,
        "request_id": request_id,
    }
    # The browser headers are set here too: an unhandled 500 is rendered outside the middleware.
    headers = {**BROWSER_HEADERS, **error.headers, "Cache-Control": "no-store"}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return ProblemResponse(body, status_code=error.status, headers=headers)


async def _broker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BrokerError)
    if exc.status >= 500:
        logger.error("request failed: %s", exc.instance_code)
    return problem_response(request, exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # Starlette's own detail may echo the input, so only the mapped title is shown.
    fallback = BadRequest if exc.status_code < 500 else BrokerError
    error_class = _HTTP_EXCEPTIONS.get(exc.status_code, fallback)
    return problem_response(request, error_class(headers=exc.headers))


async def _unhandled(request: Request, exc: Exception) -> Response:
    # The traceback goes to the (redacted) log, never into the body.
    logger.error("unhandled error", exc_info=exc)
    return problem_response(request, BrokerError())


def exception_handlers() -> dict[Any, Any]:
    return {BrokerError: _broker_error, HTTPException: _http_exception, Exception: _unhandled}
