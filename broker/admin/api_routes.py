"""The admin JSON API (``/admin/api``) for automation: ``Authorization: Bearer ebadm_…``.

No cookie is honoured here, so it needs no CSRF token; errors are problem+json like the client
API's. Tokens act with their user's role: an auditor's token reads, an admin's also changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broker.admin.auth import Actor, AdminAuth
from broker.admin.clients import ClientAdmin
from broker.admin.schemas import client_json, key_json, request_admin_json
from broker.admin.service import AdminService
from broker.errors import BadRequest, UnsupportedMediaType
from broker.http.request_id import request_id_of

__all__ = ["api_routes"]

Handler = Callable[[Request, Actor], Awaitable[Response]]


async def _json_body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="invalid_json")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    return value if isinstance(value, str) else ""


def api_routes(auth: AdminAuth, service: AdminService, clients: ClientAdmin) -> list[BaseRoute]:
    def authed(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            actor = await auth.authenticate_token(request.headers.get("authorization"))
            return await handler(request, actor)

        return endpoint

    async def search(request: Request, actor: Actor) -> Response:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        limit = request.query_params.get("limit", "50")
        size = int(limit) if limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 100 else 50
        page = await service.search(query, cursor=request.query_params.get("cursor"), limit=size)
        return JSONResponse(
            {
                "items": [request_admin_json(r) for r in page.items],
                "next_cursor": page.next_cursor,
            }
        )

    async def detail(request: Request, actor: Actor) -> Response:
        found = await service.detail(request.path_params["id"])
        return JSONResponse(request_admin_json(found.request))

    async def revoke(request: Request, actor: Actor) -> Response:
        body = await _json_body(request)
        revoked = await service.revoke(
            actor,
            request.path_params["id"],
            body.get("reason"),
            correlation_id=request_id_of(request.scope),
        )
        return JSONResponse(request_admin_json(revoked))

    async def export(request: Request, actor: Actor) -> Response:
        body = await service.export(
            actor, request.path_params["id"], correlation_id=request_id_of(request.scope)
        )
        return JSONResponse(body)

    async def verify(request: Request, actor: Actor) -> Response:
        report = await service.verify()
        return JSONResponse(
            {
                "intact": report.intact,
                "rows": report.rows,
                "head": {"id": report.head_id, "hash": report.head_hash},
                "broken_at": report.broken_at,
                "problem": report.problem,
            }
        )

    async def list_clients(request: Request, actor: Actor) -> Response:
        return JSONResponse({"items": [client_json(c) for c in await service.clients()]})

    async def create_client(request: Request, actor: Actor) -> Response:
        body = await _json_body(request)
        created = await clients.create(
            actor,
            name=_text(body, "name"),
            org_number=_text(body, "org_number"),
            return_urls=body.get("return_urls"),
            correlation_id=request_id_of(request.scope),
        )
        return JSONResponse(client_json(created), status_code=201)

    async def show_client(request: Request, actor: Actor) -> Response:
        view = await clients.view(request.path_params["id"])
        return JSONResponse(
            {**client_json(view.client), "api_keys": [key_json(k) for k in view.keys]}
        )

    async def issue_key(request: Request, actor: Actor) -> Response:
        body = await _json_body(request)
        issued = await clients.issue_key(
            actor,
            request.path_params["id"],
            label=_text(body, "label") or None,
            correlation_id=request_id_of(request.scope),
            revoke_others=body.get("revoke_others") is True,
        )
        return JSONResponse({"prefix": issued.prefix, "api_key": issued.value}, status_code=201)

    async def revoke_key(request: Request, actor: Actor) -> Response:
        await clients.revoke_key(
            actor,
            request.path_params["id"],
            request.path_params["prefix"],
            correlation_id=request_id_of(request.scope),
        )
        return Response(status_code=204)

    item = "/consent-requests/{id}"
    return [
        Route("/consent-requests", authed(search), methods=["GET"]),
        Route(item, authed(detail), methods=["GET"]),
        Route(f"{item}/revoke", authed(revoke), methods=["POST"]),
        Route(f"{item}/audit", authed(export), methods=["GET"]),
        Route("/audit/verify", authed(verify), methods=["GET"]),
        Route("/clients", authed(list_clients), methods=["GET"]),
        Route("/clients", authed(create_client), methods=["POST"]),
        Route("/clients/{id}", authed(show_client), methods=["GET"]),
        Route("/clients/{id}/keys", authed(issue_key), methods=["POST"]),
        Route("/clients/{id}/keys/{prefix}/revoke", authed(revoke_key), methods=["POST"]),
    ]
