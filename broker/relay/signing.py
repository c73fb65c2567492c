"""Detached JWS over relayed bodies, so a procurement system can prove what it received.

The signature is an RS256 compact JWS with the payload left out (RFC 7515 Appendix F):
``<header>..<signature>``. To verify it, put the base64url of the exact response body between the
two dots and check it against the broker's key, published at ``/.well-known/jwks.json``. The
header names the key (``kid``) and the media type of the body (``cty``).
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

__all__ = ["BodySigner", "InvalidSignature", "verify_detached"]


class InvalidSignature(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class BodySigner:
    def __init__(self, key: RSAKey) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"BodySigner(kid={self.kid!r})"

    @classmethod
    def generate(cls) -> BodySigner:
        """A fresh key: fine for dev and tests, where signatures need only outlive the process."""
        kid = f"broker-{uuid.uuid4().hex[:12]}"
        return cls(RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}))

    @classmethod
    def from_file(cls, path: Path) -> BodySigner:
        document = json.loads(path.read_text())
        key = RSAKey.import_key(document.get("jwk", document))
        if not key.is_private or not key.kid:
            raise ValueError(f"{path} must hold a private RSA JWK with a kid")
        return cls(key)

    @property
    def kid(self) -> str:
        return str(self._key.kid)

    def jwks(self) -> dict[str, Any]:
        keys: list[Any] = [self._key]
        return dict(KeySet(keys).as_dict(private=False))

    def sign(self, body: bytes, *, content_type: str) -> str:
        header = {"alg": "RS256", "kid": self.kid, "cty": content_type}
        compact = jws.serialize_compact(header, body, self._key)
        protected, _, signature = compact.split(".")
        return f"{protected}..{signature}"


def verify_detached(signature: str, body: bytes, jwks: dict[str, Any]) -> dict[str, Any]:
    """Check ``signature`` over ``body`` against ``jwks``; return the protected header."""
    protected, _, rest = signature.partition("..")
    if not protected or not rest or "." in rest:
        raise InvalidSignature("not a detached compact JWS")
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        compact = f"{protected}.{_b64(body)}.{rest}"
        return dict(jws.deserialize_compact(compact, keys, algorithms=["RS256"]).headers())
    except (JoseError, ValueError) as exc:
        raise InvalidSignature("the signature does not verify") from exc
