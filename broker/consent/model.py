"""The consent domain's values and records.

The enum string values are stored in the database and sent to clients: never rename or reuse
one. Adding a value needs an Alembic migration, because the tables carry CHECK constraints.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Caller",
    "ConsentRequest",
    "Generation",
    "Grant",
    "HistoryEntry",
    "Language",
    "RevokedBy",
    "State",
]


class State(StrEnum):
    """Where a consent request stands. The transitions live in ``machine.py``."""

    PENDING = "pending"  # accepted from the client; the person has not been sent to Altinn yet
    REDIRECTED = "redirected"  # an Altinn request exists and the person was sent there
    GRANTED = "granted"  # confirmed with Altinn and Maskinporten; data may be fetched
    DENIED = "denied"  # the person refused in Altinn
    EXPIRED = "expired"  # valid_to passed, before or after a grant
    REVOKED = "revoked"  # a grant ended early: end user, Skatteetaten -007 or an admin
    CANCELLED = "cancelled"  # the client withdrew the request or its grant
    FAILED = "failed"  # the flow cannot complete (upstream refused, broken return, …)


class Generation(StrEnum):
    """Which Altinn a consent request goes through. A grant migrated from Altinn 2 to Altinn 3
    (resource ``digdir_5616_2``, addressed by its old AuthorizationCode) is ``altinn3``."""

    ALTINN3 = "altinn3"
    ALTINN2 = "altinn2"


class RevokedBy(StrEnum):
    END_USER = "end_user"
    SKATTEETATEN = "skatteetaten"
    ADMIN = "admin"
    CLIENT = "client"


class Language(StrEnum):
    NB = "nb"
    NN = "nn"
    EN = "en"


@dataclass(frozen=True)
class Caller:
    """The authenticated procurement system (tenant) a call is made for."""

    client_id: uuid.UUID
    name: str
    return_urls: tuple[str, ...]
    # The Altinn generation chosen for this client; None: the deployment's default.
    generation: Generation | None = None


@dataclass(frozen=True)
class Grant:
    consented_at: datetime
    valid_to: datetime
    revoked_at: datetime | None = None
    revoked_by: RevokedBy | None = None


@dataclass(frozen=True)
class ConsentRequest:
    """A consent request as stored: the flow's facts and, once granted, its grant."""

    id: uuid.UUID
    client_id: uuid.UUID
    requestor_org: str
    subject_org: str
    resource: str
    reference: str
    external_reference: str | None
    language: Language
    return_url: str
    state: State
    state_reason: str | None
    generation: Generation
    # Altinn 3: our own UUIDv7. Altinn 2 and migrated grants: the AuthorizationCode, a secret
    # the store keeps encrypted (never logged, shown or put in a URL).
    altinn_consent_id: uuid.UUID | None
    valid_to: datetime
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    grant: Grant | None = None
    redirected_at: datetime | None = None  # the person's latest opening of the consent link
    # When the broker told Altinn 2 it gives the consent up (DELETE of the request or token).
    altinn_withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    action: str
    state: State | None
    reason: str | None
