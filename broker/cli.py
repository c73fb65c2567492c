"""The ``broker`` command: ``serve``, ``migrate``, ``sandbox``, ``demo``, the operators'
``admin``, ``clients`` (including a client's Altinn generation) and ``audit``
(broker/admin/commands.py), and ``consents`` (import migrated Altinn 2 grants, revoke a
consent)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import uvicorn
from starlette.applications import Starlette

from broker.admin import commands as admin_commands
from broker.app import admin_tools, create_app
from broker.clients.service import ClientService
from broker.consent.migrated import MigratedGrants, parse_grants
from broker.consent.model import Caller, Generation
from broker.consent.withdraw import Withdrawals
from broker.errors import BrokerError
from broker.logs import configure_logging
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.portal import PortalConfig
from broker.sandbox.skatteetaten_config import ConsentMode
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
    if command == "consents":
        return asyncio.run(_consents(settings, args, out))
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
        sub.add_argument(
            "--consent-mode",
            choices=[m.value for m in ConsentMode],
            default=ConsentMode.BOTH.value,
            help="which consent the fake Skatteetaten takes: Altinn 2, Altinn 3 or both",
        )
    sandbox.add_argument("--list", action="store_true", help="print the seed data and exit")
    admin_commands.add_parsers(commands)
    _consent_parsers(commands)
    return parser


async def _admin(
    settings: Settings, args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO
) -> int:
    async with admin_tools(settings) as tools:
        return await admin_commands.run(tools, args, out=out, err=err, inp=inp)


def _consent_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # A client's generation is ``broker clients generation`` (broker/admin/commands.py).
    consents = commands.add_parser("consents", help="consent grants")
    consent_commands = consents.add_subparsers(dest="action", required=True)
    imports = consent_commands.add_parser(
        "import-altinn2", help="import Altinn 2 grants migrated to Altinn 3 (see operations.md)"
    )
    imports.add_argument("file", type=Path, help="JSON Lines or a JSON array of grants")
    imports.add_argument("--client", required=True, help="the client the grants belong to")
    imports.add_argument(
        "--no-verify",
        action="store_true",
        help="do not ask Maskinporten for each grant's consent token first",
    )
    imports.add_argument(
        "--skip-invalid", action="store_true", help="import the good grants, report the others"
    )
    imports.add_argument("--dry-run", action="store_true", help="check everything, store nothing")
    revoke = consent_commands.add_parser(
        "revoke", help="end a consent as an administrator (withdrawn at Altinn 2 too)"
    )
    revoke.add_argument("request", help="the consent request id")
    revoke.add_argument("--reason", required=True, help="why (kept in the audit trail)")


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
        consent_mode=ConsentMode(args.consent_mode),
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


@contextlib.asynccontextmanager
async def _operator_app(settings: Settings) -> AsyncIterator[Starlette]:
    """The broker's services for one operator command, without its background jobs."""
    quiet = dataclasses.replace(
        settings, consent=dataclasses.replace(settings.consent, reconcile_interval=0)
    )
    app = create_app(quiet)
    async with app.router.lifespan_context(app):
        yield app


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise SystemExit(f"broker: {what} must be a UUID") from None


async def _consents(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    async with _operator_app(settings) as app:
        if args.action == "revoke":
            return await _revoke(app.state.withdrawals, args, out)
        return await _import(app, args, out)


async def _revoke(withdrawals: Withdrawals, args: argparse.Namespace, out: TextIO) -> int:
    request_id = _uuid(args.request, "the consent request")
    try:
        revoked = await withdrawals.revoke(request_id, reason=args.reason, actor=("admin", "cli"))
    except BrokerError as exc:
        out.write(f"not revoked: {exc}\n")
        return 1
    withdrawn = "withdrawn at Altinn" if revoked.generation is Generation.ALTINN2 else "local"
    out.write(f"{revoked.id} revoked ({revoked.generation.value}; {withdrawn})\n")
    return 0


async def _import(app: Starlette, args: argparse.Namespace, out: TextIO) -> int:
    caller = await app.state.clients.caller(_uuid(args.client, "the client"))
    if caller is None:
        out.write("no such client\n")
        return 1
    migrated: MigratedGrants = app.state.migrated
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        out.write(f"cannot read {args.file}: {type(exc).__name__}\n")
        return 1
    grants, problems = parse_grants(text, now=app.state.now())
    if problems and not args.skip_invalid:
        out.write("".join(f"{p}\n" for p in problems) + "nothing imported\n")
        return 1
    report = await migrated.run(
        caller,
        grants,
        verify=not args.no_verify,
        skip_invalid=args.skip_invalid,
        dry_run=args.dry_run,
    )
    every = [*problems, *report.problems]
    out.write("".join(f"{p}\n" for p in every))
    verb = "would import" if args.dry_run else "imported"
    out.write(f"{verb} {report.imported}; already imported {report.skipped}\n")
    if report.problems and not args.skip_invalid:
        out.write("nothing imported\n")
        return 1
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
