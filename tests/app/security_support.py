"""Helpers for the consent-flow security tests (security.md §6, G1 to G10).

Everything here observes the broker from outside, as the person's browser, the client API or
the sandbox's control API would; the only inside views are read-only (grant rows, the stored
Altinn id, the broker's own Maskinporten answers through an httpx event hook).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from starlette.applications import Starlette

from broker.consent.model import ConsentRequest, Generation, Language
from broker.consent.pages import person_page
from broker.sandbox.clock import Clock
from broker.store.consents import SqlConsentStore
from broker.store.models import ConsentGrant
from tests.flow import ALTINN2_UI, ALTINN3_UI, PORTAL_RETURN, Stack, Tenant, stack
from tests.support import write_signing_key

HTML = "text/html; charset=utf-8"
PROBLEM = "application/problem+json"
DEV_COOKIE = "ebevis-flow"
PROD_COOKIE = "__Host-ebevis-flow"
PROD_BROKER = "https://broker.test"
ALTINN_UI = ALTINN3_UI
ALTINN_UIS = (ALTINN3_UI, ALTINN2_UI)
# Another deployment's key (TT02 vs production): long enough and no placeholder words.
OTHER_DEPLOYMENT_KEY = "tt02-deployment-signing-key-7Qv9xLm2Rk4Tz8Wp"
PROD_SECRET_KEY = "prod-deployment-signing-key-3Hs8Kd1Nq6Vb9Xc2Fj5"
PROD_ENCRYPTION_KEYS = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# --- what the person sees ---------------------------------------------------------------------


def assert_page(response: httpx.Response, status: int, kind: str) -> None:
    """The broker's plain HTML page ``kind`` with exactly ``status``; nothing set, nowhere sent."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == HTML
    assert response.text == person_page(kind, Language.NB)
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers


def portal_query(response: httpx.Response, registered: str = PORTAL_RETURN) -> dict[str, str]:
    """The 303 to the portal: byte-for-byte the registered URL, then exactly our two fields."""
    assert response.status_code == 303, (response.status_code, response.text)
    location = response.headers["location"]
    separator = "&" if "?" in registered else "?"
    assert location.startswith(registered + separator), location
    assert "#" not in location
    extra = location[len(registered) + 1 :]
    query = parse_qs(extra, keep_blank_values=True, strict_parsing=True)
    assert set(query) == {"consent_request", "status"}, location
    assert all(len(values) == 1 for values in query.values())
    assert response.content == b""
    return {name: values[0] for name, values in query.items()}


def altinn_id_of(response: httpx.Response) -> str:
    """The Altinn consent id (Altinn 2: the AuthorizationCode) from the start's 303 to
    Altinn's consent page."""
    assert response.status_code == 303, (response.status_code, response.text)
    location = response.headers["location"]
    assert location.startswith(ALTINN_UIS), location
    return parse_qs(urlsplit(location).query)["id"][0]


def status_path(s: Stack, altinn_id: str) -> str:
    """How the sandbox counts the broker's reads of this Altinn request."""
    if s.sandbox.altinn2.get(altinn_id) is not None:
        return f"GET /altinn2/api/consentRequests/{altinn_id}"
    return f"GET /altinn/accessmanagement/api/v1/enterprise/consentrequests/{altinn_id}"


def handle_of(return_url: str) -> str:
    return parse_qs(urlsplit(return_url).query)["h"][0]


def start_token_of(consent_url: str) -> str:
    return parse_qs(urlsplit(consent_url).query)["t"][0]


def pending_return(s: Stack, altinn_id: str) -> str:
    """Where Altinn would send the browser back before anyone answered (no ``Status``)."""
    return s.redirect_url(altinn_id)


def set_cookie(response: httpx.Response) -> tuple[str, str, dict[str, str]]:
    """The one ``Set-Cookie`` of a response: name, value and attributes (names lower-cased,
    flags mapped to "")."""
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    pair, *attributes = (part.strip() for part in headers[0].split(";"))
    name, _, value = pair.partition("=")
    parsed: dict[str, str] = {}
    for attribute in attributes:
        key, _, attr_value = attribute.partition("=")
        assert key.lower() not in parsed, headers[0]
        parsed[key.lower()] = attr_value
    return name, value, parsed


# --- what the broker and the upstreams hold ---------------------------------------------------


async def upstream_calls(s: Stack) -> dict[str, Any]:
    """Maskinporten token requests, Altinn calls and Skatteetaten calls so far."""
    response = await s.sandbox_http.get("/control/counters")
    assert response.status_code == 200
    body = response.json()
    skatteetaten = body["skatteetaten"]
    return {
        "maskinporten": body["maskinporten"],
        "altinn": body["altinn"],
        "skatteetaten": {
            "calls_by_consumer": skatteetaten["calls_by_consumer"],
            "calls_by_outcome": skatteetaten["calls_by_outcome"],
        },
    }


async def visible_state(s: Stack, request_id: str, tenant: Tenant | None = None) -> dict[str, Any]:
    """The request as its client reads it, less ``consent_url`` (a fresh link on every read)."""
    body = await s.read(request_id, tenant)
    body.pop("consent_url")
    return body


async def history_actions(s: Stack, request_id: str, tenant: Tenant | None = None) -> list[str]:
    response = await s.api.get(
        f"/v1/consent-requests/{request_id}/history", headers=(tenant or s.tenant).headers
    )
    assert response.status_code == 200, response.text
    return [entry["action"] for entry in response.json()["items"]]


async def grant_rows(s: Stack, request_id: str) -> int:
    async with s.app.state.resources.sessions() as session:
        query = (
            select(func.count())
            .select_from(ConsentGrant)
            .where(ConsentGrant.consent_request_id == uuid.UUID(request_id))
        )
        count = (await session.execute(query)).scalar_one()
    assert isinstance(count, int)
    return count


async def stored_request(s: Stack, request_id: str) -> ConsentRequest:
    async with s.app.state.resources.sessions() as session:
        stored = await SqlConsentStore(session, s.app.state.cipher).get(
            uuid.UUID(request_id), client_id=None
        )
    assert stored is not None
    return stored


async def receipt_consent_id(s: Stack, request_id: str) -> str:
    """The Altinn consent id named in the stored receipt (the consent token), signature
    checked with the keys of the sandbox's Maskinporten (Altinn 3) or Altinn 2."""
    receipt = await s.receipt(request_id)
    assert receipt is not None
    stored = await stored_request(s, request_id)
    if stored.generation is Generation.ALTINN2:
        keys = KeySet.import_key_set(s.sandbox.altinn2_keys.public_jwks())  # type: ignore[arg-type]
        code = jwt.decode(receipt.decode(), keys).claims["AuthorizationCode"]
        assert isinstance(code, str)
        return code
    keys = KeySet.import_key_set(s.sandbox.keys.public_jwks())  # type: ignore[arg-type]
    details = jwt.decode(receipt.decode(), keys).claims["authorization_details"]
    assert len(details) == 1
    consent_id = details[0]["id"]
    assert isinstance(consent_id, str)
    return consent_id


def capture_maskinporten_tokens(s: Stack) -> list[str]:
    """Every access token Maskinporten hands the broker from now on (an httpx response hook
    on the broker's own Maskinporten client: it observes, it changes nothing)."""
    tokens: list[str] = []

    async def keep(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/token") and response.status_code == 200:
            await response.aread()
            tokens.append(response.json()["access_token"])

    s.app.state.resources.http("maskinporten").event_hooks["response"].append(keep)
    return tokens


async def register_tenant(
    app: Starlette, name: str, org: str, return_urls: tuple[str, ...]
) -> Tenant:
    clients = app.state.clients
    client_id = await clients.register(name=name, org_number=org, return_urls=return_urls)
    key = await clients.issue_key(client_id)
    return Tenant(client_id, key.value)


# --- a browser that keeps time with the sandbox -----------------------------------------------


class ClockedBrowser:
    """A browser whose cookies die by ``Max-Age`` on the shared clock, as a real browser's
    would on the wall clock, so time travel reaches the cookie jar too."""

    def __init__(self, s: Stack, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or s.browser()
        self._clock: Clock = s.sandbox.clock
        self._expiry: dict[str, datetime] = {}

    async def get(self, url: str) -> httpx.Response:
        now = self._clock.now()
        for name, expires in list(self._expiry.items()):
            if expires <= now:
                self.client.cookies.delete(name)
                del self._expiry[name]
        response = await self.client.get(url)
        for header in response.headers.get_list("set-cookie"):
            name = header.split("=", 1)[0].strip()
            for part in header.split(";")[1:]:
                key, _, value = part.strip().partition("=")
                if key.lower() == "max-age":
                    self._expiry[name] = self._clock.now() + timedelta(seconds=int(value))
        return response

    def cookie(self, name: str = DEV_COOKIE) -> str | None:
        return self.client.cookies.get(name)

    async def __aenter__(self) -> ClockedBrowser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.aclose()


# --- a production-configured broker -----------------------------------------------------------


@asynccontextmanager
async def prod_stack(
    database_url: str, tmp_path: Path, generation: str = "altinn3"
) -> AsyncIterator[Stack]:
    """``tests.flow.stack`` with production settings: browsers speak https to the broker."""
    async with stack(
        database_url,
        tmp_path,
        altinn_generation=generation,
        env="prod",
        secret_key=PROD_SECRET_KEY,
        encryption_keys=PROD_ENCRYPTION_KEYS,
        public_url=PROD_BROKER,
        signing_key_file=str(write_signing_key(tmp_path)),
    ) as s:
        assert not s.app.state.settings.is_dev
        yield s
