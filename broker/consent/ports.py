"""What the consent service needs from outside, declared here by the service (ports).

Adapters implement these Protocols structurally: ``broker/altinn`` for ``AltinnConsents`` and
``broker/maskinporten`` for ``ConsentTokens``. They raise only the exceptions below, translated
from whatever their upstream did, so the service never sees an httpx or JOSE error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "AltinnConsents",
    "AltinnCreated",
    "AltinnRequest",
    "AltinnState",
    "AltinnStatus",
    "ConsentToken",
    "ConsentTokens",
    "ConsentUnavailable",
    "UpstreamRefused",
    "UpstreamUnavailable",
]


class UpstreamUnavailable(Exception):
    """The upstream did not answer usefully (timeout, connection error, 5xx, 429). Retryable."""


class UpstreamRefused(Exception):
    """The upstream refused the request for good (4xx other than 429). ``code`` is its code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class ConsentUnavailable(UpstreamRefused):
    """Maskinporten will not issue a token for this consent: not accepted, revoked, expired,
    wrong parties, or unknown. ``code`` is Altinn's (e.g. ``AM-00011``) when it gave one."""


class AltinnStatus(StrEnum):
    """Altinn 3's consent request status, as Altinn spells it."""

    CREATED = "Created"
    REJECTED = "Rejected"
    ACCEPTED = "Accepted"
    REVOKED = "Revoked"
    DELETED = "Deleted"
    EXPIRED = "Expired"


@dataclass(frozen=True)
class AltinnRequest:
    """A consent request to create at Altinn 3. ``id`` is ours (UUIDv7), so a retry is safe."""

    id: uuid.UUID
    subject_org: str  # Altinn's ``from``: the supplier who consents
    requestor_org: str  # Altinn's ``to``: the contracting authority
    resource: str
    valid_to: datetime
    redirect_url: str
    language: str  # nb, nn or en


@dataclass(frozen=True)
class AltinnCreated:
    id: uuid.UUID
    view_uri: str  # where the person is sent to answer


@dataclass(frozen=True)
class AltinnState:
    """What Altinn says about a request now. ``status`` is EXPIRED when ``valid_to`` has passed
    even if Altinn still stores another status (Altinn only synthesises the Expired event)."""

    id: uuid.UUID
    status: AltinnStatus
    subject_org: str
    requestor_org: str
    resources: tuple[str, ...]
    valid_to: datetime
    consented_at: datetime | None


@dataclass(frozen=True)
class ConsentToken:
    """A Maskinporten consent token and the claims of its ``urn:altinn:consent`` entry."""

    token: str  # the raw JWT: a secret, never logged
    consent_id: uuid.UUID
    subject_org: str  # ``from``
    requestor_org: str  # ``to``
    resources: tuple[str, ...]
    valid_to: datetime
    consented_at: datetime
    expires_at: datetime  # of the access token itself


class AltinnConsents(Protocol):
    async def create(self, request: AltinnRequest) -> AltinnCreated:
        """Create (or, with the same id and parties, re-read) the request at Altinn."""
        ...

    async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
        """Read the request's current state. Raises UpstreamRefused('not_found') if unknown."""
        ...


class ConsentTokens(Protocol):
    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        """A consent token for the request, or ConsentUnavailable when Maskinporten refuses."""
        ...
