"""Verification of access tokens issued by Maskinporten (``maskinporten.md`` §2.2).

Used twice: by the client, on the consent tokens it fetches, and by the broker's API, on the
bearer tokens procurement systems call it with. The checks are the resource-server rules:
a signature by a key in the issuer's JWKS with an allowed RSA algorithm (never ``none`` or
HS*), ``iss`` equal to the issuer, ``exp``/``nbf``/``iat`` within a leeway, and optionally a
required scope and audience. ``client_id`` is deliberately not checked: authorise on
``consumer`` (see ``broker.maskinporten.claims.token_parties``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import RSAKey

from broker.maskinporten.clock import Clock
from broker.maskinporten.errors import TokenInvalid
from broker.maskinporten.jwks import JwksCache

__all__ = ["DEFAULT_LEEWAY", "MAX_TOKEN_LENGTH", "TokenVerifier"]

DEFAULT_LEEWAY = 10.0  # seconds; Maskinporten itself allows ±10 s of skew (§4.2)
MAX_TOKEN_LENGTH = 32_768  # consent tokens are a few kB; anything far larger is not ours
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})


class TokenVerifier:
    """Verifies RS256 (by default) tokens of one Maskinporten issuer and returns their claims.

    Raises ``TokenInvalid(reason)`` for a token that fails a check, and ``UpstreamUnavailable``
    when the issuer's keys cannot be fetched (the token may be fine; we cannot tell).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        jwks_uri: str,
        clock: Clock,
        leeway: float = DEFAULT_LEEWAY,
        algorithms: Collection[str] = ("RS256",),
        jwks_max_age: float = 86400.0,
        jwks_min_refetch_interval: float = 60.0,
    ) -> None:
        if not algorithms or not set(algorithms) <= _RSA_ALGORITHMS:
            raise ValueError(f"algorithms must be among {sorted(_RSA_ALGORITHMS)}")
        self._issuer = issuer
        self._clock = clock
        self._leeway = leeway
        self._algorithms = tuple(algorithms)
        self._jwks = JwksCache(
            http,
            jwks_uri=jwks_uri,
            clock=clock,
            max_age=jwks_max_age,
            min_refetch_interval=jwks_min_refetch_interval,
        )

    @property
    def issuer(self) -> str:
        return self._issuer

    async def verify(
        self, token: str, *, scope: str | None = None, audience: str | None = None
    ) -> dict[str, Any]:
        """The claims of ``token`` once every check passed.

        ``scope``: one scope that must be among the token's space-separated ``scope`` claim.
        ``audience``: a value the ``aud`` claim must be (or, for an array, contain).
        """
        alg, kid = self._header(token)
        key = await self._jwks.key(kid)
        if key is None:
            raise TokenInvalid("unknown kid")
        claims = _decode(token, key, alg)
        if claims.get("iss") != self._issuer:
            raise TokenInvalid("wrong issuer")
        self._check_times(claims)
        if scope is not None and scope not in _scopes(claims):
            raise TokenInvalid("missing scope")
        if audience is not None and not _has_audience(claims, audience):
            raise TokenInvalid("wrong audience")
        return claims

    def _header(self, token: str) -> tuple[str, str]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("malformed token")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError) as exc:
            raise TokenInvalid("malformed token") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms:
            raise TokenInvalid("unsupported alg")
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("missing kid")
        return str(alg), kid

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock().timestamp()
        exp = _number(claims, "exp")
        if exp is None:
            raise TokenInvalid("missing exp")
        if exp + self._leeway <= now:
            raise TokenInvalid("expired")
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf - self._leeway > now:
            raise TokenInvalid("not yet valid")
        iat = _number(claims, "iat")
        if iat is not None and iat - self._leeway > now:
            raise TokenInvalid("issued in the future")


def _decode(token: str, key: RSAKey, alg: str) -> dict[str, Any]:
    try:
        return dict(jwt.decode(token, key, algorithms=[alg]).claims)
    except BadSignatureError as exc:
        raise TokenInvalid("bad signature") from exc
    except (JoseError, ValueError) as exc:
        raise TokenInvalid("malformed token") from exc


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim; None when absent, TokenInvalid when not a number."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid(f"malformed {name}")
    return float(value)


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    scope = claims.get("scope")
    return scope.split(" ") if isinstance(scope, str) else []


def _has_audience(claims: Mapping[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    return aud == audience or (isinstance(aud, list) and audience in aud)
