from __future__ import annotations

import asyncio
import importlib
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from broker import cli
from broker.store import migrate
from broker.store.db import create_engine, schema_revisions


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


async def test_migrate_brings_a_new_database_to_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/var/broker.db"
    monkeypatch.setenv("BROKER_DATABASE_URL", url)
    out = io.StringIO()
    # The CLI runs its own event loop, as it does from a shell.
    code = await asyncio.to_thread(cli.main, ["migrate"], out=out)
    assert code == 0
    assert "database migrated to" in out.getvalue()
    engine = create_engine(url)
    try:
        assert await schema_revisions(engine) == set(migrate.head_revisions())
    finally:
        await engine.dispose()
    # Idempotent: a second run changes nothing and succeeds.
    assert await asyncio.to_thread(cli.main, ["migrate"], out=io.StringIO()) == 0


def test_a_configuration_error_exits_2_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BROKER_ENV", "prod")
    assert cli.main(["migrate"]) == 2
    assert "refusing to start with BROKER_ENV=prod" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([])
    assert "required" in capsys.readouterr().err


def test_the_asgi_module_builds_an_app_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/b.db")
    sys.modules.pop("broker.asgi", None)
    module = importlib.import_module("broker.asgi")
    assert isinstance(module.app, Starlette)
    sys.modules.pop("broker.asgi", None)


def test_sandbox_list_prints_the_seed_and_writes_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert cli.main(["sandbox", "--list", "--sandbox-port", "8123"], out=out) == 0
    text = out.getvalue()
    assert "Sandbox on http://127.0.0.1:8123" in text
    assert "Maskinporten issuer  http://127.0.0.1:8123/maskinporten/" in text
    assert "310100013" in text
    assert "ebevis-broker-sandbox" in text
    assert not (tmp_path / "var").exists()


def test_sandbox_list_names_altinn_2_and_the_consent_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    assert cli.main(["sandbox", "--list", "--consent-mode", "a2-only"], out=out) == 0
    text = out.getvalue()
    assert "Altinn 2             http://127.0.0.1:8001/altinn2/api/consentRequests" in text
    assert "consent mode       a2-only" in text
    assert "Altinn 2 API key of the broker (310300012): sandbox-altinn2-api-key" in text
    assert "Enhetsregisteret     http://127.0.0.1:8001/brreg/" in text
