"""Builders for the fake Altinn 3 tests: the app with injected clock, register and keys, tokens
as the Maskinporten fake would issue them, a valid consent request body, the expected problem
bodies, the consent page's steps, and the ``keys``, ``fake`` and ``client`` fixtures.

The fixtures are registered under their short names; a test module imports them with
``from tests.sandbox.altinn3_helpers import client_fixture, fake_fixture, keys_fixture``."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from broker.sandbox.altinn3 import API_PATH, Altinn3Config, create_app
from broker.sandbox.altinn3_resources import NEW_RESOURCE, ConsentResource
from broker.sandbox.altinn3_state import Altinn3State
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.parties import default_parties

ISSUER = "http://maskinporten.test/"
PUBLIC_BASE = "http://altinn.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

SUPPLIER = "310100013"  # NUF; Kari and Lise may act for it
SUPPLIER_2 = "310100021"  # NUF; Kari may act for it
AUTHORITY = "310200018"  # ORGL
AUTHORITY_2 = "310200026"  # KOMM
BROKER = "310300012"
DIGDIR = "991825827"
UNKNOWN_ORG = "310100056"  # valid mod-11, not registered

KARI = "01819040180"
OLA = "15838540063"
LISE = "05859240048"
PER = "11889940079"  # may act for nobody
UNKNOWN_PERSON = "15838540144"  # valid check digits, not registered

WRITE = "altinn:consentrequests.write"
READ = "altinn:consentrequests.read"
ORG = "altinn:consentrequests.org"


def iso6523(orgnr: str) -> dict[str, str]:
    return {"authority": "iso6523-actorid-upis", "ID": f"0192:{orgnr}"}


@dataclass
class Fake:
    app: Starlette
    state: Altinn3State
    clock: Clock
    keys: SigningKeys
    config: Altinn3Config

    @property
    def register(self) -> ConsentRegister:
        return self.state.register

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE)

    def token(
        self,
        consumer: str | None = AUTHORITY,
        scope: str = WRITE,
        *,
        supplier: str | None = None,
        **claims: Any,
    ) -> str:
        now = self.clock.timestamp()
        body: dict[str, Any] = {
            "iss": ISSUER,
            "scope": scope,
            "client_id": "sandbox-client",
            "token_type": "Bearer",
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
        }
        if consumer is not None:
            body["consumer"] = iso6523(consumer)
        if supplier is not None:
            body["supplier"] = iso6523(supplier)
        body.update(claims)
        return self.keys.sign(body)

    def auth(
        self, consumer: str | None = AUTHORITY, scope: str = WRITE, **kw: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(consumer, scope, **kw)}"}


def make_fake(
    keys: SigningKeys,
    *,
    resources: Mapping[str, ConsentResource] | None = None,
    **config: Any,
) -> Fake:
    clock = Clock(START)
    settings = dataclasses.replace(
        Altinn3Config(public_base_url=PUBLIC_BASE, maskinporten_issuer=ISSUER), **config
    )
    state = Altinn3State(
        register=ConsentRegister(), parties=default_parties(), clock=clock, resources=resources
    )
    app = create_app(settings, clock, state=state, maskinporten_jwks=keys.public_jwks)
    return Fake(app, state, clock, keys, settings)


def right(resource: str = NEW_RESOURCE, **extra: Any) -> dict[str, Any]:
    return {
        "action": ["consent"],
        "resource": [{"type": "urn:altinn:resource", "value": resource}],
        **extra,
    }


def consent_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "from": org_urn(SUPPLIER),
        "to": org_urn(AUTHORITY),
        "validTo": (START + timedelta(days=90)).isoformat(),
        "consentRights": [right()],
        "redirectUrl": "https://broker.example/consent/return?ref=abc",
        "portalViewMode": "hide",
    }
    body.update(overrides)
    return body


async def create(
    fake: Fake,
    client: httpx.AsyncClient,
    body: Mapping[str, Any] | None = None,
    *,
    consumer: str = AUTHORITY,
    scope: str = WRITE,
) -> dict[str, Any]:
    """Create a request that must succeed; return its DTO."""
    response = await client.post(
        API_PATH, json=dict(body or consent_body()), headers=fake.auth(consumer, scope)
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert isinstance(created, dict)
    return created


async def post(fake: Fake, client: httpx.AsyncClient, body: Any, **auth: Any) -> httpx.Response:
    return await client.post(API_PATH, json=body, headers=fake.auth(**auth))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(name="keys", scope="module")
def keys_fixture() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp")


@pytest.fixture(name="fake")
def fake_fixture(keys: SigningKeys) -> Fake:
    return make_fake(keys)


@pytest.fixture(name="client")
async def client_fixture(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.client() as c:
        yield c


# --- expected problem bodies --------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem body minus its random traceId, after checking status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json; charset=utf-8"
    body = response.json()
    assert isinstance(body, dict)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", body.pop("traceId"))
    for nested in body.get("problems", []):
        nested.pop("traceId")
    return body


def am(code: str, status: int, title: str, **extensions: str) -> dict[str, Any]:
    phrase = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
    return {
        "type": f"urn:altinn:error:{code}",
        "title": title,
        "status": status,
        "code": code,
        "statusDescription": phrase,
        **extensions,
    }


def validation(*errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "urn:altinn:error:STD-00000",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "code": "STD-00000",
        "statusDescription": "Bad Request",
        "validationErrors": list(errors),
    }


def vld(code: str, title: str, path: str, detail: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "title": title, "paths": [path]}
    if detail is not None:
        error["detail"] = detail
    return error


# --- the consent page ---------------------------------------------------------------------------

UI = "/accessmanagement/ui/consent"
FRAMING = {"content-security-policy": "frame-ancestors 'none'", "x-frame-options": "DENY"}


def assert_no_framing(response: httpx.Response) -> None:
    for name, value in FRAMING.items():
        assert response.headers[name] == value
    assert response.headers["cache-control"] == "no-store"


async def new_request(fake: Fake, client: httpx.AsyncClient, **overrides: Any) -> str:
    return str((await create(fake, client, consent_body(**overrides)))["id"])


async def log_in(client: httpx.AsyncClient, consent_id: str, fnr: str, prefix: str = "") -> None:
    form = {"id": consent_id, "person": fnr}
    response = await client.post(f"{prefix}{UI}/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == f"{prefix}{UI}/request?id={consent_id}"
    assert_no_framing(response)


async def open_page(client: httpx.AsyncClient, consent_id: str, prefix: str = "") -> httpx.Response:
    return await client.get(f"{prefix}{UI}/request", params={"id": consent_id})


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def answer(
    client: httpx.AsyncClient, consent_id: str, verb: str, csrf: str, prefix: str = ""
) -> httpx.Response:
    url = f"{prefix}{UI}/request/{consent_id}/{verb}"
    return await client.post(url, data={"csrf": csrf, "answer": verb})
