"""Helpers for the Maskinporten adapter tests.

``fake_maskinporten`` runs the sandbox's fake Maskinporten in-process with the broker's client
registered, a delegation from ``CUSTOMER_ORG`` and the client's private key written to a file
by ``broker.sandbox.seed.write_private_jwk`` (the adapter reads it back with ``keys.py``).
Traffic goes through an ``httpx.MockTransport`` that records every request and can answer the
next ones with canned faults (exceptions or responses) the fake cannot produce, or reshape the
JWKS it serves (to publish a new signing key only from some moment on).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from broker.maskinporten.client import MaskinportenClient
from broker.maskinporten.keys import load_client_key
from broker.maskinporten.retry import RetryPolicy
from broker.maskinporten.verifier import TokenVerifier
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import (
    Delegation,
    MaskinportenConfig,
    MaskinportenState,
    SandboxClient,
    create_app,
)
from broker.sandbox.seed import write_private_jwk
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    BROKER_ORG,
    CUSTOMER_ORG,
    ISSUER,
    SCOPE,
    START,
)

JWKS_URI = ISSUER + "jwk"
Fault = Exception | httpx.Response


class Sleeps:
    """A ``RetryPolicy.sleep`` that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass
class Traffic:
    """Requests that reached the transport, faults to answer next, and a JWKS filter."""

    requests: list[httpx.Request] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)  # for the next requests, any path
    path_faults: dict[str, deque[Fault]] = field(default_factory=dict)  # by URL path
    published: set[str] | None = None  # kids /jwk serves; None: all of them

    def fail(self, path: str, *faults: Fault) -> None:
        """Answer the next requests to ``path`` with ``faults``, in order."""
        self.path_faults.setdefault(path, deque()).extend(faults)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if (r.method, r.url.path) == (method, path))

    @property
    def jwks_fetches(self) -> int:
        return self.count("GET", "/jwk")

    def assertions(self) -> list[dict[str, Any]]:
        """The (unverified) claims of every grant posted to /token."""
        posted = [r for r in self.requests if r.url.path == "/token"]
        forms = [dict(httpx.QueryParams(r.content.decode())) for r in posted]
        return [payload(form["assertion"]) for form in forms]


def payload(token: str) -> dict[str, Any]:
    """A JWT's claims, read without verification (for asserting on what was sent)."""
    segment = token.split(".")[1]
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert isinstance(value, dict)
    return value


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert isinstance(value, dict)
    return value


def transport(app: Starlette, traffic: Traffic) -> httpx.MockTransport:
    asgi = httpx.ASGITransport(app=app)

    async def handle(request: httpx.Request) -> httpx.Response:
        traffic.requests.append(request)
        await asyncio.sleep(0)  # a network round trip lets other tasks run, as a real one does
        queue = traffic.path_faults.get(request.url.path) or traffic.faults
        if queue:
            fault = queue.popleft()
            if isinstance(fault, Exception):
                raise fault
            return fault
        response = await asgi.handle_async_request(request)
        if request.url.path == "/jwk" and traffic.published is not None:
            await response.aread()
            keys = [k for k in response.json()["keys"] if k["kid"] in traffic.published]
            return httpx.Response(200, json={"keys": keys})
        return response

    return httpx.MockTransport(handle)


@dataclass
class Fake:
    """One fake Maskinporten, its injected parts, and the broker client's key file."""

    app: Starlette
    config: MaskinportenConfig
    clock: Clock
    state: MaskinportenState
    keys: SigningKeys
    consents: ConsentRegister
    traffic: Traffic
    http: httpx.AsyncClient
    registered: SandboxClient
    key_file: Path
    sleeps: Sleeps = field(default_factory=Sleeps)

    def client(self, **overrides: Any) -> MaskinportenClient:
        """The adapter's client for the registered client; ``overrides`` replace arguments."""
        key = load_client_key(self.key_file)
        arguments: dict[str, Any] = {
            "issuer": ISSUER,
            "client_id": key.client_id,
            "key": key,
            "clock": self.clock.now,
            "retry": RetryPolicy(sleep=self.sleeps, jitter=lambda: 0.0),
        }
        arguments.update(overrides)
        return MaskinportenClient(self.http, **arguments)

    def verifier(self, **overrides: Any) -> TokenVerifier:
        arguments: dict[str, Any] = {
            "issuer": ISSUER,
            "jwks_uri": JWKS_URI,
            "clock": self.clock.now,
        }
        arguments.update(overrides)
        return TokenVerifier(self.http, **arguments)

    def token_requests(self) -> int:
        """Requests that reached the fake's /token, by any key of any client."""
        return sum(self.state.token_requests().values())

    def sign(self, claims: Mapping[str, Any], **headers: Any) -> str:
        """A token signed with the fake issuer's current key, with any claims."""
        return self.keys.sign(claims, headers=headers)

    def claims(self, **extra: Any) -> dict[str, Any]:
        """Claims of a well-formed token of this issuer at the fake's time, plus ``extra``."""
        now = self.clock.timestamp()
        claims = {"iss": ISSUER, "scope": SCOPE, "iat": now, "exp": now + 120, "jti": "j"}
        claims["consumer"] = {"authority": "iso6523-actorid-upis", "ID": f"0192:{BROKER_ORG}"}
        claims.update(extra)
        return claims


@asynccontextmanager
async def fake_maskinporten(
    registered: SandboxClient,
    keys: SigningKeys,
    directory: Path,
    *,
    config: MaskinportenConfig | None = None,
    base_url: str = BASE_URL,
) -> AsyncIterator[Fake]:
    """A fresh fake with ``registered`` as a client and ``CUSTOMER_ORG`` delegating ``SCOPE``."""
    config = config or MaskinportenConfig(base_url=base_url)
    config = replace(
        config,
        clients=(*config.clients, registered.registration()),
        delegations=(*config.delegations, Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE)),
    )
    clock, state, consents = Clock(START), MaskinportenState(), ConsentRegister()
    app = create_app(config, clock, state=state, keys=keys, consents=consents)
    key_file = directory / "maskinporten-client.jwk.json"
    write_private_jwk(registered, key_file)
    traffic = Traffic()
    async with httpx.AsyncClient(transport=transport(app, traffic), base_url=base_url) as http:
        yield Fake(app, config, clock, state, keys, consents, traffic, http, registered, key_file)
