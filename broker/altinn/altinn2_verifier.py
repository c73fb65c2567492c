"""Verification of Altinn 2 consent tokens against Altinn's published keys (``altinn-consent.md``
§3.1 "Verification"): RS256 with a key from ``/api/metadata/jwk`` chosen by ``kid`` (or
``x5t``, which Altinn sets to the same value), ``iss == "altinn.no"``, and a lifetime that is
current (``nbf``/``exp``, with a little leeway) and short (Altinn issues 30 s tokens; a token
valid for much longer is not one of them). There is no audience. The key set holds a primary
and a secondary key and is cached as ``Cache-Control`` allows (a day), refetched on an unknown
key id at most once a minute (``broker.maskinporten.jwks.JwksCache``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError

from broker.maskinporten.clock import Clock
from broker.maskinporten.errors import TokenInvalid
from broker.maskinporten.jwks import JwksCache

__all__ = ["ISSUER", "Altinn2TokenVerifier"]

ISSUER = "altinn.no"
_MAX_TOKEN = 16_384


class Altinn2TokenVerifier:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        jwks_uri: str,
        clock: Clock,
        issuer: str = ISSUER,
        leeway: float = 10.0,
        max_lifetime: float = 120.0,
    ) -> None:
        self._jwks = JwksCache(http, jwks_uri=jwks_uri, clock=clock)
        self._clock = clock
        self._issuer = issuer
        self._leeway = leeway
        self._max_lifetime = max_lifetime

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims, or ``TokenInvalid(reason)``; ``UpstreamUnavailable`` when the keys
        cannot be fetched."""
        kid = self._kid(token)
        key = await self._jwks.key(kid)
        if key is None:
            raise TokenInvalid("unknown kid")
        try:
            claims = dict(jwt.decode(token, key, algorithms=["RS256"]).claims)
        except BadSignatureError as exc:
            raise TokenInvalid("bad signature") from exc
        except (JoseError, ValueError) as exc:
            raise TokenInvalid("malformed token") from exc
        if claims.get("iss") != self._issuer:
            raise TokenInvalid("wrong issuer")
        self._check_lifetime(claims)
        return claims

    def _kid(self, token: str) -> str:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            raise TokenInvalid("malformed token")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeEncodeError) as exc:
            raise TokenInvalid("malformed token") from exc
        if header.get("alg") != "RS256":
            raise TokenInvalid("unsupported alg")
        kid = header.get("kid") or header.get("x5t")
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("missing kid")
        return kid

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        now = self._clock().timestamp()
        exp, nbf = _number(claims, "exp"), _number(claims, "nbf")
        if exp is None:
            raise TokenInvalid("missing exp")
        if exp + self._leeway <= now:
            raise TokenInvalid("expired")
        start = nbf if nbf is not None else _number(claims, "iat")
        if start is None:
            raise TokenInvalid("missing nbf")
        if start - self._leeway > now:
            raise TokenInvalid("not yet valid")
        if exp - start > self._max_lifetime:
            raise TokenInvalid("lifetime too long")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"malformed {name}")
    return float(value)
