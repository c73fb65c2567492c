"""Helpers for the fake Altinn 2 tests: the composed sandbox, real Maskinporten tokens from its
Maskinporten fake, a valid consent request body, and the consent page's steps."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.seed import ALTINN2_API_KEY
from tests.sandbox.sandbox_helpers import AUTHORITY, BASE, START, SUPPLIER, build, token

PREFIX = "/altinn2"
API = f"{PREFIX}/api/consentRequests"
TOKEN = f"{PREFIX}/api/authorization/token"
HAL = "application/hal+json"
BROKER = "310300012"
WRITE = "altinn:consentrequests.write"
TOKENS = "altinn:consenttokens"
SUPPLIER_NAME = "NORDBYGG POLSKA NUF"
AUTHORITY_NAME = "DIREKTORATET FOR SANDKASSEBYGG"
RETURN = "http://127.0.0.1:8000/consent/return?h=abc"
OSLO = ZoneInfo("Europe/Oslo")
FORBIDDEN = (
    "The API key is not authorized for this operation, or the supplied authorization code is "
    "either expired or invalid."
)


def local(moment: Any) -> str:
    return str(moment.astimezone(OSLO).strftime("%Y-%m-%dT%H:%M:%S.000"))


def body(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "CoveredBy": AUTHORITY,
        "OfferedBy": SUPPLIER,
        "OfferedByName": SUPPLIER_NAME,
        "HandledBy": BROKER,
        "ValidTo": local(START + timedelta(days=30)),
        "RedirectUrl": RETURN,
        "RequestResources": [
            {
                "ServiceCode": "5616",
                "ServiceEditionCode": 2,
                "Metadata": {"requestor": AUTHORITY, "requestorName": AUTHORITY_NAME},
            }
        ],
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


@dataclasses.dataclass
class A2:
    sandbox: world.Sandbox
    http: httpx.AsyncClient

    async def headers(
        self,
        scope: str | None = WRITE,
        *,
        consumer_org: str | None = AUTHORITY,
        key: str | None = ALTINN2_API_KEY,
        accept: str = HAL,
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        if key is not None:
            headers["ApiKey"] = key
        if scope is not None:
            bearer = await token(self.http, self.sandbox, scope, consumer_org=consumer_org)
            headers["Authorization"] = f"Bearer {bearer}"
        return headers

    async def post(self, payload: Any, **auth: Any) -> httpx.Response:
        return await self.http.post(API, json=payload, headers=await self.headers(**auth))

    async def create(self, **overrides: Any) -> dict[str, Any]:
        response = await self.post(body(**overrides))
        assert response.status_code == 201, response.text
        created = response.json()
        assert isinstance(created, dict)
        return created

    async def control(self, code: str, action: str, **payload: Any) -> httpx.Response:
        return await self.http.post(f"/control/altinn2/{code}/{action}", json=payload)

    async def accepted(self, **overrides: Any) -> str:
        code = str((await self.create(**overrides))["AuthorizationCode"])
        response = await self.control(code, "approve")
        assert response.status_code == 200, response.text
        return code

    async def fetch_token(self, code: str, **auth: Any) -> httpx.Response:
        auth.setdefault("scope", TOKENS)
        return await self.http.get(f"{TOKEN}/{code}", headers=await self.headers(**auth))

    def status(self, code: str) -> str:
        request = self.sandbox.altinn2.get(code)
        assert request is not None
        return request.status.value

    def verify(self, value: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self.sandbox.altinn2_keys.public_jwks())  # type: ignore[arg-type]
        return dict(jwt.decode(value, keys).claims)


@asynccontextmanager
async def altinn2(sandbox: world.Sandbox | None = None) -> AsyncIterator[A2]:
    sandbox = sandbox or build()
    transport = httpx.ASGITransport(app=sandbox_app.create_app(sandbox))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield A2(sandbox, http)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def new_code() -> str:
    return str(uuid.uuid4())
