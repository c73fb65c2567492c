"""The JWT-bearer grant: form parsing, client authentication and the assertion's own claims
(``shared/reference/maskinporten.md`` §1.2-§1.4, §6.3).

Checks run in the order of the reference's table (§6.3): request, header, client, key,
signature, aud, iat, exp, lifetime, claim allow-list, jti. The jti is recorded only once the
grant is authenticated, so a forged grant cannot burn someone else's jti.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from broker.sandbox import maskinporten_errors as errors
from broker.sandbox.clock import Clock
from broker.sandbox.maskinporten_config import JWT_BEARER, MaskinportenConfig
from broker.sandbox.maskinporten_registry import ClientRegistration, MaskinportenState

__all__ = ["VerifiedGrant", "peek_identity", "read_assertion", "verify_assertion"]

_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class VerifiedGrant:
    """An authenticated grant: the client, the key it signed with and the verified claims."""

    client: ClientRegistration
    kid: str
    claims: dict[str, Any]


def read_assertion(content_type: str | None, body: bytes) -> str:
    """The ``assertion`` of a form-encoded JWT-bearer request (§1.2)."""
    if (content_type or "").split(";")[0].strip().lower() != _FORM:
        raise errors.bad_content_type()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.invalid_parameter() from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise errors.repeated_parameter(name)
        form[name] = value
    if "grant_type" not in form:
        raise errors.missing_grant_type()
    if form["grant_type"] != JWT_BEARER:
        raise errors.unsupported_grant_type()
    if not form.get("assertion"):
        raise errors.invalid_parameter()
    return form["assertion"]


def peek_identity(assertion: str) -> tuple[str, str] | None:
    """``(iss, kid)`` read without verification, to count requests per client key."""
    try:
        header, claims = _split(assertion)
    except errors.TokenError:
        return None
    iss, kid = claims.get("iss"), header.get("kid")
    return (iss, kid) if isinstance(iss, str) and isinstance(kid, str) else None


def verify_assertion(
    assertion: str, *, config: MaskinportenConfig, state: MaskinportenState, clock: Clock
) -> VerifiedGrant:
    header, unverified = _split(assertion)
    kid = _check_header(header, config)
    client = _client(unverified, state)
    key = _client_key(client, kid, state=state, config=config, clock=clock)
    claims = _verify_signature(assertion, key, header["alg"])
    now = clock.timestamp()
    _check_audience(claims, config)
    exp = _check_times(claims, config, now)
    _check_allowed(claims, config)
    _check_jti(claims, client, config=config, state=state, now=now, exp=exp)
    return VerifiedGrant(client, kid, claims)


def _split(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise errors.invalid_parameter()
    return _json_object(parts[0]), _json_object(parts[1])


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise errors.invalid_parameter() from exc
    if not isinstance(value, dict):
        raise errors.invalid_parameter()
    return value


def _check_header(header: dict[str, Any], config: MaskinportenConfig) -> str:
    if header.get("alg") not in config.assertion_algorithms:
        raise errors.unsupported_alg()
    kid, x5c = header.get("kid"), header.get("x5c")
    if (kid is None) == (x5c is None):
        raise errors.kid_or_x5c()
    if x5c is not None:
        raise errors.x5c_for_registered_keys()
    if not isinstance(kid, str) or not kid:
        raise errors.kid_or_x5c()
    return kid


def _client(claims: dict[str, Any], state: MaskinportenState) -> ClientRegistration:
    iss = claims.get("iss")
    client = state.client(iss) if isinstance(iss, str) else None
    if client is None:
        raise errors.client_not_found()
    return client


def _client_key(
    client: ClientRegistration,
    kid: str,
    *,
    state: MaskinportenState,
    config: MaskinportenConfig,
    clock: Clock,
) -> RSAKey:
    key = state.public_key(client.client_id, kid)
    if key is None:
        raise errors.unknown_kid()
    posted = client.keys_posted.get(kid)
    max_age = config.key_max_age_days
    if posted is not None and max_age is not None and clock.now() - posted > timedelta(max_age):
        raise errors.expired_key()
    return key


def _verify_signature(assertion: str, key: RSAKey, alg: str) -> dict[str, Any]:
    try:
        return dict(jwt.decode(assertion, key, algorithms=[alg]).claims)
    except (JoseError, ValueError) as exc:
        raise errors.bad_signature() from exc


def _check_audience(claims: dict[str, Any], config: MaskinportenConfig) -> None:
    # Exactly the issuer, as one string: no token-endpoint URL, no array, no missing slash.
    if claims.get("aud") != config.issuer:
        raise errors.bad_audience()


def _check_times(claims: dict[str, Any], config: MaskinportenConfig, now: int) -> int:
    """Check iat/exp against the clock and the lifetime limit; return exp."""
    iat, exp = _numeric(claims.get("iat")), _numeric(claims.get("exp"))
    if iat > now + config.clock_skew:
        raise errors.issued_in_future()
    if exp < now - config.clock_skew:
        raise errors.grant_expired()
    if exp - iat > config.max_grant_lifetime:
        raise errors.lifetime_too_long()
    return exp


def _numeric(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid_parameter()
    return int(value)


def _check_allowed(claims: dict[str, Any], config: MaskinportenConfig) -> None:
    unknown = sorted(set(claims) - config.allowed_claims)
    if unknown:
        raise errors.unknown_claims(unknown)


def _check_jti(
    claims: dict[str, Any],
    client: ClientRegistration,
    *,
    config: MaskinportenConfig,
    state: MaskinportenState,
    now: int,
    exp: int,
) -> None:
    jti = claims.get("jti")
    if jti is None:
        if config.require_jti:
            raise errors.missing_jti()
        return
    if not isinstance(jti, str) or not jti:
        raise errors.invalid_parameter()
    # Kept past exp by the skew, since a grant stays acceptable that long.
    expires = exp + config.clock_skew
    if not state.remember_jti(client.client_id, jti, expires=expires, now=now):
        raise errors.grant_used_before()
