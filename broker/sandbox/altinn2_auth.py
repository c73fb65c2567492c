"""Who calls the fake Altinn 2 API: an ``ApiKey`` header, plus an optional Maskinporten token.

Altinn 2 authenticates an enterprise by its certificate or by a Maskinporten bearer token, and
every call also needs the ``ApiKey`` (``altinn-consent.md`` §1.1, §2.1). The sandbox has no TLS
client certificates, so a call with the API key alone stands for the certificate of the key's
organisation (inferred). With a token the caller is its ``consumer``, and a ``supplier`` acts
for it as handler; the API key must then belong to one of the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from broker.sandbox.altinn2_config import Altinn2Config, ApiKey
from broker.sandbox.altinn2_state import A2Request
from broker.sandbox.jose import InvalidToken, verify_jwt
from broker.sandbox.orgnr import is_valid_orgnr

__all__ = ["FORBIDDEN_TEXT", "A2Caller", "JwksSource", "authenticate", "forbidden"]

JwksSource = Callable[[], Mapping[str, Any]]

# The documented refusal of a token fetch (A2-TOK); used for every 403 of the fake.
FORBIDDEN_TEXT = (
    "The API key is not authorized for this operation, or the supplied authorization code is "
    "either expired or invalid."
)


def forbidden(text: str = FORBIDDEN_TEXT) -> Response:
    return JSONResponse(text, status_code=403)


@dataclass(frozen=True)
class A2Caller:
    key: ApiKey
    consumer: str | None  # from the Maskinporten token; None with the API key alone
    supplier: str | None
    srr_handlers: Mapping[str, frozenset[str]]  # CoveredBy -> SRR-approved handlers

    @property
    def party(self) -> str:
        """The organisation the call is made as."""
        return self.consumer if self.consumer is not None else self.key.org

    def handles(self, request: A2Request) -> bool:
        """Whether the caller is the request's handler (vendor) rather than its consumer."""
        if request.handled_by is None:
            return False
        if self.consumer is not None:
            # A vendor acts for the consumer named in its token, never for another one.
            return self.consumer == request.covered_by and self.supplier == request.handled_by
        approved = self.srr_handlers.get(request.covered_by, frozenset())
        return self.key.org == request.handled_by and self.key.org in approved

    def acts_for(self, request: A2Request) -> bool:
        """``CoveredBy`` itself, or its approved handler (§2.1: "the key belongs to
        ``CoveredBy``, or to an SRR-approved ``HandledBy``")."""
        return self.party == request.covered_by or self.handles(request)


def _orgnr(claim: Any) -> str | None:
    if not isinstance(claim, dict) or claim.get("authority") != "iso6523-actorid-upis":
        return None
    ident = claim.get("ID")
    orgnr = ident.removeprefix("0192:") if isinstance(ident, str) else ""
    return orgnr if ident != orgnr and is_valid_orgnr(orgnr) else None


def authenticate(
    request: Request,
    *,
    config: Altinn2Config,
    jwks: JwksSource,
    now: int,
    scopes: frozenset[str],
) -> A2Caller | Response:
    """The caller, or the refusal: 403 for a missing or unknown API key, 401 for a token that
    does not verify, 403 for a token without a fitting scope or not matching the key."""
    key = config.api_keys.get(request.headers.get("apikey", ""))
    if key is None:
        return forbidden()
    srr = {org: right.handled_by for org, right in config.srr.items()}
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not scheme:
        return A2Caller(key, None, None, srr)
    if scheme.lower() != "bearer" or not token.strip():
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_jwt(token.strip(), jwks(), now=now, leeway=config.token_leeway_seconds)
    except InvalidToken:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    consumer, supplier = _orgnr(claims.get("consumer")), _orgnr(claims.get("supplier"))
    if claims.get("iss") != config.maskinporten_issuer or consumer is None:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    scope = claims.get("scope")
    granted = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    if not granted & scopes or key.org not in (consumer, supplier):
        return forbidden()
    return A2Caller(key, consumer, supplier, srr)
