"""One pure ASGI middleware that gives each request its id, its log line and its metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.http.headers import BROWSER_HEADERS
from broker.http.request_id import REQUEST_ID_HEADER, SCOPE_KEY, choose_request_id
from broker.logs import REQUEST_ID
from broker.observability.metrics import HttpMetrics

__all__ = ["BodyLimitMiddleware", "BrowserHeadersMiddleware", "RequestMiddleware", "route_template"]

access_log = logging.getLogger("broker.access")

UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics and logs never carry ids or query strings."""
    route: Any = scope.get("route")
    if route is None:
        return UNMATCHED
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode("latin-1"))
        request_id = choose_request_id(offered.decode("latin-1") if offered else None)
        scope[SCOPE_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _record(self, scope: Scope, status: int, duration: float) -> None:
        route = route_template(scope)
        self.metrics.observe(method=scope["method"], route=route, status=status, seconds=duration)
        access_log.info(
            "request",
            extra={
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 3),
            },
        )


class BrowserHeadersMiddleware:
    """Adds ``BROWSER_HEADERS`` and ``Cache-Control: no-store`` (unless set) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BROWSER_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 problem+json.

    The check runs inside ``receive``, so the error is raised where the endpoint reads its body
    and is rendered like every other error; endpoints that read no body are unaffected.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise HTTPException(413)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413)
            return message

        await self.app(scope, limited_receive, send)
