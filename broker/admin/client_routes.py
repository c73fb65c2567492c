"""The admin pages for clients: list, register, return URLs, enable/disable, API keys, the
webhook endpoint, its secret and its deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from broker.admin.clients import Issued
from broker.admin.schemas import parse_reason
from broker.admin.web import flash
from broker.errors import BrokerError, ValidationFailed
from broker.http.request_id import request_id_of

if TYPE_CHECKING:
    from broker.admin.auth import Actor
    from broker.admin.routes import AdminPages

__all__ = ["client_routes"]


def _errors(exc: BrokerError) -> dict[str, str]:
    found = exc.extensions.get("errors", [])
    return {e["field"]: e["message"] for e in found} or {"form": exc.detail}


class ClientPages:
    def __init__(self, pages: AdminPages) -> None:
        self.p = pages

    async def list(
        self,
        request: Request,
        *,
        actor: Actor | None = None,
        errors: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> Response:
        actor = actor or await self.p.actor(request)
        return self.p.pages.render(
            request,
            "clients.html",
            status=422 if errors else 200,
            actor=actor,
            section="clients",
            clients=await self.p.service.clients(),
            errors=errors or {},
            form=form or {},
        )

    async def create(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        try:
            created = await self.p.clients.create(
                actor,
                name=form.get("name", ""),
                org_number=form.get("org_number", ""),
                return_urls=form.get("return_urls", ""),
                correlation_id=request_id_of(request.scope),
            )
        except ValidationFailed as exc:
            return await self.list(request, actor=actor, errors=_errors(exc), form=form)
        flash(request, f"Registered {created.name}. Issue it an API key below.")
        return RedirectResponse(f"/admin/clients/{created.id}", status_code=303)

    async def show(
        self, request: Request, *, actor: Actor | None = None, errors: dict[str, str] | None = None
    ) -> Response:
        actor = actor or await self.p.actor(request)
        view = await self.p.clients.view(
            request.path_params["id"], status=request.query_params.get("status")
        )
        return self.p.pages.render(
            request,
            "client.html",
            status=422 if errors else 200,
            actor=actor,
            section="clients",
            c=view.client,
            keys=view.keys,
            endpoint=view.endpoint,
            secrets=view.secrets,
            deliveries=view.deliveries,
            errors=errors or {},
        )

    def _back(self, request: Request, message: str) -> Response:
        flash(request, message)
        return RedirectResponse(f"/admin/clients/{request.path_params['id']}", status_code=303)

    def _issued(self, request: Request, actor: Actor, issued: Issued) -> Response:
        api_key = issued.kind == "api_key"
        return self.p.pages.render(
            request,
            "issued.html",
            actor=actor,
            section="clients",
            title="The new API key" if api_key else "The new webhook signing secret",
            label="API key" if api_key else "Signing secret (whsec_…)",
            value=issued.value,
            client_id=issued.client_id,
        )

    async def return_urls(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        try:
            await self.p.clients.set_return_urls(
                actor,
                request.path_params["id"],
                form.get("return_urls", ""),
                correlation_id=request_id_of(request.scope),
            )
        except ValidationFailed as exc:
            return await self.show(request, actor=actor, errors=_errors(exc))
        return self._back(request, "Return URLs saved.")

    async def status(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        active = form.get("active") == "yes"
        try:
            reason = parse_reason(form.get("reason"))
        except ValidationFailed as exc:
            return await self.show(request, actor=actor, errors=_errors(exc))
        await self.p.clients.set_active(
            actor,
            request.path_params["id"],
            active,
            reason=reason,
            correlation_id=request_id_of(request.scope),
        )
        return self._back(request, "Client enabled." if active else "Client disabled.")

    async def issue_key(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        issued = await self.p.clients.issue_key(
            actor,
            request.path_params["id"],
            label=form.get("label"),
            correlation_id=request_id_of(request.scope),
            revoke_others=form.get("revoke_others") == "yes",
        )
        return self._issued(request, actor, issued)

    async def revoke_key(self, request: Request) -> Response:
        actor, _ = await self.p.form(request)
        prefix = request.path_params["prefix"]
        await self.p.clients.revoke_key(
            actor, request.path_params["id"], prefix, correlation_id=request_id_of(request.scope)
        )
        return self._back(request, f"Key {prefix} revoked; it stops working at once.")

    async def webhook(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        try:
            issued = await self.p.clients.set_webhook(
                actor,
                request.path_params["id"],
                url=form.get("url", ""),
                enabled=form.get("enabled") == "yes",
                correlation_id=request_id_of(request.scope),
            )
        except ValidationFailed as exc:
            return await self.show(request, actor=actor, errors=_errors(exc))
        if issued is not None:
            return self._issued(request, actor, issued)
        return self._back(request, "Webhook endpoint saved.")

    async def rotate(self, request: Request) -> Response:
        actor, form = await self.p.form(request)
        raw: Any = form.get("overlap_seconds", "").strip()
        overlap = int(raw) if raw.isascii() and raw.isdigit() else (raw or None)
        try:
            issued = await self.p.clients.rotate_webhook_secret(
                actor,
                request.path_params["id"],
                overlap=overlap,
                correlation_id=request_id_of(request.scope),
            )
        except ValidationFailed as exc:
            return await self.show(request, actor=actor, errors=_errors(exc))
        return self._issued(request, actor, issued)

    async def redeliver(self, request: Request) -> Response:
        actor, _ = await self.p.form(request)
        await self.p.clients.redeliver(
            actor,
            request.path_params["id"],
            request.path_params["event"],
            correlation_id=request_id_of(request.scope),
        )
        return self._back(request, "Queued for delivery again, with the same webhook-id.")


def client_routes(pages: AdminPages) -> list[BaseRoute]:
    c = ClientPages(pages)
    base = "/clients/{id}"
    return [
        Route("/clients", c.list, methods=["GET"]),
        Route("/clients", c.create, methods=["POST"]),
        Route(base, c.show, methods=["GET"]),
        Route(f"{base}/return-urls", c.return_urls, methods=["POST"]),
        Route(f"{base}/status", c.status, methods=["POST"]),
        Route(f"{base}/keys", c.issue_key, methods=["POST"]),
        Route(f"{base}/keys/{{prefix}}/revoke", c.revoke_key, methods=["POST"]),
        Route(f"{base}/webhook", c.webhook, methods=["POST"]),
        Route(f"{base}/webhook/secrets", c.rotate, methods=["POST"]),
        Route(f"{base}/deliveries/{{event}}/redeliver", c.redeliver, methods=["POST"]),
    ]
