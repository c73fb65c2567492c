"""What the webhook feature needs from storage (declared here, implemented in broker/store)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from broker.webhooks.schedule import Decision, Outcome

__all__ = [
    "AttemptRow",
    "Attempted",
    "Claimed",
    "Delivery",
    "Endpoint",
    "SecretInfo",
    "WebhookStore",
    "WebhookUnit",
]


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    client_id: uuid.UUID
    url: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SecretInfo:
    """A signing secret's metadata (the secret itself is shown once, when it is made)."""

    id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """An event a worker has leased for one attempt, with what it needs to send it: the
    endpoint's signing secrets as they are at the claim (newest first)."""

    id: uuid.UUID
    client_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    payload: Mapping[str, Any]
    attempts: int  # made before this one
    failing_since: datetime | None  # the endpoint's, when it was claimed
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Attempted:
    event: Claimed
    at: datetime
    outcome: Outcome
    decision: Decision


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    event_type: str
    consent_request_id: uuid.UUID | None
    status: str
    attempts: int
    next_attempt_at: datetime | None  # while pending
    delivered_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AttemptRow:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookStore(Protocol):
    """Endpoints, secrets and the outbox's delivery side. Client reads are scoped by client."""

    async def endpoint(self, client_id: uuid.UUID) -> Endpoint | None: ...

    async def create_endpoint(
        self, client_id: uuid.UUID, *, url: str, enabled: bool, at: datetime
    ) -> Endpoint:
        """Raises the consent ports' DuplicateKey when the client has one already."""
        ...

    async def update_endpoint(
        self, endpoint_id: uuid.UUID, *, url: str, enabled: bool, at: datetime
    ) -> None:
        """Enabling clears the disabled reason and the failure clock."""
        ...

    async def add_secret(self, endpoint_id: uuid.UUID, secret: str, *, at: datetime) -> None: ...

    async def retire_secrets(
        self, endpoint_id: uuid.UUID, *, at: datetime, until: datetime
    ) -> None:
        """Let the secrets in use now sign until ``until`` only; forget expired ones."""
        ...

    async def secrets(self, endpoint_id: uuid.UUID, *, now: datetime) -> list[SecretInfo]: ...

    async def signing_secrets(
        self, endpoint_ids: Sequence[uuid.UUID], *, now: datetime
    ) -> dict[uuid.UUID, list[str]]:
        """The secrets that sign now, decrypted, newest first, per endpoint."""
        ...

    async def claim(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        """Lease up to ``limit`` due events of enabled endpoints that nobody holds (or whose
        lease has run out), with their endpoints' signing secrets. Several processes may claim
        at once; each event goes to one."""
        ...

    async def record(self, attempts: Sequence[Attempted], *, owner: str) -> None:
        """Write the attempts and their decisions (a delivery counts whoever holds the lease;
        a failure only while ``owner`` still holds it)."""
        ...

    async def deliveries(
        self,
        client_id: uuid.UUID,
        *,
        status: str | None,
        consent_request_id: uuid.UUID | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[Delivery]: ...

    async def delivery(self, client_id: uuid.UUID, event_id: uuid.UUID) -> Delivery | None: ...

    async def attempts(self, event_id: uuid.UUID) -> list[AttemptRow]: ...

    async def redeliver(self, client_id: uuid.UUID, event_id: uuid.UUID, *, at: datetime) -> None:
        """Queue the event again (same id), due at once, with the whole schedule ahead."""
        ...


class WebhookUnit(Protocol):
    @property
    def webhooks(self) -> WebhookStore: ...

    async def __aenter__(self) -> WebhookUnit: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...
