"""The fake Altinn 2 consent page, ``/ui/AccessConsent/request?id={AuthorizationCode}``.

A "log in as" step stands in for ID-porten; viewing the request opens it (``Unopened`` →
``Opened``); Approve and Reject answer it and send the browser with a 302 to ``RedirectUrl``
plus, for an acceptance, ``AuthorizationCode={code}&Status=OK`` and, for a refusal,
``Status=Failed&ErrorMessage=User%2520did%2520not%2520give%2520consent&FailedAuthorizationCode=
{code}`` (the docs' example is double-encoded; ``altinn-consent.md`` §1.1 step 4). The page
refuses framing (Skatteetaten forbids it, §5.4) and is never cached.
"""

from __future__ import annotations

import hmac
import uuid
from urllib.parse import parse_qsl, quote, urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from broker.sandbox.altinn2_config import Altinn2Config
from broker.sandbox.altinn2_state import A2Request, A2Status, Altinn2ActionError, Altinn2State
from broker.sandbox.altinn3_html import (
    ConsentView,
    RightView,
    consent_page,
    login_page,
    message_page,
    refusal_page,
)
from broker.sandbox.altinn3_page import PortalSessions

__all__ = ["PAGE_PATH", "SESSION_COOKIE", "answer_redirect", "page_routes"]

UI_PATH = "/ui/AccessConsent"
PAGE_PATH = f"{UI_PATH}/request"
SESSION_COOKIE = "AltinnSandbox2Session"
_FORM_LIMIT = 8192
_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_REFUSAL = "User did not give consent"


def answer_redirect(request: A2Request, *, double_encode: bool = True) -> str:
    """``RedirectUrl`` with the answer's parameters, or unchanged while unanswered."""
    if request.status is A2Status.ACCEPTED:
        params = f"AuthorizationCode={request.code}&Status=OK"
    elif request.status is A2Status.REJECTED:
        message = quote(_REFUSAL)
        if double_encode:
            message = quote(message)
        params = f"Status=Failed&ErrorMessage={message}&FailedAuthorizationCode={request.code}"
    else:
        return request.redirect_url
    base, hash_mark, fragment = request.redirect_url.partition("#")
    separator = "?" if "?" not in base else ("" if base.endswith(("?", "&")) else "&")
    return f"{base}{separator}{params}" + (f"#{fragment}" if hash_mark else "")


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=_HEADERS)


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _parse(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if media != "application/x-www-form-urlencoded" or len(body) > _FORM_LIMIT:
        return {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


class _Page:
    def __init__(self, state: Altinn2State, config: Altinn2Config) -> None:
        self.state = state
        self.config = config
        self.sessions = PortalSessions()

    def routes(self) -> list[Route]:
        return [
            Route(PAGE_PATH, self.show, methods=["GET"]),
            Route(f"{UI_PATH}/login", self.login, methods=["POST"]),
            Route(f"{UI_PATH}/logout", self.logout, methods=["POST"]),
            Route(f"{PAGE_PATH}/{{code}}/approve", self.approve, methods=["POST"]),
            Route(f"{PAGE_PATH}/{{code}}/reject", self.reject, methods=["POST"]),
        ]

    def _url(self, request: Request, code: uuid.UUID) -> str:
        return f"{_prefix(request)}{PAGE_PATH}?{urlencode({'id': str(code)})}"

    def _session_fnr(self, request: Request) -> tuple[str, str] | None:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        return None if session is None else (session.fnr, session.csrf)

    def _name(self, party: str) -> str:
        if len(party) == 9:
            org = self.state.parties.organisation(party)
            return f"{org.name} ({party})" if org else party
        person = self.state.parties.person(party)
        return person.name if person else party

    def _view(self, record: A2Request, user: str) -> ConsentView:
        zone = ZoneInfo(self.config.local_timezone)
        rights = tuple(
            RightView(
                r.service.title,
                f"{r.service.code}/{r.service.edition}",
                "consent",
                tuple(r.metadata.items()),
            )
            for r in record.resources
        )
        message = (record.request_message or {}).get("en")
        return ConsentView(
            consent_id=str(record.code),
            requester=self._name(record.covered_by),
            handled_by=self._name(record.handled_by) if record.handled_by else None,
            subject=self._name(record.offered_by),
            valid_to=record.valid_to.astimezone(zone).strftime("%d.%m.%Y %H:%M"),
            rights=rights,
            message=message,
            user=user,
        )

    async def show(self, request: Request) -> Response:
        code = _parse(request.query_params.get("id"))
        record = None if code is None else self.state.get(code)
        if record is None:
            return _html(message_page("Feil / Error", "Consent request not found."), 404)
        session = self._session_fnr(request)
        if session is None:
            persons = [(p.fnr, p.name) for p in self.state.parties.persons]
            return _html(login_page(f"{_prefix(request)}{UI_PATH}/login", str(code), persons))
        fnr, csrf = session
        user = self._name(fnr)
        if not self.state.may_answer(record, fnr):
            reason = f"{user} may not answer consent requests for {self._name(record.offered_by)}."
            return _html(
                refusal_page(
                    user,
                    reason,
                    logout=f"{_prefix(request)}{UI_PATH}/logout",
                    return_to=self._url(request, record.code),
                ),
                403,
            )
        self.state.open(record.code)
        open_ = record.status in (A2Status.UNOPENED, A2Status.OPENED)
        if open_ and record.valid_to > self.state.clock.now():
            base = f"{_prefix(request)}{PAGE_PATH}/{record.code}"
            view = self._view(record, user)
            page = consent_page(view, approve=f"{base}/approve", reject=f"{base}/reject", csrf=csrf)
            return _html(page)
        if open_:
            return _html(message_page("Utløpt / Expired", "The consent request has expired."))
        back = answer_redirect(record, double_encode=self.config.double_encode_error_message)
        text = f"The consent request is {record.status.value.lower()}."
        return _html(message_page("Samtykke / Consent", text, link=(back, "Return to the service")))

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        code = _parse(form.get("id"))
        fnr = form.get("person", "")
        if code is None or self.state.parties.person(fnr) is None:
            return _html(message_page("Feil / Error", "Unknown person or request."), 400)
        response = RedirectResponse(self._url(request, code), status_code=303, headers=_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.start(fnr),
            path=f"{_prefix(request)}/ui",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        target = form.get("return_to", "")
        if not target.startswith(f"{_prefix(request)}{PAGE_PATH}?"):  # no open redirect
            target = f"{_prefix(request)}{UI_PATH}/request"
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path=f"{_prefix(request)}/ui")
        return response

    async def approve(self, request: Request) -> Response:
        return await self._answer(request, accept=True)

    async def reject(self, request: Request) -> Response:
        return await self._answer(request, accept=False)

    async def _answer(self, request: Request, *, accept: bool) -> Response:
        code = _parse(request.path_params["code"])
        if code is None:
            return _html(message_page("Feil / Error", "Invalid consent request id."), 400)
        session = self._session_fnr(request)
        if session is None:
            return RedirectResponse(self._url(request, code), status_code=303, headers=_HEADERS)
        form = await _form(request)
        if not hmac.compare_digest(form.get("csrf", ""), session[1]):
            return _html(message_page("Feil / Error", "The form has expired; reload it."), 403)
        try:
            record = self.state.answer(code, session[0], accept=accept)
        except Altinn2ActionError as exc:
            return _html(message_page("Feil / Error", exc.message), exc.status)
        target = answer_redirect(record, double_encode=self.config.double_encode_error_message)
        return RedirectResponse(target, status_code=302, headers=_HEADERS)


def page_routes(state: Altinn2State, config: Altinn2Config) -> list[Route]:
    return _Page(state, config).routes()
