"""A strict fake Maskinporten (``shared/reference/maskinporten.md`` §1-§3, §6).

Routes: ``GET /.well-known/oauth-authorization-server`` (RFC 8414 metadata), ``GET /jwk`` (the
issuer's public keys, two of them so rotation can be tested) and ``POST /token`` (the RFC 7523
JWT-bearer grant, with ``consumer_org`` delegation and ``urn:altinn:consent`` details).

Compose it with ``create_app(config, clock, state=..., keys=..., consents=...)``; everything
mutable lives in the injected ``MaskinportenState``, ``SigningKeys`` and ``ConsentRegister``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten_assertion import peek_identity, read_assertion, verify_assertion
from broker.sandbox.maskinporten_client import SandboxClient, consent_details
from broker.sandbox.maskinporten_config import JWT_BEARER, MaskinportenConfig
from broker.sandbox.maskinporten_errors import TokenError
from broker.sandbox.maskinporten_grant import TokenIssuer
from broker.sandbox.maskinporten_registry import (
    ClientRegistration,
    Delegation,
    Fault,
    MaskinportenState,
    ScopeRule,
)

__all__ = [
    "ClientRegistration",
    "Delegation",
    "Fault",
    "MaskinportenConfig",
    "MaskinportenState",
    "SandboxClient",
    "ScopeRule",
    "TokenError",
    "consent_details",
    "create_app",
    "issuer_jwks",
    "metadata",
    "seed",
]

# RFC 6749 §5.1: token responses must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def metadata(config: MaskinportenConfig) -> dict[str, Any]:
    """The authorization-server metadata document, field for field as TEST publishes it (§1.1)."""
    return {
        "issuer": config.issuer,
        "token_endpoint": config.token_endpoint,
        "jwks_uri": config.jwks_uri,
        "grant_types_supported": [JWT_BEARER],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(config.assertion_algorithms),
        "authorization_details_types_supported": ["urn:altinn:systemuser", "urn:altinn:consent"],
    }


def issuer_jwks(app: Starlette) -> Callable[[], dict[str, Any]]:
    """The issuer's current public key set (as ``/jwk`` serves it), for token validators."""
    keys: SigningKeys = app.state.signing_keys
    return keys.public_jwks


def seed(state: MaskinportenState, config: MaskinportenConfig) -> None:
    """Register the config's clients, scopes and delegations in ``state``."""
    for client in config.clients:
        state.register_client(client)
    for rule in config.scopes:
        state.register_scope(rule)
    for delegation in config.delegations:
        state.add_delegation(delegation)


def create_app(
    config: MaskinportenConfig,
    clock: Clock,
    *,
    state: MaskinportenState | None = None,
    keys: SigningKeys | None = None,
    consents: ConsentRegister | None = None,
    correlation_ids: Callable[[], str] | None = None,
) -> Starlette:
    """The fake as a Starlette app; ``app.state`` holds ``maskinporten`` (the state) and
    ``signing_keys``, whose ``public_jwks`` is the issuer's key set for token validators."""
    state = state if state is not None else MaskinportenState()
    keys = keys if keys is not None else SigningKeys.generate(2, prefix="maskinporten")
    seed(state, config)
    endpoint = _TokenEndpoint(
        config,
        clock,
        state,
        TokenIssuer(
            config, clock, state, keys, consents if consents is not None else ConsentRegister()
        ),
        correlation_ids or (lambda: str(uuid.uuid4())),
    )

    async def well_known(request: Request) -> Response:
        return JSONResponse(metadata(config))

    async def jwk(request: Request) -> Response:
        return JSONResponse(keys.public_jwks())

    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", well_known, methods=["GET"]),
            Route("/jwk", jwk, methods=["GET"]),
            Route("/token", endpoint.handle, methods=["POST"]),
        ]
    )
    app.state.maskinporten = state
    app.state.signing_keys = keys
    return app


class _TokenEndpoint:
    def __init__(
        self,
        config: MaskinportenConfig,
        clock: Clock,
        state: MaskinportenState,
        issuer: TokenIssuer,
        correlation_ids: Callable[[], str],
    ) -> None:
        self._config = config
        self._clock = clock
        self._state = state
        self._issuer = issuer
        self._correlation_ids = correlation_ids

    async def handle(self, request: Request) -> Response:
        content_type, body = request.headers.get("content-type"), await request.body()
        self._count(content_type, body)
        fault = self._state.take_fault()
        if fault is not None:
            return _fault_response(fault)
        try:
            assertion = read_assertion(content_type, body)
            grant = verify_assertion(
                assertion, config=self._config, state=self._state, clock=self._clock
            )
            token = self._issuer.issue(grant)
        except TokenError as exc:
            self._state.count_failure(exc.error)
            return self._error(exc)
        self._state.count_issued((grant.client.client_id, token.scope, token.consumer_org))
        return JSONResponse(token.response(), headers=_NO_STORE)

    def _count(self, content_type: str | None, body: bytes) -> None:
        try:
            identity = peek_identity(read_assertion(content_type, body))
        except TokenError:
            return
        if identity is not None:
            self._state.count_request(*identity)

    def _error(self, exc: TokenError) -> Response:
        body = exc.body(
            correlation_id=self._correlation_ids(),
            with_mp_code=self._config.mp_codes_in_descriptions,
        )
        return JSONResponse(body, status_code=exc.status, headers=_NO_STORE)


def _fault_response(fault: Fault) -> Response:
    headers = dict(_NO_STORE)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    body = {"error": fault.error, "error_description": fault.description}
    return JSONResponse(body, status_code=fault.status, headers=headers)
