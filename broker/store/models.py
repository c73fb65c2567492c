"""The schema for the whole product: clients, consent flows and grants, audit, webhooks.

Persisted enum values are explicit strings with CHECK constraints; they are never renamed.
Secrets are stored only as ciphertext (``*_ciphertext`` with the ``*_key_id`` that encrypted
them) or as hashes (API keys). Timestamps are aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from broker.consent.model import Generation, Language, RevokedBy, State
from broker.consent.notices import EventType
from broker.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ClientStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class AdminRole(StrEnum):
    ADMIN = "admin"  # everything: revocation, clients, keys, webhooks
    AUDITOR = "auditor"  # reads requests and the audit trail; changes nothing


class AdminStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    DELIVERED = "delivered"  # a 2xx was received
    FAILED = "failed"  # retries exhausted or endpoint disabled; may be redelivered by hand


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


def _check_in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Client(Base):
    """A procurement system (tenant). Everything it creates belongs to it alone."""

    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(_check_in("status", ClientStatus), name="status"),
        CheckConstraint(_check_in("altinn_generation", Generation), name="altinn_generation"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_number: Mapped[str] = mapped_column(String(9), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ClientStatus.ACTIVE.value)
    # Set at registration from BROKER_ALTINN_GENERATION; an operator may change it per client.
    altinn_generation: Mapped[str] = mapped_column(String(16), default=Generation.ALTINN3.value)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ClientReturnUrl(Base):
    """A URL the browser may be sent back to; requests must name one of them exactly."""

    __tablename__ = "client_return_urls"
    __table_args__ = (UniqueConstraint("client_id", "url"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A client API key: only a prefix (to find it) and a hash (to check it) are kept."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookSecret(Base):
    """A ``whsec_`` signing secret, encrypted. Several overlap during a rotation."""

    __tablename__ = "webhook_secrets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class ConsentRequest(Base):
    """One consent flow, from the client's POST to its final state."""

    __tablename__ = "consent_requests"
    __table_args__ = (
        CheckConstraint(_check_in("state", State), name="state"),
        CheckConstraint(_check_in("altinn_generation", Generation), name="altinn_generation"),
        CheckConstraint(_check_in("language", Language), name="language"),
        CheckConstraint("requestor_org <> subject_org", name="requestor_not_subject"),
        UniqueConstraint("client_id", "idempotency_key"),
        UniqueConstraint("altinn_consent_id"),
        # An index, not a constraint: SQLite adds it without rebuilding the table.
        Index("uq_consent_requests_altinn_code_sha256", "altinn_code_sha256", unique=True),
        # Cursor pagination over "changed after" for one client.
        Index("ix_consent_requests_client_changed", "client_id", "updated_at", "id"),
        # The reconciler and the expiry job scan open requests by validity.
        Index("ix_consent_requests_state_valid_to", "state", "valid_to"),
        # The admin search: newest first, by requestor.
        Index("ix_consent_requests_created_at", "created_at", "id"),
        Index("ix_consent_requests_requestor_org", "requestor_org"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    requestor_org: Mapped[str] = mapped_column(String(9))
    subject_org: Mapped[str] = mapped_column(String(9), index=True)
    resource: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    external_reference: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(2), default=Language.NB.value)
    return_url: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(String(64))
    altinn_generation: Mapped[str] = mapped_column(String(16))
    # Altinn 3: our own UUIDv7, persisted before the POST so a retry is idempotent.
    altinn_consent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Altinn 2: the AuthorizationCode is the durable secret, so it is kept encrypted.
    altinn_code_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    altinn_code_key_id: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the code (a random GUID, so the hash reveals nothing): one request per code.
    altinn_code_sha256: Mapped[str | None] = mapped_column(String(64))
    # When Altinn 2 was told that the broker gives the consent up (client or admin withdrawal).
    altinn_withdrawn_at: Mapped[datetime | None]
    valid_to: Mapped[datetime]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    redirected_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConsentGrant(Base):
    """The proof that consent was given, and how it ended."""

    __tablename__ = "consent_grants"
    __table_args__ = (
        CheckConstraint(
            f"revoked_by IS NULL OR {_check_in('revoked_by', RevokedBy)}", name="revoked_by"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    consent_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consent_requests.id", ondelete="CASCADE"), unique=True
    )
    consented_at: Mapped[datetime]
    valid_to: Mapped[datetime]
    receipt_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    receipt_key_id: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(16))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only trail. Each row carries the hash of the one before it (tamper evidence)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_check_in("outcome", Outcome), name="outcome"),
        Index("ix_audit_events_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    upstream_correlation_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)


class AdminUser(Base):
    """An operator who may use the admin interface. Created with ``broker admin create-user``;
    the password is kept only as a scrypt hash (``broker/admin/passwords.py``)."""

    __tablename__ = "admin_users"
    __table_args__ = (
        CheckConstraint(_check_in("role", AdminRole), name="role"),
        CheckConstraint(_check_in("status", AdminStatus), name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AdminStatus.ACTIVE.value)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AdminSession(Base):
    """A logged-in browser. The cookie holds a random session secret; only its SHA-256 is kept
    here, so the table alone cannot be used to take over a session. Ending a row logs out."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class AdminToken(Base):
    """An admin API token for automation (``ebadm_<prefix>_<secret>``): prefix and keyed hash
    only, like client API keys. It acts with its user's role."""

    __tablename__ = "admin_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("admin_users.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class OutboxEvent(Base):
    """A webhook event, written in the same transaction as the change it reports.

    ``id`` is the stable ``webhook-id``; workers claim rows by lease. ``last_error`` says why
    the latest attempt failed (or why the event was not sent: the endpoint is disabled).
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        CheckConstraint(_check_in("status", OutboxStatus), name="status"),
        CheckConstraint(_check_in("event_type", EventType), name="event_type"),
        Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
        # A client's deliveries, newest first (ids are UUIDv7, so time-ordered).
        Index("ix_webhook_outbox_client_list", "client_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    consent_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("consent_requests.id", ondelete="SET NULL"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))


class WebhookAttempt(Base):
    """One HTTP attempt to deliver an outbox event."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_outbox.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="SET NULL")
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int] = mapped_column(Integer)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` seen on a POST: the first request wins, repeats get its answer."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class JobCursor(Base):
    """Where a background job left off (e.g. the Altinn consent events continuation token)."""

    __tablename__ = "job_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
