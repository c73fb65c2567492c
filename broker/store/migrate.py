"""Run the Alembic migrations in ``migrations/`` from code (CLI, tests, readiness)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "downgrade", "head_revisions", "upgrade"]

# The migrations live beside the package in the source tree (the image copies both).
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config(str(MIGRATIONS_DIR.parent / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # Percent signs in passwords would otherwise be read as interpolation.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, lambda config: command.downgrade(config, revision))


async def _run(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    def run_on(connection: Connection) -> None:
        config = alembic_config()
        # env.py uses this connection rather than opening its own engine.
        config.attributes["connection"] = connection
        step(config)

    async with engine.begin() as conn:
        await conn.run_sync(run_on)
