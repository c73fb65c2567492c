"""The ``broker`` command: ``serve`` and ``migrate`` (later issues add more)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

import uvicorn

from broker.app import create_app
from broker.logs import configure_logging
from broker.settings import Settings, SettingsError
from broker.store import migrate
from broker.store.db import create_engine

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"broker: configuration error: {exc}\n")
        return 2
    configure_logging(settings.log_level, redact=settings.secret_values())
    command: str = args.command
    if command == "migrate":
        return _migrate(settings, out)
    return _serve(settings, out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="ebevis-broker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the broker on BROKER_HOST:BROKER_PORT")
    commands.add_parser("migrate", help="upgrade the database to the newest schema")
    return parser


def _migrate(settings: Settings, out: TextIO) -> int:
    async def run() -> None:
        engine = create_engine(str(settings.database.url))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    out.write(f"database migrated to {', '.join(sorted(migrate.head_revisions()))}\n")
    return 0


def _serve(settings: Settings, out: TextIO) -> int:  # pragma: no cover - runs a server forever
    out.write(f"ebevis-broker: open http://{settings.host}:{settings.port}/readyz\n")
    out.flush()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0
