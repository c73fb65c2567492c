"""Webhook delivery: why the latest attempt failed, event types checked, a client's list indexed.

``webhook_outbox`` gains ``last_attempt_at`` and ``last_error`` (shown in the client's list of
deliveries), a CHECK on ``event_type`` (persisted values, never renamed), and the index
(client_id, id) for that list, which replaces the index on ``client_id`` alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_TYPES = (
    "event_type IN ('consent_request.granted', 'consent_request.denied', "
    "'consent_request.expired', 'consent_request.revoked', 'consent_request.failed')"
)


def upgrade() -> None:
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=200), nullable=True))
        batch_op.create_check_constraint("event_type", _EVENT_TYPES)
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_client_id"))
        batch_op.create_index("ix_webhook_outbox_client_list", ["client_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_outbox_client_list")
        batch_op.create_index(
            batch_op.f("ix_webhook_outbox_client_id"), ["client_id"], unique=False
        )
        batch_op.drop_constraint(batch_op.f("ck_webhook_outbox_event_type"), type_="check")
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_attempt_at")
