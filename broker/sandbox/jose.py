"""RS256 signing keys and JWT verification shared by the fakes (real crypto, via joserfc)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

__all__ = ["InvalidToken", "SigningKeys", "decode_unverified_header", "verify_jwt"]


class InvalidToken(Exception):
    """A JWT failed verification; ``reason`` says which check, for the fake's error body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeys:
    """A primary RSA key that signs and older keys that stay published for verification."""

    def __init__(self, keys: Sequence[RSAKey]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = list(keys)

    @classmethod
    def generate(cls, count: int = 2, *, prefix: str = "sandbox") -> SigningKeys:
        return cls([_new_key(f"{prefix}-{uuid.uuid4().hex[:8]}") for _ in range(count)])

    @property
    def primary_kid(self) -> str:
        return str(self._keys[0].kid)

    def rotate(self) -> None:
        """Promote the next key to primary; the old primary stays published."""
        self._keys.append(self._keys.pop(0))

    def public_jwks(self) -> dict[str, Any]:
        keys: list[Any] = list(self._keys)
        return dict(KeySet(keys).as_dict(private=False))

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """A compact RS256 JWS over ``claims``. The header is ``{alg, kid}`` plus ``headers``:
        Maskinporten's tokens carry no ``typ``, so none is added unless asked for."""
        key = self._keys[0]
        header = {"alg": "RS256", "kid": key.kid, **(headers or {})}
        payload = json.dumps(dict(claims), separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, key)


def _new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def decode_unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read before the key is known (to find the key by ``kid``)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def verify_jwt(token: str, jwks: Mapping[str, Any], *, now: int, leeway: int = 0) -> dict[str, Any]:
    """Check the RS256 signature against ``jwks`` and the time claims; return the claims.

    The caller checks ``iss``/``aud``/scope itself: each fake has its own rules and error codes.
    """
    header = decode_unverified_header(token)
    kids = {k.get("kid") for k in jwks.get("keys", [])}
    if header.get("alg") != "RS256":
        raise InvalidToken("unsupported alg")
    if header.get("kid") not in kids:
        raise InvalidToken("unknown kid")
    try:
        decoded = jwt.decode(
            token, KeySet.import_key_set(cast(Any, dict(jwks))), algorithms=["RS256"]
        )
    except (JoseError, ValueError) as exc:
        raise InvalidToken("bad signature") from exc
    claims = dict(decoded.claims)
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int) or exp + leeway <= now:
        raise InvalidToken("expired")
    if isinstance(nbf, int) and nbf - leeway > now:
        raise InvalidToken("not yet valid")
    return claims
