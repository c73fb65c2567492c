"""The admin's command line: ``broker admin …``, ``broker clients …``, ``broker audit …``
(``broker consents …``, the Altinn 2 import and revocation, is in ``broker/cli.py``).

Each command does what the web interface does, through the same use cases (and so leaves the
same audit rows, with the operating-system user as the actor). ``--json`` prints one JSON
document for scripts; errors go to stderr (as JSON with ``--json``) with exit status 1, and
``broker audit verify`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from broker.admin.auth import Actor, AdminAuth
from broker.admin.clients import ClientAdmin
from broker.admin.ports import ChainReport, Role
from broker.admin.schemas import (
    client_json,
    entry_json,
    iso,
    key_json,
    parse_reason,
    request_admin_json,
)
from broker.admin.service import AdminService
from broker.consent.model import Generation
from broker.errors import BrokerError
from broker.webhooks.schemas import delivery_json

__all__ = ["GROUPS", "Tools", "add_parsers", "run"]

GROUPS = ("admin", "clients", "audit")


class Tools(Protocol):
    @property
    def auth(self) -> AdminAuth: ...

    @property
    def service(self) -> AdminService: ...

    @property
    def clients(self) -> ClientAdmin: ...


@dataclass
class Io:
    out: TextIO
    err: TextIO
    inp: TextIO
    as_json: bool

    def emit(self, data: Any, text: str) -> None:
        self.out.write((json.dumps(data, indent=2, default=str) if self.as_json else text) + "\n")


Command = Callable[[Tools, argparse.Namespace, Io, Actor], Awaitable[int]]


def _console_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. in a container)
        return f"uid{os.getuid()}"


def _password(args: argparse.Namespace, io: Io) -> str:
    if args.password_stdin:
        return io.inp.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise BrokerError("The two passwords differ")
    return first


# --- broker admin ---------------------------------------------------------------------------


async def _create_user(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    user = await tools.auth.create_user(
        args.username, _password(args, io), role=Role(args.role), actor=actor
    )
    io.emit(
        {"id": str(user.id), "username": user.username, "role": user.role.value},
        f"created {user.role.value} {user.username}",
    )
    return 0


async def _set_password(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    await tools.auth.set_password(args.username, _password(args, io), actor=actor)
    io.emit({"username": args.username, "sessions": "ended"}, "password set; sessions ended")
    return 0


async def _set_user(
    tools: Tools, args: argparse.Namespace, io: Io, actor: Actor, *, active: bool
) -> int:
    await tools.auth.set_active(args.username, active, actor=actor)
    state = "active" if active else "disabled"
    io.emit({"username": args.username, "status": state}, f"{args.username} is {state}")
    return 0


async def _list_users(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    users = await tools.auth.users()
    rows = [
        {
            "username": u.username,
            "role": u.role.value,
            "status": "active" if u.active else "disabled",
            "created_at": iso(u.created_at),
        }
        for u in users
    ]
    io.emit(rows, "\n".join(f"{r['username']}\t{r['role']}\t{r['status']}" for r in rows))
    return 0


async def _create_token(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    token = await tools.auth.issue_token(
        args.username, label=args.label, days=args.days, actor=actor
    )
    io.emit(
        {"username": args.username, "prefix": token.split("_")[1], "token": token},
        f"{token}\n(shown once: store it now)",
    )
    return 0


async def _revoke_token(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    await tools.auth.revoke_token(args.prefix, actor=actor)
    io.emit({"prefix": args.prefix, "revoked": True}, f"token {args.prefix} revoked")
    return 0


async def _revoke(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    revoked = await tools.service.revoke(actor, args.id, args.reason, correlation_id=None)
    io.emit(
        request_admin_json(revoked),
        f"revoked {revoked.id} (was for client {revoked.client_id}); the client is told",
    )
    return 0


async def _show(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    found = await tools.service.detail(args.id)
    r = found.request
    body = {**request_admin_json(r), "audit_events": [entry_json(e) for e in found.events]}
    lines = [f"{r.id}\t{r.state.value}\tsubject {r.subject_org}\trequestor {r.requestor_org}"]
    lines += [
        f"  {iso(e.occurred_at)}  {e.action}  {e.actor_type}:{e.actor_id}" for e in found.events
    ]
    io.emit(body, "\n".join(lines))
    return 0


async def _search(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    query = {
        "id": args.id or "",
        "subject": args.subject or "",
        "requestor": args.requestor or "",
        "client": args.client or "",
        "status": args.status or "",
        "created_from": args.created_from or "",
        "created_to": args.created_to or "",
    }
    page = await tools.service.search(query, cursor=args.cursor, limit=args.limit)
    body = {"items": [request_admin_json(r) for r in page.items], "next_cursor": page.next_cursor}
    text = "\n".join(
        f"{r.id}\t{r.state.value}\t{r.subject_org}\t{r.requestor_org}\t{iso(r.created_at)}"
        for r in page.items
    )
    io.emit(body, text + (f"\nmore: --cursor {page.next_cursor}" if page.next_cursor else ""))
    return 0


# --- broker clients -------------------------------------------------------------------------


async def _client_create(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    created = await tools.clients.create(
        actor,
        name=args.name,
        org_number=args.org_number,
        return_urls=list(args.return_url),
        correlation_id=None,
    )
    io.emit(client_json(created), f"registered {created.name}: {created.id}")
    return 0


async def _client_list(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    found = [client_json(c) for c in await tools.service.clients()]
    io.emit(
        found,
        "\n".join(
            f"{c['id']}\t{c['org_number']}\t{c['status']}\t{c['generation']}\t{c['name']}"
            for c in found
        ),
    )
    return 0


async def _client_generation(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    changed = await tools.clients.set_generation(
        actor, args.id, args.generation, correlation_id=None
    )
    io.emit(
        {"changed": changed, "generation": args.generation},
        f"{changed} client(s) now on {args.generation}",
    )
    return 0 if changed else 1


async def _client_show(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    view = await tools.clients.view(args.id)
    body = {
        **client_json(view.client),
        "api_keys": [key_json(k) for k in view.keys],
        "webhook_endpoint": None
        if view.endpoint is None
        else {"url": view.endpoint.url, "enabled": view.endpoint.enabled},
    }
    keys = "\n".join(
        f"  key {k.prefix}  {'revoked' if k.revoked_at else 'active'}  {k.label or ''}"
        for k in view.keys
    )
    io.emit(body, f"{view.client.name} ({view.client.org_number})\n{keys}")
    return 0


async def _issued(io: Io, issued: Any, what: str) -> int:
    io.emit(
        {"client_id": str(issued.client_id), "prefix": issued.prefix, what: issued.value},
        f"{issued.value}\n(shown once: hand it over securely)",
    )
    return 0


async def _issue_key(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    issued = await tools.clients.issue_key(
        actor, args.id, label=args.label, correlation_id=None, revoke_others=False
    )
    return await _issued(io, issued, "api_key")


async def _rotate_key(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    issued = await tools.clients.issue_key(
        actor, args.id, label=args.label, correlation_id=None, revoke_others=True
    )
    return await _issued(io, issued, "api_key")


async def _revoke_key(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    await tools.clients.revoke_key(actor, args.id, args.prefix, correlation_id=None)
    io.emit({"prefix": args.prefix, "revoked": True}, f"key {args.prefix} revoked")
    return 0


async def _set_return_urls(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    updated = await tools.clients.set_return_urls(
        actor, args.id, list(args.url), correlation_id=None
    )
    io.emit(client_json(updated), "return URLs: " + ", ".join(updated.return_urls))
    return 0


async def _set_client(
    tools: Tools, args: argparse.Namespace, io: Io, actor: Actor, *, active: bool
) -> int:
    updated = await tools.clients.set_active(
        actor, args.id, active, reason=parse_reason(args.reason), correlation_id=None
    )
    io.emit(client_json(updated), f"{updated.name} is {'active' if active else 'disabled'}")
    return 0


async def _set_webhook(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    issued = await tools.clients.set_webhook(
        actor, args.id, url=args.url, enabled=not args.disabled, correlation_id=None
    )
    if issued is None:
        io.emit({"url": args.url, "enabled": not args.disabled}, "webhook endpoint changed")
        return 0
    return await _issued(io, issued, "secret")


async def _rotate_secret(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    issued = await tools.clients.rotate_webhook_secret(
        actor, args.id, overlap=args.overlap, correlation_id=None
    )
    return await _issued(io, issued, "secret")


async def _deliveries(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    view = await tools.clients.view(args.id, status=args.status)
    found = [delivery_json(d) for d in view.deliveries]
    io.emit(
        found,
        "\n".join(f"{d['id']}\t{d['type']}\t{d['status']}\t{d['attempts']}" for d in found),
    )
    return 0


async def _redeliver(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    await tools.clients.redeliver(actor, args.id, args.event_id, correlation_id=None)
    io.emit({"id": args.event_id, "queued": True}, f"{args.event_id} queued again")
    return 0


# --- broker audit ---------------------------------------------------------------------------


def _anchor(value: str) -> tuple[int, str]:
    row, _, digest = value.partition(":")
    if not row.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError("an anchor is ROW_ID:SHA256_HEX (from a previous verify)")
    return int(row), digest


def _report_json(report: ChainReport) -> dict[str, Any]:
    return {
        "intact": report.intact,
        "rows": report.rows,
        "head": {"id": report.head_id, "hash": report.head_hash},
        "broken_at": report.broken_at,
        "problem": report.problem,
        "anchors_missing": list(report.anchors_missing),
    }


async def _verify(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    report = await tools.service.verify(anchors=args.anchor or [])
    if report.intact:
        text = (
            f"intact: {report.rows} rows; head {report.head_id}:{report.head_hash}\n"
            "keep the head outside the database and pass it with --anchor next time"
        )
    elif report.broken_at is not None:
        text = f"BROKEN at row {report.broken_at}: {report.problem}"
    else:
        text = "BROKEN: anchors no longer in the chain: " + ", ".join(report.anchors_missing)
    io.emit(_report_json(report), text)
    return 0 if report.intact else 1


async def _export(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    body = await tools.service.export(actor, args.id, correlation_id=None)
    io.out.write(json.dumps(body, indent=2) + "\n")
    return 0


def _user_commands(admin: Any) -> None:
    user = admin.add_parser("create-user", help="create an operator account")
    user.add_argument("username")
    user.add_argument("--role", choices=[r.value for r in Role], default=Role.ADMIN.value)
    password = admin.add_parser("set-password", help="set a password (ends the user's sessions)")
    password.add_argument("username")
    for sub in (user, password):
        sub.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
    for name, what in (("disable-user", _disable_user), ("enable-user", _enable_user)):
        sub = admin.add_parser(name, help=f"{name.split('-')[0]} an operator account")
        sub.add_argument("username")
        sub.set_defaults(handler=what)
    user.set_defaults(handler=_create_user)
    password.set_defaults(handler=_set_password)
    admin.add_parser("list-users", help="list operator accounts").set_defaults(handler=_list_users)
    token = admin.add_parser("create-token", help="an admin API token for automation")
    token.add_argument("username")
    token.add_argument("--label")
    token.add_argument("--days", type=int, help="expires after this many days")
    token.set_defaults(handler=_create_token)
    untoken = admin.add_parser("revoke-token", help="revoke an admin API token by its prefix")
    untoken.add_argument("prefix")
    untoken.set_defaults(handler=_revoke_token)


async def _disable_user(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    return await _set_user(tools, args, io, actor, active=False)


async def _enable_user(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    return await _set_user(tools, args, io, actor, active=True)


async def _disable_client(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    return await _set_client(tools, args, io, actor, active=False)


async def _enable_client(tools: Tools, args: argparse.Namespace, io: Io, actor: Actor) -> int:
    return await _set_client(tools, args, io, actor, active=True)


def _request_commands(admin: Any) -> None:
    revoke = admin.add_parser("revoke", help="revoke a consent request or its grant")
    revoke.add_argument("id")
    revoke.add_argument("--reason", required=True, help="sent to the client and audited")
    revoke.set_defaults(handler=_revoke)
    show = admin.add_parser("show", help="a consent request and its audit events")
    show.add_argument("id")
    show.set_defaults(handler=_show)
    search = admin.add_parser("search", help="search consent requests (newest first)")
    for name in ("id", "subject", "requestor", "client", "status", "created-from", "created-to"):
        search.add_argument(f"--{name}")
    search.add_argument("--cursor")
    search.add_argument("--limit", type=int, default=50)
    search.set_defaults(handler=_search)


def _client_commands(clients: Any) -> None:
    create = clients.add_parser("create", help="register a procurement system")
    create.add_argument("--name", required=True)
    create.add_argument("--org-number", required=True)
    create.add_argument("--return-url", action="append", required=True)
    create.set_defaults(handler=_client_create)
    clients.add_parser(
        "list", help="id, org number, state, Altinn generation and name of every client"
    ).set_defaults(handler=_client_list)
    generation = clients.add_parser(
        "generation", help="the Altinn generation a client's new consent requests go through"
    )
    generation.add_argument("id", help="a client id, or 'all' for every client")
    generation.add_argument("generation", choices=[g.value for g in Generation])
    generation.set_defaults(handler=_client_generation)
    simple: list[tuple[str, Command, str]] = [
        ("show", _client_show, "a client with its keys and webhook endpoint"),
        ("issue-key", _issue_key, "issue another API key (shown once)"),
        ("rotate-key", _rotate_key, "issue a key and revoke all the others at once"),
    ]
    for name, handler, text in simple:
        sub = clients.add_parser(name, help=text)
        sub.add_argument("id")
        if name != "show":
            sub.add_argument("--label")
        sub.set_defaults(handler=handler)
    revoke = clients.add_parser("revoke-key", help="revoke one API key by its prefix")
    revoke.add_argument("id")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=_revoke_key)
    urls = clients.add_parser("set-return-urls", help="replace the return URLs")
    urls.add_argument("id")
    urls.add_argument("url", nargs="+")
    urls.set_defaults(handler=_set_return_urls)
    for name, what in (("disable", _disable_client), ("enable", _enable_client)):
        sub = clients.add_parser(name, help=f"{name} a client (all its keys and tokens)")
        sub.add_argument("id")
        sub.add_argument("--reason", required=True)
        sub.set_defaults(handler=what)
    hook = clients.add_parser("set-webhook", help="register or change the webhook endpoint")
    hook.add_argument("id")
    hook.add_argument("url")
    hook.add_argument("--disabled", action="store_true", help="keep deliveries switched off")
    hook.set_defaults(handler=_set_webhook)
    rotate = clients.add_parser("rotate-webhook-secret", help="a new signing secret (shown once)")
    rotate.add_argument("id")
    rotate.add_argument("--overlap", type=int, help="seconds the old secret keeps signing")
    rotate.set_defaults(handler=_rotate_secret)
    deliveries = clients.add_parser("deliveries", help="the client's webhook deliveries")
    deliveries.add_argument("id")
    deliveries.add_argument("--status", choices=["pending", "delivered", "failed"])
    deliveries.set_defaults(handler=_deliveries)
    again = clients.add_parser("redeliver", help="queue a webhook event again (same id)")
    again.add_argument("id")
    again.add_argument("event_id")
    again.set_defaults(handler=_redeliver)


def _audit_commands(audit: Any) -> None:
    verify = audit.add_parser("verify", help="re-compute the hash chain; exit 1 if broken")
    verify.add_argument(
        "--anchor", action="append", type=_anchor, help="ROW:HASH from an earlier verify"
    )
    verify.set_defaults(handler=_verify)
    export = audit.add_parser("export", help="a consent request's audit trail as JSON")
    export.add_argument("id")
    export.set_defaults(handler=_export)


def add_parsers(commands: Any) -> None:
    """Add ``admin``, ``clients`` and ``audit`` to the ``broker`` command's subparsers."""
    groups = {
        "admin": ("operator accounts, tokens and revocation", (_user_commands, _request_commands)),
        "clients": ("procurement systems, API keys and webhooks", (_client_commands,)),
        "audit": ("verify and export the audit trail", (_audit_commands,)),
    }
    for name, (text, builders) in groups.items():
        group = commands.add_parser(name, help=text)
        group.add_argument("--json", action="store_true", help="machine-readable output")
        sub = group.add_subparsers(dest="action", required=True)
        for build in builders:
            build(sub)


async def run(
    tools: Tools, args: argparse.Namespace, *, out: TextIO, err: TextIO, inp: TextIO
) -> int:
    io = Io(out, err, inp, args.json)
    try:
        code: int = await args.handler(tools, args, io, Actor.cli(_console_user()))
    except BrokerError as exc:
        problem = {"code": exc.instance_code, "detail": exc.detail, **exc.extensions}
        if io.as_json:
            err.write(json.dumps(problem) + "\n")
        else:
            errors = "".join(
                f"\n  {e['field']}: {e['message']}" for e in exc.extensions.get("errors", [])
            )
            err.write(f"broker: {exc.detail}{errors}\n")
        return 1
    return code
