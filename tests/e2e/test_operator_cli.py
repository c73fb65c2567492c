"""The operator's commands, run as from a shell against a served sandbox: list clients, choose a
client's Altinn generation, import migrated Altinn 2 grants, revoke a consent."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from broker import cli
from broker.app import create_app
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.seed import ALTINN2_API_KEY
from broker.settings import Settings
from broker.store.db import create_engine
from broker.store.models import ConsentRequest
from tests.app.migrated_support import altinn2_grant, export
from tests.support import free_port, serving, sqlite_url

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def _environ(base: str, tmp_path: Path) -> dict[str, str]:
    return {
        "BROKER_ENV": "test",
        "BROKER_DATABASE_URL": sqlite_url(tmp_path),
        "BROKER_MASKINPORTEN_URL": f"{base}/maskinporten",
        "BROKER_ALTINN_URL": f"{base}/altinn",
        "BROKER_ALTINN2_URL": f"{base}/altinn2",
        "BROKER_ALTINN2_API_KEY": ALTINN2_API_KEY,
        "BROKER_ENHETSREGISTERET_URL": f"{base}/brreg/enhetsregisteret/api",
        "BROKER_SKATTEETATEN_URL": f"{base}/skatteetaten",
        "BROKER_MASKINPORTEN_KEY_FILE": str(tmp_path / "key.json"),
    }


async def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(cli.main, list(args), out=out)
    return code, out.getvalue()


async def _register() -> uuid.UUID:
    app = create_app(Settings.from_env())
    async with app.router.lifespan_context(app):
        client_id = await app.state.clients.register(
            name="Portal A", org_number="310300012", return_urls=("https://portal.example/r",)
        )
    assert isinstance(client_id, uuid.UUID)
    return client_id


async def _request_ids(url: str) -> list[uuid.UUID]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(ConsentRequest.id))).scalars())
    finally:
        await engine.dispose()


async def test_the_operator_imports_migrated_grants_and_manages_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = world.build(
        world.SandboxConfig(
            base_url=base, broker_key_file=tmp_path / "key.json", events_safety_lag_seconds=0
        )
    )
    for name, value in _environ(base, tmp_path).items():
        monkeypatch.setenv(name, value)
    async with serving(sandbox_app.create_app(sandbox), port):
        assert (await _run("migrate"))[0] == 0
        client_id = await _register()

        code, listed = await _run("clients", "list")
        assert code == 0
        assert f"{client_id}\t310300012\tactive\taltinn3\tPortal A" in listed
        assert await _run("clients", "generation", str(client_id), "altinn2") == (
            0,
            "1 client(s) now on altinn2\n",
        )
        assert (await _run("clients", "generation", str(uuid.uuid4()), "altinn2"))[0] == 1
        assert await _run("clients", "generation", "all", "altinn3") == (
            0,
            "1 client(s) now on altinn3\n",
        )

        grants = tmp_path / "grants.jsonl"
        grants.write_text(export(altinn2_grant(sandbox), altinn2_grant(sandbox)))
        args = ("consents", "import-altinn2", str(grants), "--client", str(client_id))
        assert await _run(*args, "--dry-run") == (0, "would import 2; already imported 0\n")
        assert await _request_ids(sqlite_url(tmp_path)) == []
        assert await _run(*args) == (0, "imported 2; already imported 0\n")
        assert await _run(*args) == (0, "imported 0; already imported 2\n")

        request_id = (await _request_ids(sqlite_url(tmp_path)))[0]
        revoked = await _run("consents", "revoke", str(request_id), "--reason", "asked to")
        assert revoked == (0, f"{request_id} revoked (altinn3; local)\n")
        again = await _run("consents", "revoke", str(request_id), "--reason", "again")
        assert again == (1, "not revoked: A revoked request cannot be revoked\n")


async def test_a_bad_import_stores_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = world.build(
        world.SandboxConfig(
            base_url=base, broker_key_file=tmp_path / "key.json", events_safety_lag_seconds=0
        )
    )
    for name, value in _environ(base, tmp_path).items():
        monkeypatch.setenv(name, value)
    async with serving(sandbox_app.create_app(sandbox), port):
        assert (await _run("migrate"))[0] == 0
        client_id = str(await _register())
        good, lost = altinn2_grant(sandbox), altinn2_grant(sandbox, migrate=False)
        grants = tmp_path / "grants.jsonl"
        grants.write_text(export(good) + "{broken\n")
        args = ("consents", "import-altinn2", str(grants), "--client", client_id)
        assert await _run(*args) == (1, "line 2: not a JSON object\nnothing imported\n")
        assert await _run(*args, "--skip-invalid") == (
            0,
            "line 2: not a JSON object\nimported 1; already imported 0\n",
        )
        grants.write_text(export(lost))
        assert await _run(*args) == (
            1,
            "line 1: Maskinporten no consent token (AM-00001)\n"
            "imported 0; already imported 0\nnothing imported\n",
        )
        assert await _run(*args, "--no-verify") == (0, "imported 1; already imported 0\n")
        missing = ("consents", "import-altinn2", str(tmp_path / "none.jsonl"), "--client")
        assert await _run(*missing, client_id) == (
            1,
            "cannot read " + str(tmp_path / "none.jsonl") + ": FileNotFoundError\n",
        )
        assert await _run(*args[:3], "--client", str(uuid.uuid4())) == (1, "no such client\n")
        with pytest.raises(SystemExit, match="the client must be a UUID"):
            await _run(*args[:3], "--client", "not-a-uuid")
