"""The ``broker`` command: ``serve``, ``migrate``, ``sandbox``, ``demo``, and the operators'
``admin``, ``clients`` and ``audit`` (broker/admin/commands.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import uvicorn
from starlette.applications import Starlette

from broker.admin import commands as admin_commands
from broker.app import admin_tools, create_app
from broker.clients.service import ClientService
from broker.consent.model import Caller
from broker.logs import configure_logging
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.portal import PortalConfig
from broker.settings import Settings, SettingsError
from broker.store import migrate
from broker.store.db import create_engine
from broker.webhooks.service import WebhookService

__all__ = ["main"]

SANDBOX_PORT = 8001
_LOOPBACK = "127.0.0.1"


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    inp: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"broker: configuration error: {exc}\n")
        return 2
    configure_logging(settings.log_level, redact=settings.secret_values())
    command: str = args.command
    if command == "migrate":
        return _migrate(settings, out)
    if command == "sandbox":
        return _sandbox(args, out)
    if command == "demo":
        return _demo(settings, args, out)
    if command in admin_commands.GROUPS:
        return asyncio.run(_admin(settings, args, out, err or sys.stderr, inp or sys.stdin))
    return _serve(settings, out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="ebevis-broker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the broker on BROKER_HOST:BROKER_PORT")
    commands.add_parser("migrate", help="upgrade the database to the newest schema")
    sandbox = commands.add_parser("sandbox", help="serve the fakes of Altinn, Maskinporten, SKE")
    demo = commands.add_parser("demo", help="serve the broker and the sandbox together")
    for sub in (sandbox, demo):
        sub.add_argument("--sandbox-port", type=int, default=SANDBOX_PORT)
        sub.add_argument(
            "--events-lag",
            type=int,
            default=300,
            help="seconds before Altinn's events feed shows an event (300 is faithful)",
        )
    sandbox.add_argument("--list", action="store_true", help="print the seed data and exit")
    admin_commands.add_parsers(commands)
    return parser


async def _admin(
    settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO
) -> int:
    async with admin_tools(settings) as tools:
        return await admin_commands.run(tools, args, out=out, err=err, inp=inp)


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


def _build_sandbox(args: argparse.Namespace, host: str, *, write_key: bool) -> world.Sandbox:
    defaults = world.SandboxConfig()
    config = world.SandboxConfig(
        base_url=f"http://{host}:{args.sandbox_port}",
        events_safety_lag_seconds=args.events_lag,
        broker_key_file=defaults.broker_key_file if write_key else None,
    )
    return world.build(config)


def _sandbox(args: argparse.Namespace, out: TextIO) -> int:
    sandbox = _build_sandbox(args, _LOOPBACK, write_key=not args.list)
    out.write("\n".join(sandbox.describe()) + "\n")
    if args.list:
        return 0
    out.flush()
    _run([(sandbox_app.create_app(sandbox), _LOOPBACK, args.sandbox_port)])  # pragma: no cover
    return 0  # pragma: no cover


def _serve(settings: Settings, out: TextIO) -> int:  # pragma: no cover - runs a server forever
    out.write(f"ebevis-broker: open http://{settings.host}:{settings.port}/readyz\n")
    out.flush()
    _run([(create_app(settings), settings.host, settings.port)])
    return 0


DEMO_PORTAL = "Demo portal (sandbox)"
DEMO_PORTAL_ORG = "974760673"


def demo_settings(settings: Settings) -> Settings:
    """The demo's portal receives webhooks on loopback over http, which only dev allows."""
    hooks = dataclasses.replace(settings.webhooks, allow_local=settings.is_dev)
    return dataclasses.replace(settings, webhooks=hooks)


async def portal_webhook_secret(broker: Starlette, caller: Caller, url: str) -> str:
    """Register the portal's webhook endpoint; its secret (a new one if an earlier demo run
    registered the endpoint: that run's secret was not kept)."""
    service: WebhookService = broker.state.webhooks
    status, body = await service.put_endpoint(caller, {"url": url})
    if status == 201:
        return str(body["secret"])
    return str((await service.rotate_secret(caller, {"overlap_seconds": 0}))["secret"])


def _demo(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:  # pragma: no cover
    sandbox = _build_sandbox(args, _LOOPBACK, write_key=True)
    settings = demo_settings(settings)
    broker = create_app(settings)
    asyncio.run(_demo_main(settings, sandbox, broker, args.sandbox_port, out))
    return 0


async def _demo_main(
    settings: Settings, sandbox: world.Sandbox, broker: Starlette, port: int, out: TextIO
) -> None:  # pragma: no cover - runs servers until stopped
    base = sandbox.config.base_url
    clients: ClientService = broker.state.clients
    # The portal is an ordinary client of the broker: registered, with an API key of its own.
    client_id = await clients.ensure(
        name=DEMO_PORTAL, org_number=DEMO_PORTAL_ORG, return_urls=(f"{base}/portal/return",)
    )
    key = await clients.issue_key(client_id, label="make demo")
    return_url = f"{base}/portal/return"
    caller = Caller(client_id=client_id, name=DEMO_PORTAL, return_urls=(return_url,))
    secret = await portal_webhook_secret(broker, caller, f"{base}/portal/webhooks")
    await broker.state.resources.engine.dispose()
    portal = PortalConfig(
        broker_url=settings.public_url,
        api_key=key.value,
        return_url=return_url,
        webhook_secrets=(secret,),
    )
    out.write("\n".join(sandbox.describe()) + "\n\n")
    out.write(f"ebevis-broker demo: open {base}/portal/ (broker on {settings.public_url})\n")
    out.flush()
    await _serve_all(
        [
            (broker, settings.host, settings.port),
            # The sandbox (with its unauthenticated control API) never leaves loopback.
            (sandbox_app.create_app(sandbox, portal=portal), _LOOPBACK, port),
        ]
    )


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to ``_run``, which stops all servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _run(apps: list[tuple[Starlette, str, int]]) -> None:  # pragma: no cover
    asyncio.run(_serve_all(apps))


async def _serve_all(apps: list[tuple[Starlette, str, int]]) -> None:  # pragma: no cover
    servers = [
        _QuietServer(
            uvicorn.Config(
                app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False
            )
        )
        for app, host, port in apps
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await asyncio.gather(*(server.serve() for server in servers))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
