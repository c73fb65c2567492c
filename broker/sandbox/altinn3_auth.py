"""Who is calling the enterprise API: a Maskinporten bearer token, verified against Maskinporten.

The authenticated party is the token's ``consumer`` (``{"authority":"iso6523-actorid-upis",
"ID":"0192:<orgnr>"}``); a ``supplier`` claim becomes ``handledBy``
(``../shared/reference/altinn-consent.md`` §2.2). A bad token and a missing scope fail in
ASP.NET's authentication and authorization layers, before the body is read: 401 and 403 with an
empty body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from broker.sandbox.jose import InvalidToken, verify_jwt
from broker.sandbox.orgnr import is_valid_orgnr

__all__ = [
    "CREATE_SCOPES",
    "ORG_SCOPE",
    "READ_SCOPES",
    "Caller",
    "JwksSource",
    "authenticate",
    "empty",
]

JwksSource = Callable[[], Mapping[str, Any]]

ORG_SCOPE = "altinn:consentrequests.org"
CREATE_SCOPES = frozenset({"altinn:consentrequests.write", ORG_SCOPE})
READ_SCOPES = frozenset({"altinn:consentrequests.read", *CREATE_SCOPES})


@dataclass(frozen=True)
class Caller:
    consumer: str | None  # orgnr; None when the token has no usable consumer claim
    supplier: str | None
    scopes: frozenset[str]


def empty(status: int, *, challenge: str | None = None) -> Response:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return Response(status_code=status, headers=headers)


def _orgnr(claim: Any) -> str | None:
    if not isinstance(claim, dict) or claim.get("authority") != "iso6523-actorid-upis":
        return None
    ident = claim.get("ID")
    if not isinstance(ident, str) or not ident.startswith("0192:"):
        return None
    orgnr = ident[len("0192:") :]
    return orgnr if is_valid_orgnr(orgnr) else None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(
    request: Request,
    *,
    jwks: JwksSource,
    issuer: str,
    now: int,
    leeway: int,
    scopes: frozenset[str],
) -> Caller | Response:
    """The caller, or the 401/403 that ASP.NET would answer before the controller runs."""
    token = _bearer(request)
    if token is None:
        return empty(401, challenge="Bearer")
    try:
        claims = verify_jwt(token, jwks(), now=now, leeway=leeway)
    except InvalidToken:
        return empty(401, challenge='Bearer error="invalid_token"')
    if claims.get("iss") != issuer:
        return empty(401, challenge='Bearer error="invalid_token"')
    scope = claims.get("scope")
    granted = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    if not granted & scopes:
        return empty(403)
    return Caller(_orgnr(claims.get("consumer")), _orgnr(claims.get("supplier")), granted)
