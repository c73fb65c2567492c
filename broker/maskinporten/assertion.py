"""The RFC 7523 JWT grant the broker sends to Maskinporten (``maskinporten.md`` §1.3-§1.4;
``altinn-consent.md`` §2.3).

Header ``{alg: RS256, kid}``; claims ``aud`` (the issuer, verbatim), ``iss`` (client id),
``iat``, ``exp``, a fresh ``jti``, ``scope``, and when needed ``consumer_org`` and one
``urn:altinn:consent`` entry in ``authorization_details``. Nothing else: Maskinporten answers
"Invalid assertion" to claims outside its list, and Skatteetaten wants no ``resource``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.maskinporten.keys import ClientKey

__all__ = [
    "CONSENT_TYPE",
    "DEFAULT_GRANT_LIFETIME",
    "MAX_GRANT_LIFETIME",
    "ORG_URN",
    "ConsentGrant",
    "GrantRequest",
    "build_assertion",
    "grant_claims",
]

DEFAULT_GRANT_LIFETIME = 60
# Documented limit on exp - iat (§1.4); the 180 s seen in the wild is not relied on.
MAX_GRANT_LIFETIME = 120
CONSENT_TYPE = "urn:altinn:consent"
ORG_URN = "urn:altinn:organization:identifier-no:"
_ORGNR = re.compile(r"[0-9]{9}")


@dataclass(frozen=True)
class ConsentGrant:
    """The one consent a grant asks Maskinporten to look up (one per grant, §2.3)."""

    consent_id: uuid.UUID
    subject_org: str  # who consented: Altinn's ``from``

    def __post_init__(self) -> None:
        _check_orgnr("subject_org", self.subject_org)

    def detail(self) -> dict[str, str]:
        return {
            "type": CONSENT_TYPE,
            "id": str(self.consent_id),
            "from": ORG_URN + self.subject_org,
        }


@dataclass(frozen=True)
class GrantRequest:
    """What a token is for: one scope (Digdir's advice), maybe a consumer and a consent."""

    scope: str
    consumer_org: str | None = None
    consent: ConsentGrant | None = None

    def __post_init__(self) -> None:
        if not self.scope or self.scope != self.scope.strip() or "  " in self.scope:
            raise ValueError("scope must be non-empty, space-separated and unpadded")
        if self.consumer_org is not None:
            _check_orgnr("consumer_org", self.consumer_org)


def grant_claims(
    request: GrantRequest, *, issuer: str, client_id: str, now: datetime, lifetime: int
) -> dict[str, Any]:
    """The grant's claims; ``now`` must be aware, ``lifetime`` within 1..120 s."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if not 0 < lifetime <= MAX_GRANT_LIFETIME:
        raise ValueError(f"the grant lifetime must be 1..{MAX_GRANT_LIFETIME} seconds")
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "aud": issuer,
        "iss": client_id,
        "iat": iat,
        "exp": iat + lifetime,
        # A fresh jti for every grant, retries included: Maskinporten refuses replays (MP-012).
        "jti": str(uuid.uuid4()),
        "scope": request.scope,
    }
    if request.consumer_org is not None:
        claims["consumer_org"] = request.consumer_org
    if request.consent is not None:
        claims["authorization_details"] = [request.consent.detail()]
    return claims


def build_assertion(
    key: ClientKey,
    request: GrantRequest,
    *,
    issuer: str,
    client_id: str,
    now: datetime,
    lifetime: int = DEFAULT_GRANT_LIFETIME,
) -> str:
    """The signed grant, ready for the token endpoint's ``assertion`` field."""
    claims = grant_claims(request, issuer=issuer, client_id=client_id, now=now, lifetime=lifetime)
    return key.sign(json.dumps(claims, separators=(",", ":")).encode())


def _check_orgnr(name: str, value: str) -> None:
    if not _ORGNR.fullmatch(value):
        raise ValueError(f"{name} must be a 9-digit organisation number")
