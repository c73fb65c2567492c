"""Admin: operator accounts, their web sessions and API tokens; indexes for the admin search.

``admin_users`` (scrypt password hashes, role ``admin`` or ``auditor``), ``admin_sessions``
(SHA-256 of each session secret, so logging out and idle/absolute timeouts are enforced on the
server) and ``admin_tokens`` (prefix + keyed hash). ``consent_requests`` gains indexes on
``(created_at, id)`` and ``requestor_org`` for the operators' search.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'auditor')", name=op.f("ck_admin_users_role")),
        sa.CheckConstraint("status IN ('active', 'disabled')", name=op.f("ck_admin_users_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_users")),
        sa.UniqueConstraint("username", name=op.f("uq_admin_users_username")),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["admin_users.id"],
            name=op.f("fk_admin_sessions_user_id_admin_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_user_id"), "admin_sessions", ["user_id"], unique=False)
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["admin_users.id"],
            name=op.f("fk_admin_tokens_user_id_admin_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_admin_tokens_prefix")),
    )
    op.create_index(op.f("ix_admin_tokens_user_id"), "admin_tokens", ["user_id"], unique=False)
    with op.batch_alter_table("consent_requests", schema=None) as batch_op:
        batch_op.create_index("ix_consent_requests_created_at", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_consent_requests_requestor_org", ["requestor_org"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consent_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_requests_requestor_org")
        batch_op.drop_index("ix_consent_requests_created_at")
    op.drop_index(op.f("ix_admin_tokens_user_id"), table_name="admin_tokens")
    op.drop_table("admin_tokens")
    op.drop_index(op.f("ix_admin_sessions_user_id"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
