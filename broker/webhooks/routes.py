"""Thin HTTP endpoints of the client's webhook API under ``/v1``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.consent.model import Caller
from broker.http.bodies import json_body
from broker.webhooks.service import WebhookService

__all__ = ["webhook_routes"]

Authenticate = Callable[[str | None], Awaitable[Caller]]
_NO_STORE = {"Cache-Control": "no-store"}


def webhook_routes(service: WebhookService, authenticate: Authenticate) -> list[Route]:
    async def caller(request: Request) -> Caller:
        return await authenticate(request.headers.get("authorization"))

    async def endpoint(request: Request) -> Response:
        who = await caller(request)
        if request.method == "PUT":
            status, body = await service.put_endpoint(who, await json_body(request))
            return JSONResponse(body, status_code=status, headers=_NO_STORE)
        return JSONResponse(await service.endpoint(who), headers=_NO_STORE)

    async def rotate(request: Request) -> Response:
        who = await caller(request)
        body = await service.rotate_secret(who, await json_body(request, optional=True))
        return JSONResponse(body, status_code=201, headers=_NO_STORE)

    async def deliveries(request: Request) -> Response:
        who = await caller(request)
        params = request.query_params
        body = await service.deliveries(
            who,
            status=params.get("status"),
            consent_request=params.get("consent_request"),
            cursor=params.get("cursor"),
            limit=params.get("limit"),
        )
        return JSONResponse(body, headers=_NO_STORE)

    async def delivery(request: Request) -> Response:
        body = await service.delivery(await caller(request), request.path_params["id"])
        return JSONResponse(body, headers=_NO_STORE)

    async def redeliver(request: Request) -> Response:
        body = await service.redeliver(await caller(request), request.path_params["id"])
        return JSONResponse(body, status_code=202, headers=_NO_STORE)

    return [
        Route("/v1/webhook-endpoint", endpoint, methods=["GET", "PUT"]),
        Route("/v1/webhook-endpoint/secrets", rotate, methods=["POST"]),
        Route("/v1/webhook-deliveries", deliveries, methods=["GET"]),
        Route("/v1/webhook-deliveries/{id}", delivery, methods=["GET"]),
        Route("/v1/webhook-deliveries/{id}/redeliver", redeliver, methods=["POST"]),
    ]
