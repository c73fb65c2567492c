"""What the admin feature needs from storage, declared here and implemented in ``broker/store``.

The admin acts on other features' records (consent requests, clients, webhook endpoints) through
the same unit of work they use, so an admin change, its audit row and its webhook event are one
transaction: all written, or none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from broker.consent.model import ConsentRequest, Generation, RevokedBy, State
from broker.consent.ports import AuditRecord, Outbox
from broker.webhooks.ports import WebhookStore

__all__ = [
    "AdminStore",
    "AdminUnit",
    "AuditEntry",
    "AuditReader",
    "ChainReport",
    "ClientAdminStore",
    "ClientDetails",
    "ConsentAdminStore",
    "KeyInfo",
    "Role",
    "SearchCursor",
    "SearchFilters",
    "SessionRecord",
    "TokenRecord",
    "UserRecord",
]


class Role(StrEnum):
    """Persisted in ``admin_users.role``: never rename a value."""

    ADMIN = "admin"  # may change things: revoke, manage clients, keys and webhooks
    AUDITOR = "auditor"  # may read requests, clients and the audit trail; changes nothing


@dataclass(frozen=True)
class UserRecord:
    id: uuid.UUID
    username: str
    password_hash: str = field(repr=False)
    role: Role
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    user: UserRecord
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    id: uuid.UUID
    user: UserRecord
    prefix: str
    token_hash: str = field(repr=False)
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class SearchFilters:
    """The admin search; every given field must match. ``request_id`` matches our id or the
    Altinn consent id; the dates bound ``created_at`` (from inclusive, to exclusive)."""

    request_id: uuid.UUID | None = None
    subject: str | None = None
    requestor: str | None = None
    client_id: uuid.UUID | None = None
    state: State | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class SearchCursor:
    """The last row of a search page: the next page starts after it."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class AuditEntry:
    """One stored audit row, as exported."""

    id: int
    occurred_at: datetime
    actor_type: str
    actor_id: str
    action: str
    object_type: str
    object_id: str
    client_id: uuid.UUID | None
    outcome: str
    reason: str | None
    correlation_id: str | None
    upstream_correlation_id: str | None
    details: Mapping[str, Any]
    prev_hash: str
    row_hash: str


@dataclass(frozen=True)
class ChainReport:
    """The result of re-computing the hash chain from the first row to the last."""

    rows: int
    head_id: int | None
    head_hash: str | None
    broken_at: int | None = None  # the first row whose link or hash does not check out
    problem: str | None = None
    anchors_missing: tuple[str, ...] = ()  # given anchors (id:hash) the chain no longer holds

    @property
    def intact(self) -> bool:
        return self.broken_at is None and not self.anchors_missing


@dataclass(frozen=True)
class ClientDetails:
    id: uuid.UUID
    name: str
    org_number: str
    active: bool
    return_urls: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    # The Altinn generation the client's new consent requests go through.
    generation: Generation = Generation.ALTINN3


@dataclass(frozen=True)
class KeyInfo:
    id: uuid.UUID
    prefix: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AdminStore(Protocol):
    """Operator accounts, their sessions (by the SHA-256 of the session secret) and tokens."""

    async def create_user(
        self, *, username: str, password_hash: str, role: Role, at: datetime
    ) -> uuid.UUID:
        """Raises DuplicateKey when the username is taken."""
        ...

    async def user_by_name(self, username: str) -> UserRecord | None: ...

    async def users(self) -> list[UserRecord]: ...

    async def set_password(
        self, user_id: uuid.UUID, password_hash: str, *, at: datetime
    ) -> None: ...

    async def set_active(self, user_id: uuid.UUID, active: bool, *, at: datetime) -> None: ...

    async def open_session(
        self, session_hash: str, user_id: uuid.UUID, *, at: datetime
    ) -> None: ...

    async def session(self, session_hash: str) -> SessionRecord | None: ...

    async def touch_session(self, session_hash: str, *, at: datetime) -> None: ...

    async def end_session(self, session_hash: str, *, at: datetime) -> bool: ...

    async def end_sessions(self, user_id: uuid.UUID, *, at: datetime) -> int: ...

    async def add_token(
        self,
        user_id: uuid.UUID,
        *,
        prefix: str,
        token_hash: str,
        label: str | None,
        at: datetime,
        expires_at: datetime | None,
    ) -> uuid.UUID: ...

    async def token_by_prefix(self, prefix: str) -> TokenRecord | None: ...

    async def touch_token(self, token_id: uuid.UUID, *, at: datetime) -> None: ...

    async def revoke_token(self, prefix: str, *, at: datetime) -> bool: ...


class ConsentAdminStore(Protocol):
    async def get(
        self, request_id: uuid.UUID, *, client_id: uuid.UUID | None
    ) -> ConsentRequest | None: ...

    async def search(
        self, filters: SearchFilters, *, before: SearchCursor | None, limit: int
    ) -> list[ConsentRequest]:
        """Newest first by (created_at, id), strictly before ``before``."""
        ...

    async def move(
        self,
        request_id: uuid.UUID,
        *,
        expected: State,
        to: State,
        reason: str | None,
        at: datetime,
        valid_to: datetime | None = None,
    ) -> bool: ...

    async def end_grant(
        self, request_id: uuid.UUID, *, at: datetime, by: RevokedBy | None, reason: str | None
    ) -> None: ...


class AuditReader(Protocol):
    async def append(self, record: AuditRecord, *, at: datetime) -> None: ...

    async def events(self, object_type: str, object_id: str) -> list[AuditEntry]:
        """Every row about one object, oldest first."""
        ...

    async def recent(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        """The newest rows first, with ids below ``before``."""
        ...

    async def count_since(
        self, *, action: str, object_type: str, object_id: str, outcome: str, since: datetime
    ) -> int: ...

    async def verify(self, *, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport: ...


class ClientAdminStore(Protocol):
    async def create(
        self, *, name: str, org_number: str, return_urls: tuple[str, ...], at: datetime
    ) -> uuid.UUID: ...

    async def details(self, client_id: uuid.UUID) -> ClientDetails | None: ...

    async def all_details(self) -> list[ClientDetails]: ...

    async def set_return_urls(
        self, client_id: uuid.UUID, urls: tuple[str, ...], *, at: datetime
    ) -> None: ...

    async def set_active(self, client_id: uuid.UUID, active: bool, *, at: datetime) -> None: ...

    async def set_generation(
        self, client_id: uuid.UUID | None, generation: Generation, *, at: datetime
    ) -> int: ...

    async def add_key(
        self, client_id: uuid.UUID, *, prefix: str, key_hash: str, label: str | None, at: datetime
    ) -> uuid.UUID: ...

    async def keys(self, client_id: uuid.UUID) -> list[KeyInfo]: ...

    async def revoke_key(self, client_id: uuid.UUID, prefix: str, *, at: datetime) -> bool: ...


class AdminUnit(Protocol):
    """One database transaction with every store the admin touches."""

    @property
    def admins(self) -> AdminStore: ...

    @property
    def consents(self) -> ConsentAdminStore: ...

    @property
    def audit(self) -> AuditReader: ...

    @property
    def clients(self) -> ClientAdminStore: ...

    @property
    def webhooks(self) -> WebhookStore: ...

    @property
    def outbox(self) -> Outbox: ...

    async def __aenter__(self) -> AdminUnit: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...
