"""Altinn 2 consent tokens: Altinn's signing keys and the JWT a token fetch returns.

Format (``altinn-consent.md`` §3.1): header ``{"alg":"RS256","kid":<thumbprint>,"x5t":<same>,
"typ":"JWT"}``; claims ``Services`` (a string for one service, an array when there are several
entries, metadata as ``"<code>_<edition>_<key>=<value>"``), ``AuthorizationCode``,
``OfferedBy``, ``CoveredBy``, ``DelegatedDate``, ``ValidToDate``, ``nbf``, ``exp`` (= nbf + 30),
``iat``, ``iss: "altinn.no"``, and ``HandledBy`` only when the handler fetched the token. The key
set holds a primary and a secondary key (``/api/metadata/jwk``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from joserfc.jwk import RSAKey

from broker.sandbox.altinn2_config import ISSUER
from broker.sandbox.altinn2_state import A2Request
from broker.sandbox.jose import SigningKeys

__all__ = ["Altinn2Keys", "services_claim", "token_claims"]


def _thumbprint_key() -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    key.ensure_kid()  # kid = the RFC 7638 thumbprint, which Altinn also sends as x5t
    return key


class Altinn2Keys:
    """Altinn's two token-signing keys; the first signs. ``rotate`` lets the secondary sign."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    @classmethod
    def generate(cls) -> Altinn2Keys:
        return cls(SigningKeys([_thumbprint_key(), _thumbprint_key()]))

    def public_jwks(self) -> dict[str, Any]:
        document = self.keys.public_jwks()
        for entry in document["keys"]:
            entry["x5t"] = entry["kid"]
        return document

    def sign(self, claims: Mapping[str, Any]) -> str:
        kid = self.keys.primary_kid
        return self.keys.sign(claims, headers={"x5t": kid, "typ": "JWT"})

    def rotate(self) -> None:
        self.keys.rotate()


def services_claim(request: A2Request) -> str | list[str]:
    entries: list[str] = []
    for resource in request.resources:
        key = resource.service.key
        entries.append(key)
        entries.extend(f"{key}_{name}={value}" for name, value in resource.metadata.items())
    return entries[0] if len(entries) == 1 else entries


def token_claims(
    request: A2Request, *, now: datetime, lifetime: int, handled_by: str | None
) -> dict[str, Any]:
    issued = int(now.timestamp())
    delegated = request.delegated or request.created
    claims: dict[str, Any] = {
        "Services": services_claim(request),
        "AuthorizationCode": str(request.code),
        "OfferedBy": request.offered_by,
        "CoveredBy": request.covered_by,
        "DelegatedDate": int(delegated.timestamp()),
        "ValidToDate": int(request.valid_to.timestamp()),
        "nbf": issued,
        "exp": issued + lifetime,
        "iat": issued,
        "iss": ISSUER,
    }
    if handled_by is not None:
        claims["HandledBy"] = handled_by
    return claims
