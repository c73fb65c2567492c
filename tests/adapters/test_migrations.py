"""The schema is built only by migrations, round-trips, and matches the models exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from broker.store import migrate
from broker.store.db import create_engine, schema_revisions
from broker.store.models import Base

EXPECTED_TABLES = {
    "alembic_version",
    "api_keys",
    "admin_sessions",
    "admin_tokens",
    "admin_users",
    "audit_events",
    "client_return_urls",
    "clients",
    "consent_grants",
    "consent_requests",
    "idempotency_keys",
    "job_cursors",
    "webhook_attempts",
    "webhook_endpoints",
    "webhook_outbox",
    "webhook_secrets",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade_round_trips(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == EXPECTED_TABLES
        assert await schema_revisions(engine) == set(migrate.head_revisions())

        await migrate.downgrade(engine, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
        assert await schema_revisions(engine) == set()

        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == EXPECTED_TABLES
    finally:
        await engine.dispose()


async def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_there_is_one_head() -> None:
    assert len(migrate.head_revisions()) == 1


def test_migration_files_are_named_by_date_and_slug() -> None:
    names = [p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names
    for name in names:
        year, month, day, rev, *slug = name.removesuffix(".py").split("_")
        assert (len(year), len(month), len(day)) == (4, 2, 2), name
        assert rev.isdigit(), name
        assert slug, name


async def _insert_request(conn: Any, client_id: uuid.UUID, **overrides: Any) -> None:
    now = datetime.now(UTC)
    row = {
        "id": uuid.uuid4().hex,
        "client_id": client_id.hex,
        "requestor_org": "974760673",
        "subject_org": "991825827",
        "resource": "digdir-oppdragutenlandskevirksomheter-skatteetaten",
        "reference": "case-1",
        "language": "nb",
        "return_url": "https://portal.example/return",
        "state": "pending",
        "altinn_generation": "altinn3",
        "valid_to": now + timedelta(days=30),
        "created_at": now,
        "updated_at": now,
    }
    row.update(overrides)
    columns = ", ".join(row)
    values = ", ".join(f":{k}" for k in row)
    # Column names come from the literal dict above, never from input.
    statement = f"INSERT INTO consent_requests ({columns}) VALUES ({values})"  # noqa: S608
    await conn.execute(text(statement), row)


@pytest.mark.parametrize(
    "overrides",
    [
        {"state": "approved"},  # not a state of ours
        {"language": "de"},
        {"altinn_generation": "altinn4"},
        {"subject_org": "974760673"},  # requestor and subject must differ
    ],
)
async def test_the_schema_refuses_values_outside_the_model(
    database_url: str, overrides: dict[str, str]
) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        client_id = uuid.uuid4()
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO clients (id, name, org_number, status, altinn_generation,"
                    " created_at, updated_at) VALUES (:id, 'Portal', '974760673', 'active',"
                    " 'altinn3', :now, :now)"
                ),
                {"id": client_id.hex, "now": now},
            )
            await _insert_request(conn, client_id)
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await _insert_request(conn, client_id, **overrides)
    finally:
        await engine.dispose()
