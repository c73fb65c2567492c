"""The admin web interface, mounted at ``/admin``: server-rendered pages that work without
JavaScript, and (``/admin/api``) a JSON API for automation with admin tokens.

Every page needs a logged-in session; every form carries the session's CSRF token; changes need
the admin role (auditors read). Pages are never framed (the app's CSP ``frame-ancestors 'none'``
and ``X-Frame-Options: DENY``) nor cached (``no-store``).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from broker.admin.api_routes import api_routes
from broker.admin.auth import Actor, AdminAuth, LoginPolicy, LoginRefused
from broker.admin.client_routes import client_routes
from broker.admin.clients import ClientAdmin
from broker.admin.schemas import parse_reason
from broker.admin.service import AdminService
from broker.admin.web import (
    Confirmations,
    Pages,
    check_csrf,
    flash,
    origin_of,
    read_form,
)
from broker.consent.model import State
from broker.errors import BadRequest, BrokerError, MethodNotAllowed, NotFound, PayloadTooLarge
from broker.http.problems import problem_response
from broker.http.request_id import request_id_of

__all__ = ["COOKIE_DEV", "COOKIE_SECURE", "admin_mount"]

COOKIE_SECURE = "__Host-ebevis-admin"  # __Host-: Secure, Path=/, no Domain
COOKIE_DEV = "ebevis-admin"  # plain http on 127.0.0.1 cannot carry a Secure cookie
STATIC = Path(__file__).parent / "static"


class LoginRequired(Exception):
    def __init__(self, *, expired: bool) -> None:
        super().__init__("login required")
        self.expired = expired


def _session_key(secret: str) -> str:
    # Its own key for the admin cookie: a value signed for another purpose never passes.
    return hmac.new(secret.encode(), b"ebevis-broker admin session", hashlib.sha256).hexdigest()


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/admin/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/requests"


class AdminPages:
    def __init__(
        self,
        *,
        auth: AdminAuth,
        service: AdminService,
        clients: ClientAdmin,
        confirmations: Confirmations,
        origin: str,
    ) -> None:
        self.auth = auth
        self.service = service
        self.clients = clients
        self.confirmations = confirmations
        self.origin = origin
        self.pages = Pages()

    # --- guards ----------------------------------------------------------------------------

    async def actor(self, request: Request) -> Actor:
        check = await self.auth.session(request.session.get("sid"))
        if check.actor is None:
            request.session.pop("sid", None)
            raise LoginRequired(expired=check.expired)
        return check.actor

    async def form(self, request: Request) -> tuple[Actor, dict[str, str]]:
        """A logged-in operator's form, its CSRF token checked."""
        actor = await self.actor(request)
        form = await read_form(request)
        check_csrf(request, form, self.origin)
        return actor, form

    def render(self, request: Request, template: str, **context: Any) -> Response:
        return self.pages.render(request, template, **context)

    # --- login -----------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        check = await self.auth.session(request.session.get("sid"))
        if check.actor is not None:
            return RedirectResponse("/admin/requests", status_code=303)
        message = None
        if request.query_params.get("expired"):
            message = "Your session has ended. Log in again."
        return self.render(
            request,
            "login.html",
            next=_safe_next(request.query_params.get("next")),
            username="",
            message=message,
        )

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form, self.origin)
        username = form.get("username", "")[:64]
        address = request.client.host if request.client else "unknown"
        try:
            secret, _ = await self.auth.login(
                username,
                form.get("password", "")[:256],
                address=address,
                correlation_id=request_id_of(request.scope),
            )
        except LoginRefused as exc:
            if exc.throttled:
                minutes = max(1, (exc.retry_after + 59) // 60)
                message = f"Too many failed attempts. Try again in {minutes} minutes."
                status, headers = 429, {"Retry-After": str(exc.retry_after)}
            else:
                message, status, headers = "The username or password is wrong.", 401, {}
            return self.pages.render(
                request,
                "login.html",
                status=status,
                headers=headers,
                next=_safe_next(form.get("next")),
                username=username,
                message=message,
            )
        # A new cookie altogether: nothing from before the login survives it (fixation).
        request.session.clear()
        request.session["sid"] = secret
        return RedirectResponse(_safe_next(form.get("next")), status_code=303)

    async def logout(self, request: Request) -> Response:
        actor, _ = await self.form(request)
        await self.auth.logout(
            request.session["sid"], actor, correlation_id=request_id_of(request.scope)
        )
        request.session.clear()
        return RedirectResponse("/admin/login", status_code=303)

    # --- consent requests ------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/admin/requests", status_code=303)

    async def requests(self, request: Request) -> Response:
        actor = await self.actor(request)
        query = {k: request.query_params.get(k, "") for k in _SEARCH_KEYS}
        clients = await self.service.clients()
        errors: dict[str, str] = {}
        items: list[Any] = []
        next_url = None
        try:
            page = await self.service.search(query, cursor=request.query_params.get("cursor"))
        except BrokerError as exc:
            errors = {e["field"]: e["message"] for e in exc.extensions.get("errors", [])}
        else:
            items = page.items
            if page.next_cursor:
                params = {k: v for k, v in query.items() if v}
                next_url = "/admin/requests?" + urlencode({**params, "cursor": page.next_cursor})
        return self.pages.render(
            request,
            "requests.html",
            status=422 if errors else 200,
            actor=actor,
            section="requests",
            query=query,
            clients=clients,
            client_names={c.id: c.name for c in clients},
            states=[s.value for s in State],
            items=items,
            errors=errors,
            next_url=next_url,
        )

    async def request_page(
        self,
        request: Request,
        *,
        actor: Actor | None = None,
        errors: dict[str, str] | None = None,
        reason: str = "",
    ) -> Response:
        actor = actor or await self.actor(request)
        detail = await self.service.detail(request.path_params["id"])
        return self.pages.render(
            request,
            "request.html",
            status=422 if errors else 200,
            actor=actor,
            section="requests",
            r=detail.request,
            client=detail.client,
            events=detail.events,
            lifecycle=[e for e in detail.events if "state" in e.details],
            revocable=detail.revocable,
            errors=errors or {},
            reason=reason,
        )

    async def request_detail(self, request: Request) -> Response:
        return await self.request_page(request)

    async def export(self, request: Request) -> Response:
        actor = await self.actor(request)
        request_id = request.path_params["id"]
        body = await self.service.export(
            actor, request_id, correlation_id=request_id_of(request.scope)
        )
        filename = f"audit-{body['consent_request']['id']}.json"
        return JSONResponse(
            body, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )

    async def revoke(self, request: Request) -> Response:
        """Step one: check the reason, then ask for confirmation."""
        actor, form = await self.form(request)
        actor.require_admin()
        try:
            reason = parse_reason(form.get("reason"))
        except BrokerError as exc:
            errors = {e["field"]: e["message"] for e in exc.extensions.get("errors", [])}
            return await self.request_page(
                request, actor=actor, errors=errors, reason=form.get("reason", "")
            )
        detail = await self.service.detail(request.path_params["id"])
        confirm = self.confirmations.issue(
            request_id=str(detail.request.id), reason=reason, sid=request.session["sid"]
        )
        return self.render(
            request,
            "revoke_confirm.html",
            actor=actor,
            section="requests",
            r=detail.request,
            client=detail.client,
            reason=reason,
            confirm=confirm,
        )

    async def revoke_confirm(self, request: Request) -> Response:
        """Step two: the signed confirmation must match this request, reason and session."""
        actor, form = await self.form(request)
        actor.require_admin()
        request_id, reason = request.path_params["id"], form.get("reason", "")
        if not self.confirmations.check(
            form.get("confirm", ""),
            request_id=request_id,
            reason=reason,
            sid=request.session["sid"],
        ):
            flash(request, "The confirmation was out of date; nothing changed. Try again.")
            return RedirectResponse(f"/admin/requests/{request_id}", status_code=303)
        await self.service.revoke(
            actor, request_id, reason, correlation_id=request_id_of(request.scope)
        )
        flash(request, "Revoked. The relay refuses it now, and the client's webhook is queued.")
        return RedirectResponse(f"/admin/requests/{request_id}", status_code=303)

    # --- audit -----------------------------------------------------------------------------

    async def audit(self, request: Request, *, report: Any = None) -> Response:
        actor = await self.actor(request)
        raw = request.query_params.get("before", "")
        before = int(raw) if raw.isascii() and raw.isdigit() else None
        events = await self.service.recent_audit(before=before)
        return self.render(
            request,
            "audit.html",
            actor=actor,
            section="audit",
            events=events,
            older=events[-1].id if len(events) == 100 else None,
            report=report,
        )

    async def verify(self, request: Request) -> Response:
        await self.form(request)
        return await self.audit(request, report=await self.service.verify())


_SEARCH_KEYS = ("id", "subject", "requestor", "client", "status", "created_from", "created_to")


async def _css(request: Request) -> Response:
    return Response(
        (STATIC / "admin.css").read_bytes(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _page_routes(pages: AdminPages) -> list[BaseRoute]:
    return [
        Route("/", pages.home, methods=["GET"]),
        Route("/login", pages.login_page, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/requests", pages.requests, methods=["GET"]),
        Route("/requests/{id}", pages.request_detail, methods=["GET"]),
        Route("/requests/{id}/audit.json", pages.export, methods=["GET"]),
        Route("/requests/{id}/revoke", pages.revoke, methods=["POST"]),
        Route("/requests/{id}/revoke/confirm", pages.revoke_confirm, methods=["POST"]),
        Route("/audit", pages.audit, methods=["GET"]),
        Route("/audit/verify", pages.verify, methods=["POST"]),
        Route("/static/admin.css", _css, methods=["GET"]),
        *client_routes(pages),
    ]


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/admin/api")


def _handlers(pages: AdminPages) -> dict[Any, Any]:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        params = {"next": request.url.path} if request.method == "GET" else {}
        if exc.expired:
            params["expired"] = "1"
        query = f"?{urlencode(params)}" if params else ""
        return RedirectResponse(f"/admin/login{query}", status_code=303)

    async def broker_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BrokerError)
        if _is_api(request):
            return problem_response(request, exc)
        return pages.pages.render(
            request,
            "error.html",
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            code=exc.instance_code,
            errors=exc.extensions.get("errors"),
            request_id=request_id_of(request.scope),
            back=request.headers.get("referer"),
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = NotFound() if exc.status_code == 404 else _http_error(exc)
        return await broker_error(request, error)

    return {LoginRequired: login_required, BrokerError: broker_error, HTTPException: http_error}


def _http_error(exc: HTTPException) -> BrokerError:
    known: dict[int, type[BrokerError]] = {405: MethodNotAllowed, 413: PayloadTooLarge}
    error = known.get(exc.status_code, BadRequest)
    return error(headers=exc.headers)


def admin_mount(
    *,
    auth: AdminAuth,
    service: AdminService,
    clients: ClientAdmin,
    secret_key: str,
    secure_cookie: bool,
    policy: LoginPolicy,
    public_url: str,
) -> Mount:
    """The admin as its own small app under ``/admin``, with the session middleware."""
    pages = AdminPages(
        auth=auth,
        service=service,
        clients=clients,
        confirmations=Confirmations(_session_key(secret_key)),
        origin=origin_of(public_url),
    )
    app = Starlette(
        routes=[*_page_routes(pages), Mount("/api", routes=api_routes(auth, service, clients))],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=_session_key(secret_key),
                session_cookie=COOKIE_SECURE if secure_cookie else COOKIE_DEV,
                # The cookie dies with the session's absolute limit; the server enforces both
                # limits anyway (admin_sessions).
                max_age=policy.absolute,
                path="/",
                same_site="strict",
                https_only=secure_cookie,
            )
        ],
        exception_handlers=_handlers(pages),
    )
    return Mount("/admin", app=app)
