"""The browser's way through the flow: the consent link, Altinn, and the way back.

``start`` answers the procurement portal's redirect: it binds the browser with a cookie, makes
sure the Altinn request exists (its id is stored before the POST, so a retry re-posts the same
request), and sends the person to Altinn. ``finish`` takes the person back from Altinn: it checks
the signed handle against the cookie, takes the request's single return in the database, has
Altinn and Maskinporten confirm the answer, and sends the person to the portal's return URL.
Nothing secret is ever put in a URL; the portal learns only the request id and its status.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from broker.consent.confirm import Confirmer
from broker.consent.ids import uuid7
from broker.consent.machine import ConsentFlow, Expired, Failed, InvalidTransition, Started, step
from broker.consent.model import ConsentRequest, Language, State
from broker.consent.notices import publish
from broker.consent.ports import (
    AltinnRequest,
    Gateway,
    Gateways,
    UnitOfWork,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.service import audit_transition
from broker.consent.tokens import Binding, FlowTokens, TokenExpired, TokenInvalid

__all__ = ["BrowserFlow", "PersonError", "Redirect"]

logger = logging.getLogger("broker.consent")

_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")
_PORTAL_STATUS = {
    State.GRANTED: "granted",
    State.DENIED: "denied",
    State.REDIRECTED: "pending",
    State.PENDING: "pending",
}


@dataclass(frozen=True)
class Redirect:
    location: str
    cookie: str | None = None  # the binding value to set, when it is new


class PersonError(Exception):
    """Something to tell the person in the browser; ``kind`` selects the page's text."""

    def __init__(self, kind: str, status: int, language: Language = Language.NB) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status
        self.language = language


class BrowserFlow:
    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        gateways: Gateways,
        confirmer: Confirmer,
        flow_tokens: FlowTokens,
        return_endpoint: str,
        return_ttl: int,
        now: Callable[[], datetime],
    ) -> None:
        self._units = units
        self._return_ttl = timedelta(seconds=return_ttl)
        self._gateways = gateways
        self._confirmer = confirmer
        self._tokens = flow_tokens
        self._return_endpoint = return_endpoint
        self._now = now

    def consent_url(self, base: str, request_id: uuid.UUID) -> str:
        token = self._tokens.start_token(str(request_id))
        return f"{base}/consent/{request_id}/start?{urlencode({'t': token})}"

    async def start(self, request_id: str, token: str, cookie: str | None) -> Redirect:
        try:
            named = self._tokens.read_start_token(token)
        except TokenExpired:
            raise PersonError("link_expired", 410) from None
        except TokenInvalid:
            raise PersonError("link_invalid", 400) from None
        if named != request_id:
            raise PersonError("link_invalid", 400)
        request = await self._load(request_id)
        if request.state not in (State.PENDING, State.REDIRECTED):
            return self._closed(request)
        if request.valid_to <= self._now():
            await self._move(request, Expired(), ("system", "expiry"))
            raise PersonError("request_closed", 410, request.language)
        gateway = self._gateways.get(request.generation)
        if gateway is None:
            logger.error("no adapter for Altinn generation %s", request.generation.value)
            raise PersonError("try_again", 503, request.language)
        if not gateway.altinn_chooses_id:
            request = await self._ensure_altinn_id(request)
        binding = self._binding(cookie)
        view_uri = await self._create_at_altinn(request, binding, gateway)
        if request.state is State.PENDING:
            await self._move(request, Started(), ("person", "browser"))
        else:
            await self._touch(request)
        # Set on every start, so the cookie lives a full return window from the latest opening.
        return Redirect(view_uri, binding.cookie_value)

    async def finish(self, handle: str, cookie: str | None, status_hint: str | None) -> Redirect:
        try:
            request_id = self._tokens.read_return_handle(handle, cookie)
        except TokenExpired:
            raise PersonError("return_expired", 400) from None
        except TokenInvalid:
            raise PersonError("return_invalid", 400) from None
        request = await self._load(request_id)
        opened = request.redirected_at
        if opened is None or self._now() - opened > self._return_ttl:
            # Altinn keeps the redirect URL of its first POST, so the handle cannot carry the
            # window; the window counts from the person's latest opening of the consent link.
            raise PersonError("return_expired", 400, request.language)
        async with self._units() as uow:
            claimed = await uow.consents.claim_return(request.id, at=self._now())
            await uow.commit()
        if not claimed:
            raise PersonError("return_used", 409, request.language)
        logger.info("return from altinn, status hint %s (not trusted)", (status_hint or "")[:16])
        try:
            outcome = await self._confirmer.confirm(
                request, actor=("person", "browser"), correlation_id=None
            )
        except UpstreamUnavailable:
            await self._release(request)
            raise PersonError("try_again", 503, request.language) from None
        if not outcome.changed and outcome.state is State.REDIRECTED:
            await self._release(request)  # nobody answered yet: the return may come again
        return Redirect(_portal_url(request, outcome.state))

    def _binding(self, cookie: str | None) -> Binding:
        # One value per browser, reused by every flow, so parallel flows in one browser work.
        if cookie is not None and _COOKIE_VALUE.fullmatch(cookie):
            return FlowTokens.binding_for(cookie)
        return FlowTokens.new_binding()

    async def _load(self, request_id: str) -> ConsentRequest:
        try:
            parsed = uuid.UUID(request_id)
        except ValueError:
            raise PersonError("link_invalid", 400) from None
        async with self._units() as uow:
            request = await uow.consents.get(parsed, client_id=None)
        if request is None:
            raise PersonError("link_invalid", 400)
        return request

    async def _ensure_altinn_id(self, request: ConsentRequest) -> ConsentRequest:
        if request.altinn_consent_id is not None:
            return request
        async with self._units() as uow:
            await uow.consents.set_altinn_id(request.id, uuid7(self._now()))
            await uow.commit()
            stored = await uow.consents.get(request.id, client_id=None)
        assert stored is not None
        return stored

    async def _create_at_altinn(
        self, request: ConsentRequest, binding: Binding, gateway: Gateway
    ) -> str:
        handle = self._tokens.return_handle(str(request.id), binding)
        try:
            created = await gateway.altinn.create(self._altinn_request(request, handle))
            if request.altinn_consent_id is None:
                # Altinn 2 chose the id (its AuthorizationCode): kept before the person leaves.
                stored = await self._keep_code(request, created.id)
                if stored != created.id:
                    # Another start of this request won the race: go to its request instead.
                    request = replace(request, altinn_consent_id=stored)
                    created = await gateway.altinn.create(self._altinn_request(request, handle))
        except UpstreamUnavailable:
            raise PersonError("try_again", 503, request.language) from None
        except UpstreamRefused as exc:
            logger.warning("altinn refused the consent request: %s", exc.code)
            await self._move(request, Failed(f"altinn_{exc.code}"), ("system", "altinn"))
            raise PersonError("altinn_refused", 502, request.language) from None
        return created.view_uri

    def _altinn_request(self, request: ConsentRequest, handle: str) -> AltinnRequest:
        return AltinnRequest(
            id=request.altinn_consent_id,
            subject_org=request.subject_org,
            requestor_org=request.requestor_org,
            resource=request.resource,
            valid_to=request.valid_to,
            redirect_url=f"{self._return_endpoint}?{urlencode({'h': handle})}",
            language=request.language.value,
        )

    async def _keep_code(self, request: ConsentRequest, code: uuid.UUID) -> uuid.UUID:
        async with self._units() as uow:
            kept = await uow.consents.set_altinn_code(request.id, code)
            await uow.commit()
            if kept:
                return code
            stored = await uow.consents.get(request.id, client_id=None)
        assert stored is not None
        assert stored.altinn_consent_id is not None
        return stored.altinn_consent_id

    def _closed(self, request: ConsentRequest) -> Redirect:
        if request.state in (State.GRANTED, State.DENIED):
            return Redirect(_portal_url(request, request.state))
        raise PersonError("request_closed", 410, request.language)

    async def _move(
        self, request: ConsentRequest, event: Started | Expired | Failed, actor: tuple[str, str]
    ) -> None:
        now = self._now()
        try:
            moved, effects = step(
                ConsentFlow(str(request.id), request.state, request.valid_to), event, now=now
            )
        except InvalidTransition:
            return
        async with self._units() as uow:
            if await uow.consents.move(
                request.id, expected=request.state, to=moved.state, reason=moved.reason, at=now
            ):
                action = "redirected" if moved.state is State.REDIRECTED else moved.state.value
                await uow.audit.append(
                    audit_transition(
                        request, action, actor=actor, state=moved.state, reason=moved.reason
                    ),
                    at=now,
                )
                await publish(uow, request, moved, effects, at=now)
                await uow.commit()

    async def _touch(self, request: ConsentRequest) -> None:
        async with self._units() as uow:
            await uow.consents.touch_redirect(request.id, at=self._now())
            await uow.commit()

    async def _release(self, request: ConsentRequest) -> None:
        async with self._units() as uow:
            await uow.consents.release_return(request.id)
            await uow.commit()


def _portal_url(request: ConsentRequest, state: State) -> str:
    status = _PORTAL_STATUS.get(state, "failed")
    separator = "&" if "?" in request.return_url else "?"
    query = urlencode({"consent_request": str(request.id), "status": status})
    return f"{request.return_url}{separator}{query}"
