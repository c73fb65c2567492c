"""The admin's command line against a real database: every admin action has a command, each
prints JSON with ``--json``, leaves the same audit rows as the web interface (the actor is the
console's user), and ``broker audit verify`` fails on a tampered trail."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from broker import cli
from broker.app import admin_tools
from broker.store import migrate
from broker.store.db import create_engine
from tests.app.admin_support import ADMIN_PASSWORD, audit_events
from tests.app.api_support import expect_problem
from tests.app.relay_support import fetch, grant, relay_stack
from tests.app.security_support import PROD_BROKER, PROD_ENCRYPTION_KEYS, PROD_SECRET_KEY
from tests.flow import Stack
from tests.support import make_settings, sqlite_url, write_signing_key

RETURN_URL = "https://portal.example/ebevis/return"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BROKER_ENV", "test")
    monkeypatch.setenv("BROKER_DATABASE_URL", database_url)
    monkeypatch.setenv("BROKER_ADMIN_PASSWORD_COST", "10")
    return database_url


async def broker(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(cli.main, list(argv), out=out, err=err, inp=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


async def as_json(*argv: str, stdin: str = "") -> Any:
    group, *rest = argv
    code, out, err = await broker(group, "--json", *rest, stdin=stdin)
    assert code == 0, err
    return json.loads(out)


async def test_accounts_and_tokens(env: str, tmp_path: Path) -> None:
    async with relay_stack(env, tmp_path):
        made = await as_json(
            "admin", "create-user", "Ola", "--password-stdin", stdin=ADMIN_PASSWORD
        )
        assert made["username"] == "ola"
        assert made["role"] == "admin"
        code, _, err = await broker(
            "admin", "--json", "create-user", "ola", "--password-stdin", stdin=ADMIN_PASSWORD
        )
        assert code == 1
        assert json.loads(err)["code"] == "user_exists"
        code, _, err = await broker(
            "admin", "create-user", "kari", "--password-stdin", stdin="short"
        )
        assert (code, err) == (1, "broker: The password must have at least 12 characters\n")
        await as_json(
            "admin",
            "create-user",
            "revisor",
            "--role",
            "auditor",
            "--password-stdin",
            stdin="an auditor's own long passphrase",
        )
        users = await as_json("admin", "list-users")
        assert [(u["username"], u["role"], u["status"]) for u in users] == [
            ("ola", "admin", "active"),
            ("revisor", "auditor", "active"),
        ]
        token = await as_json("admin", "create-token", "ola", "--label", "ci", "--days", "30")
        assert token["token"].startswith(f"ebadm_{token['prefix']}_")
        assert (await as_json("admin", "revoke-token", token["prefix"]))["revoked"] is True
        assert (await broker("admin", "revoke-token", token["prefix"]))[0] == 1
        await as_json("admin", "disable-user", "revisor")
        await as_json("admin", "enable-user", "revisor")
        await as_json(
            "admin", "set-password", "revisor", "--password-stdin", stdin="x" * 8 + "yz123"
        )
        code, out, _ = await broker("admin", "list-users")
        assert code == 0
        assert "revisor\tauditor\tactive" in out


async def test_clients_keys_and_webhooks(env: str, tmp_path: Path) -> None:
    # The CLI is another process: a key it revokes stops working in a server only when the
    # server's key cache entry ends (BROKER_AUTH_CACHE_SECONDS), so this server caches none.
    async with relay_stack(env, tmp_path, auth_cache_seconds="0") as rs:
        s = rs.s
        created = await as_json(
            "clients",
            "create",
            "--name",
            "Portal C",
            "--org-number",
            "310300012",
            "--return-url",
            RETURN_URL,
        )
        client_id = created["id"]
        assert created["status"] == "active"
        code, _, err = await broker(
            "clients", "create", "--name", "Bad", "--org-number", "123", "--return-url", "ftp://x"
        )
        assert code == 1
        assert "org_number" in err
        assert "return_urls" in err
        listed = await as_json("clients", "list")
        assert client_id in [c["id"] for c in listed]

        first = await as_json("clients", "issue-key", client_id, "--label", "first")
        headers = {"Authorization": f"Bearer {first['api_key']}"}
        assert (await s.api.get("/v1/consent-requests", headers=headers)).status_code == 200
        second = await as_json("clients", "rotate-key", client_id, "--label", "second")
        expect_problem(
            await s.api.get("/v1/consent-requests", headers=headers), 401, "unauthenticated"
        )
        shown = await as_json("clients", "show", client_id)
        keys = {k["prefix"]: k for k in shown["api_keys"]}
        assert keys[first["prefix"]]["revoked_at"] is not None
        assert keys[second["prefix"]]["revoked_at"] is None
        assert (await as_json("clients", "revoke-key", client_id, second["prefix"]))["revoked"]
        assert (await broker("clients", "revoke-key", client_id, second["prefix"]))[0] == 1

        urls = await as_json(
            "clients", "set-return-urls", client_id, RETURN_URL, "https://portal.example/b"
        )
        assert urls["return_urls"] == [RETURN_URL, "https://portal.example/b"]
        disabled = await as_json("clients", "disable", client_id, "--reason", "compromised")
        assert disabled["status"] == "disabled"
        assert (await as_json("clients", "enable", client_id, "--reason", "fixed"))["status"] == (
            "active"
        )

        hook = await as_json("clients", "set-webhook", client_id, "https://93.184.216.34/hook")
        assert hook["secret"].startswith("whsec_")
        changed = await as_json(
            "clients", "set-webhook", client_id, "https://93.184.216.35/hook", "--disabled"
        )
        assert changed == {"url": "https://93.184.216.35/hook", "enabled": False}
        code, _, err = await broker("clients", "set-webhook", client_id, "https://10.0.0.1/x")
        assert code == 1
        assert "private" in err
        rotated = await as_json("clients", "rotate-webhook-secret", client_id, "--overlap", "60")
        assert rotated["secret"] != hook["secret"]
        assert await as_json("clients", "deliveries", client_id) == []
        code, _, err = await broker(
            "clients", "redeliver", client_id, "0198f0d2-7b1e-7c4b-8d3e-5a1f2b3c4d5e"
        )
        assert code == 1
        code, out, _ = await broker("clients", "show", client_id)
        assert code == 0
        assert "Portal C (310300012)" in out

        actions = [r.action for r in await audit_events(s, client_id=_uuid(client_id))]
        assert actions == [
            "client.created",
            "api_key.issued",
            "api_key.rotated",
            "api_key.revoked",
            "client.return_urls_set",
            "client.disabled",
            "client.enabled",
            "webhook_endpoint.set",
            "webhook_endpoint.set",
            "webhook_secret.rotated",
        ]
        assert {r.actor_id for r in await audit_events(s, actor_type="admin")} == {
            f"cli:{cli_user()}"
        }


def cli_user() -> str:
    from broker.admin.commands import _console_user

    return _console_user()


def _uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)


async def test_revoke_search_show_export_and_verify(env: str, tmp_path: Path) -> None:
    async with relay_stack(env, tmp_path) as rs:
        s = rs.s
        request_id, _ = await grant(s)
        found = await as_json("admin", "search", "--status", "granted")
        assert [r["id"] for r in found["items"]] == [request_id]
        code, _, err = await broker("admin", "revoke", request_id, "--reason", "")
        assert code == 1
        assert "reason" in err
        revoked = await as_json("admin", "revoke", request_id, "--reason", "Compromised client")
        assert revoked["status"] == "revoked"
        assert revoked["grant"]["revoked_by"] == "admin"
        expect_problem(await fetch(s, request_id), 409, "consent_revoked_by_admin")
        code, _, err = await broker("admin", "--json", "revoke", request_id, "--reason", "again")
        assert code == 1
        assert json.loads(err)["code"] == "invalid_state"

        shown = await as_json("admin", "show", request_id)
        assert shown["audit_events"][-1]["actor"] == {"type": "admin", "id": f"cli:{cli_user()}"}
        assert shown["audit_events"][-1]["reason"] == "Compromised client"
        code, out, _ = await broker("admin", "search", "--subject", "310100013")
        assert code == 0
        assert request_id in out
        code, out, _ = await broker("admin", "show", request_id)
        assert "revoked" in out
        exported = await as_json("audit", "export", request_id)
        assert [e["action"] for e in exported["audit_events"]][-1] == "revoked"

        report = await as_json("audit", "verify")
        assert report["intact"] is True
        anchor = f"{report['head']['id']}:{report['head']['hash']}"
        code, out, _ = await broker("audit", "verify", "--anchor", anchor)
        assert code == 0
        assert out.startswith("intact:")
        await _tamper(s, report["head"]["id"] - 1)
        code, out, _ = await broker("audit", "--json", "verify")
        assert code == 1
        assert json.loads(out)["broken_at"] == report["head"]["id"] - 1
        code, out, _ = await broker("audit", "verify")
        assert code == 1
        assert "edited" in out
        with pytest.raises(SystemExit) as refused:  # argparse: a usage error
            await broker("audit", "verify", "--anchor", "not-an-anchor")
        assert refused.value.code == 2


async def _tamper(s: Stack, row_id: int) -> None:
    engine = s.app.state.resources.engine
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        await conn.execute(
            text("UPDATE audit_events SET reason = 'edited' WHERE id = :id"), {"id": row_id}
        )
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


async def test_the_admin_commands_need_no_maskinporten_key(tmp_path: Path) -> None:
    """The admin tools also withdraw an Altinn 2 revocation at Altinn 2 (that needs the broker's
    Maskinporten key); where the key is missing they still work, and the server's reconciler
    tells Altinn 2 instead."""
    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    settings = make_settings(
        env="prod",
        database_url=url,
        secret_key=PROD_SECRET_KEY,
        encryption_keys=PROD_ENCRYPTION_KEYS,
        public_url=PROD_BROKER,
        signing_key_file=str(write_signing_key(tmp_path)),
        maskinporten_key_file=str(tmp_path / "absent.jwk.json"),
    )
    async with admin_tools(settings) as tools:
        assert await tools.service.clients() == []
