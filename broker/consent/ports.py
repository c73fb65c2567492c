"""What the consent service needs from outside, declared here by the service (ports).

Adapters implement these Protocols structurally: ``broker/altinn`` for ``AltinnConsents`` and
``broker/maskinporten`` for ``ConsentTokens``. They raise only the exceptions below, translated
from whatever their upstream did, so the service never sees an httpx or JOSE error.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from broker.consent.model import (
    ConsentRequest,
    Generation,
    Grant,
    HistoryEntry,
    RevokedBy,
    State,
)

__all__ = [
    "AltinnConsents",
    "AltinnCreated",
    "AltinnFeed",
    "AltinnFeedEvent",
    "AltinnFeedPage",
    "AltinnRequest",
    "AltinnState",
    "AltinnStatus",
    "AuditLog",
    "AuditRecord",
    "ConsentStore",
    "ConsentToken",
    "ConsentTokens",
    "ConsentUnavailable",
    "DuplicateKey",
    "Gateway",
    "Gateways",
    "IdempotencyStore",
    "JobCursors",
    "Notice",
    "Outbox",
    "PageCursor",
    "StoredResponse",
    "UnitOfWork",
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
    """A consent request to create at Altinn. Altinn 3: ``id`` is ours (UUIDv7), so a retry is
    safe. Altinn 2 chooses the id (the AuthorizationCode): ``id`` is None for a new request and
    the stored code when the request exists already (it is then read back, not created)."""

    id: uuid.UUID | None
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

    async def withdraw(self, consent_id: uuid.UUID, *, requestor_org: str, granted: bool) -> bool:
        """Tell Altinn the broker gives the consent (or the unanswered request) up. True when
        Altinn has nothing more for it; False when this Altinn has no such call (Altinn 3 has
        no consumer-side revocation). Raises UpstreamUnavailable to be tried again later."""
        ...


class AltinnFeedEvent(Protocol):
    """One entry of Altinn's consent events feed: a hint that a request changed, never proof."""

    @property
    def consent_id(self) -> uuid.UUID: ...

    @property
    def event_type(self) -> str: ...  # Altinn's spelling, e.g. "Revoked"

    @property
    def created(self) -> datetime: ...


class AltinnFeedPage(Protocol):
    @property
    def events(self) -> Sequence[AltinnFeedEvent]: ...

    @property
    def next(self) -> str | None:
        """Set when more events may follow at once."""
        ...

    @property
    def cursor(self) -> str | None:
        """The continuation to ask with next time (persist it once the page is handled)."""
        ...


class AltinnFeed(Protocol):
    async def events(
        self,
        continuation: str | None,
        *,
        requestor_org: str,
        created_after: datetime | None = None,
    ) -> AltinnFeedPage:
        """A page of the events of requests to ``requestor_org``, oldest first. Altinn shows
        only events older than its safety lag (300 s)."""
        ...


class ConsentTokens(Protocol):
    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        """A consent token for the request, or ConsentUnavailable when Maskinporten refuses."""
        ...


@dataclass(frozen=True)
class Gateway:
    """One Altinn generation behind the consent ports: its consent API and its consent tokens.
    ``altinn_chooses_id``: Altinn assigns the request's id (Altinn 2's AuthorizationCode)."""

    altinn: AltinnConsents
    tokens: ConsentTokens
    altinn_chooses_id: bool = False


Gateways = Mapping[Generation, Gateway]


# --- Persistence -------------------------------------------------------------------------------


class DuplicateKey(Exception):
    """A unique constraint refused the write (a concurrent duplicate won the race)."""


@dataclass(frozen=True)
class AuditRecord:
    """One audit event. Never holds a token, a secret or a personal number."""

    actor_type: str  # client, person, system, admin
    actor_id: str
    action: str
    object_type: str
    object_id: str
    client_id: uuid.UUID | None
    outcome: str  # success, failure, denied
    reason: str | None = None
    correlation_id: str | None = None
    upstream_correlation_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given to an Idempotency-Key, replayed for repeats."""

    fingerprint: str
    status: int | None  # None while the first request is still being handled
    body: Mapping[str, Any] | None


@dataclass(frozen=True)
class PageCursor:
    updated_at: datetime
    id: uuid.UUID


class ConsentStore(Protocol):
    """Consent requests and grants. Every read for a client is scoped by ``client_id``."""

    async def add(self, request: ConsentRequest) -> None: ...

    async def get(
        self, request_id: uuid.UUID, *, client_id: uuid.UUID | None
    ) -> ConsentRequest | None: ...

    async def by_idempotency_key(self, client_id: uuid.UUID, key: str) -> ConsentRequest | None: ...

    async def set_altinn_id(self, request_id: uuid.UUID, altinn_id: uuid.UUID) -> None: ...

    async def set_altinn_code(self, request_id: uuid.UUID, code: uuid.UUID) -> bool:
        """Keep Altinn 2's AuthorizationCode (encrypted, bound to the row); False when the
        request has an Altinn id already. Raises DuplicateKey when another request holds it."""
        ...

    async def has_altinn_code(self, code: uuid.UUID) -> bool:
        """Whether some request holds this Altinn 2 code already."""
        ...

    async def mark_withdrawn(self, request_id: uuid.UUID, *, at: datetime) -> None: ...

    async def withdrawals_due(self, *, limit: int) -> list[ConsentRequest]:
        """Altinn 2 requests the client or an administrator ended that Altinn has not yet been
        told about (a DELETE that failed and must be tried again)."""
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
    ) -> bool:
        """Compare-and-set the state; False when another writer moved it first."""
        ...

    async def touch_redirect(self, request_id: uuid.UUID, *, at: datetime) -> None:
        """Record that the person opened the consent link again (the return window restarts)."""
        ...

    async def claim_return(self, request_id: uuid.UUID, *, at: datetime) -> bool:
        """Take the single use of a return from Altinn (or of a reconciler check) on an open
        request; False when it is taken or the request is no longer open."""
        ...

    async def release_return(self, request_id: uuid.UUID) -> None: ...

    async def add_grant(self, request: ConsentRequest, grant: Grant, *, receipt: bytes) -> None: ...

    async def end_grant(
        self, request_id: uuid.UUID, *, at: datetime, by: RevokedBy | None, reason: str | None
    ) -> None: ...

    async def page(
        self,
        client_id: uuid.UUID,
        *,
        state: State | None,
        changed_after: datetime | None,
        after: PageCursor | None,
        limit: int,
    ) -> list[ConsentRequest]: ...

    async def open_requests(
        self, *, limit: int, after: PageCursor | None = None
    ) -> list[ConsentRequest]:
        """Requests still pending or redirected (for the reconciler) in (updated_at, id) order,
        starting after ``after``."""
        ...

    async def by_altinn_id(self, altinn_id: uuid.UUID) -> ConsentRequest | None: ...

    async def granted_requestors(self) -> list[str]:
        """The requestor orgs that hold at least one grant (whose Altinn feeds are watched)."""
        ...

    async def due_grants(self, *, now: datetime, limit: int) -> list[ConsentRequest]:
        """Granted requests whose ``valid_to`` has passed, oldest first (for the expiry job)."""
        ...


@dataclass(frozen=True)
class Notice:
    """A webhook event for the request's client, written in the same transaction as the change
    it reports (a transactional outbox). ``id`` is the event's stable ``webhook-id``; the
    payload is thin: ids, status, reason and times, never a token or data."""

    id: uuid.UUID
    client_id: uuid.UUID
    consent_request_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    payload: Mapping[str, Any]


class Outbox(Protocol):
    async def add(self, notice: Notice) -> None:
        """Queue ``notice`` for delivery, in the caller's transaction. A client without a
        webhook endpoint gets nothing queued."""
        ...


class JobCursors(Protocol):
    """Where a background job left off (e.g. a continuation token), per job name."""

    async def get(self, name: str) -> str | None: ...

    async def put(self, name: str, value: str, *, at: datetime) -> None: ...


class AuditLog(Protocol):
    async def append(self, record: AuditRecord, *, at: datetime) -> None: ...

    async def history(self, object_type: str, object_id: str) -> list[HistoryEntry]: ...


class IdempotencyStore(Protocol):
    async def get(self, client_id: uuid.UUID, key: str) -> StoredResponse | None: ...

    async def start(
        self,
        client_id: uuid.UUID,
        key: str,
        *,
        fingerprint: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        """Record that the key is taken; raises DuplicateKey when another request has it."""
        ...

    async def finish(
        self, client_id: uuid.UUID, key: str, *, status: int, body: Mapping[str, Any]
    ) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction. Nothing is written unless ``commit`` is called."""

    @property
    def consents(self) -> ConsentStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def idempotency(self) -> IdempotencyStore: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def cursors(self) -> JobCursors: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...
