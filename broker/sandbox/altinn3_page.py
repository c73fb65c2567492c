"""The fake Altinn consent page, ``/accessmanagement/ui/consent/request?id=...``.

A minimal "log in as" step stands in for ID-porten; then the page shows the request with two
answers, Approve and Reject (Altinn 3 has no cancel, ``../shared/reference/altinn-consent.md``
§5.4). After an answer the browser goes through a logout hop, which ends the session as Altinn
does, and is sent with a 302 to ``redirectUrl`` plus ``Status=OK`` or
``Status=Failed&ErrorMessage=User+did+not+give+consent`` (§1.2 step 5, §5.4). Every response
refuses framing (Skatteetaten forbids framing the dialog) and is not cached.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from broker.sandbox.altinn3_html import (
    ConsentView,
    RightView,
    consent_page,
    login_page,
    message_page,
    refusal_page,
)
from broker.sandbox.altinn3_state import Altinn3State, ConsentActionError
from broker.sandbox.consents import ORG_URN, PERSON_URN, ConsentRecord, ConsentStatus

__all__ = ["SESSION_COOKIE", "UI_PATH", "PortalSessions", "page_routes", "with_status"]

UI_PATH = "/accessmanagement/ui/consent"
REQUEST_PATH = f"{UI_PATH}/request"
COOKIE_PATH = "/accessmanagement/ui"
SESSION_COOKIE = "AltinnSandboxSession"
_FORM_LIMIT = 8192
_SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_OK = "Status=OK"
_FAILED = "Status=Failed&ErrorMessage=User+did+not+give+consent"


def _append_query(target: str, params: str) -> str:
    if "?" not in target:
        return f"{target}?{params}"
    return target + params if target.endswith(("?", "&")) else f"{target}&{params}"


def with_status(redirect_url: str, record: ConsentRecord) -> str:
    """``redirectUrl`` plus the answer; inside the fragment for a ``#/`` hash route (§5.4)."""
    types = {e.event_type for e in record.events}
    if ConsentStatus.ACCEPTED in types:
        params = _OK
    elif ConsentStatus.REJECTED in types:
        params = _FAILED
    else:
        return redirect_url
    base, hash_mark, fragment = redirect_url.partition("#")
    if hash_mark and fragment.startswith("/"):
        return f"{base}#{_append_query(fragment, params)}"
    return _append_query(base, params) + (f"#{fragment}" if hash_mark else "")


@dataclass(frozen=True)
class _Session:
    fnr: str
    csrf: str


class PortalSessions:
    """Logged-in browsers: a random cookie value maps to the person and a CSRF token."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    def start(self, fnr: str) -> str:
        token = secrets.token_urlsafe(32)
        self._sessions[token] = _Session(fnr, secrets.token_urlsafe(16))
        return token

    def get(self, token: str | None) -> _Session | None:
        return None if token is None else self._sessions.get(token)

    def end(self, token: str | None) -> None:
        if token is not None:
            self._sessions.pop(token, None)


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=_SECURITY_HEADERS)


def _redirect(url: str, status: int) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=_SECURITY_HEADERS)


def _prefix(request: Request) -> str:
    """Where the fake is mounted (``root_path``): every link and the cookie path carry it."""
    return str(request.scope.get("root_path", ""))


def _request_url(request: Request, consent_id: str) -> str:
    return f"{_prefix(request)}{REQUEST_PATH}?{urlencode({'id': consent_id})}"


async def _form(request: Request) -> dict[str, str] | None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return None
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _problem_text(error: ConsentActionError) -> str:
    problem = error.problem
    details = "".join(f" ({e.code}: {e.title})" for e in problem.validation_errors)
    return f"{problem.code}: {problem.title}{details}"


def _parse_id(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


class _ConsentPage:
    def __init__(self, state: Altinn3State, sessions: PortalSessions, logout_hop: bool) -> None:
        self.state = state
        self.sessions = sessions
        self.logout_hop = logout_hop

    def routes(self) -> list[Route]:
        return [
            Route(REQUEST_PATH, self.show, methods=["GET"]),
            Route(f"{UI_PATH}/login", self.login, methods=["POST"]),
            Route(f"{UI_PATH}/logout-user", self.logout_user, methods=["POST"]),
            Route(f"{REQUEST_PATH}/{{id}}/approve", self.approve, methods=["POST"]),
            Route(f"{REQUEST_PATH}/{{id}}/reject", self.reject, methods=["POST"]),
            Route(f"{REQUEST_PATH}/{{id}}/logout", self.logout_hop_to_client, methods=["GET"]),
        ]

    def _session(self, request: Request) -> _Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _party(self, urn: str) -> str:
        if urn.startswith(ORG_URN):
            org = self.state.parties.organisation(urn[len(ORG_URN) :])
            return f"{org.name} ({org.orgnr})" if org else urn
        person = self.state.parties.person(urn[len(PERSON_URN) :])
        return person.name if person else urn

    def _view(self, record: ConsentRecord, user: str) -> ConsentView:
        rights = []
        for right in record.consent_rights:
            resource_id = right["resource"][0]["value"] if right["resource"] else ""
            resource = self.state.resources.get(resource_id)
            meta = tuple((k, v or "") for k, v in (right.get("metadata") or {}).items())
            title = resource.title if resource else resource_id
            rights.append(RightView(title, resource_id, ", ".join(right["action"]), meta))
        messages = record.request_message or {}
        message = next((messages[k] for k in ("en", "nb", "no-nb", "nn") if k in messages), None)
        return ConsentView(
            consent_id=str(record.id),
            requester=self._party(record.to_party),
            handled_by=self._party(record.handled_by) if record.handled_by else None,
            subject=self._party(record.from_party),
            valid_to=record.valid_to.astimezone(UTC).strftime("%d.%m.%Y %H:%M UTC"),
            rights=tuple(rights),
            message=message,
            user=user,
        )

    def _status_page(self, request: Request, record: ConsentRecord) -> HTMLResponse:
        status = record.status
        if status is ConsentStatus.CREATED:
            return _html(message_page("Utløpt / Expired", "The consent request has expired."))
        link = None
        if status in (ConsentStatus.ACCEPTED, ConsentStatus.REJECTED):
            link = (f"{_prefix(request)}{REQUEST_PATH}/{record.id}/logout", "Return to the service")
        text = f"The consent request is {status.value.lower()}."
        return _html(message_page("Samtykke / Consent", text, link=link))

    async def show(self, request: Request) -> Response:
        consent_id = _parse_id(request.query_params.get("id"))
        if consent_id is None:
            return _html(message_page("Feil / Error", "Invalid consent request id."), 400)
        record = self.state.get(consent_id)
        if record is None:
            return _html(message_page("Feil / Error", "Consent request not found."), 404)
        session = self._session(request)
        if session is None:
            persons = [(p.fnr, p.name) for p in self.state.parties.persons]
            action = f"{_prefix(request)}{UI_PATH}/login"
            return _html(login_page(action, str(consent_id), persons))
        user = self._party(PERSON_URN + session.fnr)
        if not self.state.may_answer(record, session.fnr):
            reason = f"{user} may not answer consent requests for {self._party(record.from_party)}."
            page = refusal_page(
                user,
                reason,
                logout=f"{_prefix(request)}{UI_PATH}/logout-user",
                return_to=_request_url(request, str(record.id)),
            )
            return _html(page, 403)
        if record.status is ConsentStatus.CREATED and record.valid_to >= self.state.clock.now():
            base = f"{_prefix(request)}{REQUEST_PATH}/{record.id}"
            page = consent_page(
                self._view(record, user),
                approve=f"{base}/approve",
                reject=f"{base}/reject",
                csrf=session.csrf,
            )
            return _html(page)
        return self._status_page(request, record)

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        consent_id = _parse_id(form.get("id")) if form else None
        fnr = form.get("person", "") if form else ""
        if consent_id is None or self.state.parties.person(fnr) is None:
            return _html(message_page("Feil / Error", "Unknown person or request."), 400)
        response = _redirect(_request_url(request, str(consent_id)), 303)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.start(fnr),
            path=f"{_prefix(request)}{COOKIE_PATH}",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout_user(self, request: Request) -> Response:
        form = await _form(request) or {}
        return_to = form.get("return_to", "")
        if not return_to.startswith(f"{_prefix(request)}{REQUEST_PATH}?"):  # no open redirect
            return_to = f"{_prefix(request)}{UI_PATH}"
        return self._end_session(request, _redirect(return_to, 303))

    def _end_session(self, request: Request, response: Response) -> Response:
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response.delete_cookie(SESSION_COOKIE, path=f"{_prefix(request)}{COOKIE_PATH}")
        return response

    async def approve(self, request: Request) -> Response:
        return await self._answer(request, approve=True)

    async def reject(self, request: Request) -> Response:
        return await self._answer(request, approve=False)

    async def _answer(self, request: Request, *, approve: bool) -> Response:
        consent_id = _parse_id(request.path_params["id"])
        if consent_id is None:
            return _html(message_page("Feil / Error", "Invalid consent request id."), 400)
        session = self._session(request)
        if session is None:
            return _redirect(_request_url(request, str(consent_id)), 303)
        form = await _form(request) or {}
        if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
            return _html(message_page("Feil / Error", "The form has expired; reload it."), 403)
        try:
            act = self.state.approve if approve else self.state.reject
            record = act(consent_id, session.fnr)
        except ConsentActionError as exc:
            return _html(message_page("Feil / Error", _problem_text(exc)), exc.problem.status)
        if self.logout_hop:
            return _redirect(f"{_prefix(request)}{REQUEST_PATH}/{record.id}/logout", 302)
        return _redirect(with_status(record.redirect_url, record), 302)

    async def logout_hop_to_client(self, request: Request) -> Response:
        consent_id = _parse_id(request.path_params["id"])
        record = None if consent_id is None else self.state.get(consent_id)
        if record is None:
            return _html(message_page("Feil / Error", "Consent request not found."), 404)
        return self._end_session(request, _redirect(with_status(record.redirect_url, record), 302))


def page_routes(
    state: Altinn3State, *, logout_hop: bool, sessions: PortalSessions | None = None
) -> list[Route]:
    return _ConsentPage(state, sessions or PortalSessions(), logout_hop).routes()
