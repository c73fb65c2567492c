"""Altinn 2: one request per AuthorizationCode, and when Altinn 2 was told of a withdrawal.

``altinn_code_sha256`` lets a unique index refuse a second request (or a second import) of one
code, which is kept encrypted and so cannot be indexed itself. ``altinn_withdrawn_at`` marks the
requests whose withdrawal (``DELETE`` at Altinn 2) has been done; those still due are retried.
Both are plain ``ADD COLUMN``/``CREATE INDEX``, which SQLite does without rebuilding a table
(a rebuild would drop and re-create ``consent_requests`` under live foreign keys).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consent_requests", sa.Column("altinn_code_sha256", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "consent_requests",
        sa.Column("altinn_withdrawn_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_consent_requests_altinn_code_sha256",
        "consent_requests",
        ["altinn_code_sha256"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_consent_requests_altinn_code_sha256", table_name="consent_requests")
    # SQLite (3.35+) drops a column without a rebuild when nothing else refers to it.
    op.drop_column("consent_requests", "altinn_withdrawn_at")
    op.drop_column("consent_requests", "altinn_code_sha256")
