"""The client side of the fake Maskinporten: a test client that holds its private key and signs
JWT-bearer grants the way the reference prescribes (``shared/reference/maskinporten.md`` §1.3,
§1.4), so that other tests and fakes can obtain real tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeyParameters, RSAKey

from broker.sandbox.consents import ORG_URN
from broker.sandbox.maskinporten_consent import CONSENT_TYPE
from broker.sandbox.maskinporten_registry import ClientRegistration

__all__ = ["SandboxClient", "consent_details"]


@dataclass(frozen=True)
class SandboxClient:
    """A registered client's private half: build its registration and its grants."""

    client_id: str
    orgnr: str
    private_key: RSAKey
    scopes: frozenset[str]

    @classmethod
    def generate(
        cls,
        client_id: str,
        orgnr: str,
        scopes: Collection[str],
        *,
        kid: str | None = None,
        alg: str | None = "RS256",
    ) -> SandboxClient:
        """A client with a fresh 2048-bit key; ``alg=None`` leaves the key's algorithm open."""
        parameters: KeyParameters = {"kid": kid or f"{client_id}-{uuid.uuid4().hex[:8]}"}
        parameters["use"] = "sig"
        if alg is not None:
            parameters["alg"] = alg
        key = RSAKey.generate_key(2048, parameters=parameters)
        return cls(client_id, orgnr, key, frozenset(scopes))

    @property
    def kid(self) -> str:
        return str(self.private_key.kid)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.private_key.as_dict(private=False))

    def registration(self, **overrides: Any) -> ClientRegistration:
        """The fake's view of this client; ``overrides`` replace registration fields."""
        fields: dict[str, Any] = {
            "client_id": self.client_id,
            "orgnr": self.orgnr,
            "keys": {self.kid: self.public_jwk()},
            "scopes": self.scopes,
        }
        fields.update(overrides)
        return ClientRegistration(**fields)

    def assertion(
        self,
        audience: str,
        *,
        now: int,
        scope: str,
        lifetime: int = 60,
        consumer_org: str | None = None,
        authorization_details: list[dict[str, Any]] | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Collection[str] = (),
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed grant. ``audience`` must be the issuer; ``claims`` add or replace claims,
        ``omit`` drops them, and ``header`` replaces the JOSE header (for negative tests)."""
        body: dict[str, Any] = {
            "aud": audience,
            "iss": self.client_id,
            "scope": scope,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        if consumer_org is not None:
            body["consumer_org"] = consumer_org
        if authorization_details is not None:
            body["authorization_details"] = authorization_details
        body.update(claims or {})
        for name in omit:
            body.pop(name, None)
        jose_header = dict(header) if header is not None else {"alg": "RS256", "kid": self.kid}
        return jwt.encode(jose_header, body, self.private_key, algorithms=[jose_header["alg"]])


def consent_details(consent_id: uuid.UUID | str, from_party: str) -> list[dict[str, Any]]:
    """The grant's ``authorization_details`` for one Altinn 3 consent (altinn-consent.md §2.3).

    ``from_party`` is a party URN; a bare 9-digit org number is turned into one.
    """
    party = ORG_URN + from_party if from_party.isdigit() and len(from_party) == 9 else from_party
    return [{"type": CONSENT_TYPE, "id": str(consent_id), "from": party}]
