"""The admin pages' plumbing: the session cookie, CSRF tokens, the confirmation step, forms and
rendering. Starlette's ``SessionMiddleware`` signs the cookie (itsdangerous); it carries only
random values, never a secret that the database holds.

Cookie contents: ``csrf`` (the synchroniser token every form sends back), ``sid`` (the session
secret, once logged in; the database keeps its SHA-256) and ``flash`` (one-time messages).
A login replaces the whole cookie (new ``sid`` and ``csrf``), so a cookie planted or seen before
the login is worth nothing after it (session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from broker.admin.auth import Actor
from broker.errors import BadRequest, Forbidden, UnsupportedMediaType

__all__ = ["CONFIRM_MAX_AGE", "Confirmations", "Pages", "check_csrf", "csrf_token", "read_form"]

TEMPLATES = Path(__file__).parent / "templates"
CONFIRM_MAX_AGE = 600
_FORM = "application/x-www-form-urlencoded"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind our pages send); the body limit applies."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != _FORM:
        raise UnsupportedMediaType("Forms are sent as application/x-www-form-urlencoded")
    try:
        body = (await request.body()).decode()
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The form cannot be read") from None
    return dict(pairs)


def check_csrf(request: Request, form: Mapping[str, str], origin: str) -> None:
    """The form's token must be this session's (the defence); as a second line, a browser's
    ``Sec-Fetch-Site`` must not say another site, nor its ``Origin`` name another origin.
    (Our pages send no referrer, and browsers then send ``Origin: null`` even for our own
    forms, so ``null`` is left to the token.)"""
    expected = request.session.get("csrf")
    sent = form.get("csrf_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        raise Forbidden("The form is out of date or did not come from this site", code="csrf")
    site = request.headers.get("sec-fetch-site")
    offered = request.headers.get("origin")
    if (site is not None and site not in ("same-origin", "none")) or (
        offered not in (None, "null", origin)
    ):
        raise Forbidden("The form did not come from this site", code="csrf")


def origin_of(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class Confirmations:
    """The second step of a revocation: a signed, short-lived token binding the request, the
    reason and the session, so the confirming POST cannot be forged or replayed elsewhere."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="admin-confirm")

    def issue(self, *, request_id: str, reason: str, sid: str) -> str:
        return self._serializer.dumps({"r": request_id, "why": _digest(reason), "s": _digest(sid)})

    def check(self, token: str, *, request_id: str, reason: str, sid: str) -> bool:
        try:
            data = self._serializer.loads(token, max_age=CONFIRM_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(data, dict) and data == {
            "r": request_id,
            "why": _digest(reason),
            "s": _digest(sid),
        }


class Pages:
    """Jinja2 templates, autoescaped; every page gets the operator, the CSRF token and the
    one-time messages."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self,
        request: Request,
        template: str,
        *,
        actor: Actor | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        flash = request.session.pop("flash", []) if "flash" in request.session else []
        html = self.env.get_template(template).render(
            actor=actor,
            csrf_token=csrf_token(request),
            flash=flash,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def flash(request: Request, message: str) -> None:
    request.session["flash"] = [*request.session.get("flash", []), message]
