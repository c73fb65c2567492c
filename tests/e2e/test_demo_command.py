"""``broker demo`` (what ``make demo`` runs) serves the broker and the sandbox together."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

pytestmark = pytest.mark.slow


async def _wait_for(client: httpx.AsyncClient, url: str) -> httpx.Response:
    for _ in range(200):
        try:
            return await client.get(url)
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_demo_serves_broker_and_sandbox_wired_together(tmp_path: Path) -> None:
    broker_port, sandbox_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {
        # No BROKER_* from the outer shell, and no coverage hooks: the child must not write the
        # parent's coverage data.
        **{k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "COV_CORE_"))},
        "BROKER_PORT": str(broker_port),
        "BROKER_PUBLIC_URL": f"http://127.0.0.1:{broker_port}",
        "BROKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/broker.db",
        "BROKER_MASKINPORTEN_URL": f"{sandbox}/maskinporten",
        "BROKER_ALTINN_URL": f"{sandbox}/altinn",
        "BROKER_SKATTEETATEN_URL": f"{sandbox}/skatteetaten",
    }
    broker = [sys.executable, "-m", "broker.cli"]
    migrate = await asyncio.create_subprocess_exec(*broker, "migrate", env=env, cwd=tmp_path)
    assert await migrate.wait() == 0
    demo = await asyncio.create_subprocess_exec(
        *broker,
        "demo",
        "--sandbox-port",
        str(sandbox_port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as client:
            ready = await _wait_for(client, f"http://127.0.0.1:{broker_port}/readyz")
            issuer = await _wait_for(
                client, f"{sandbox}/maskinporten/.well-known/oauth-authorization-server"
            )
            portal = await _wait_for(client, f"{sandbox}/portal/")
            webhooks = await _wait_for(client, f"{sandbox}/portal/webhooks")
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = await demo.communicate()
    assert ready.status_code == 200
    assert issuer.json()["issuer"] == f"{sandbox}/maskinporten/"
    key = json.loads((tmp_path / "var/sandbox/broker-client.jwk.json").read_text())
    assert key["client_id"] == "ebevis-broker-sandbox"
    assert oct((tmp_path / "var/sandbox/broker-client.jwk.json").stat().st_mode)[-3:] == "600"
    assert portal.status_code == 200
    assert "Ask for consent" in portal.text
    # The portal is the broker's webhook receiver: the demo registered its endpoint (loopback
    # and http, which only the demo's dev settings accept) and gave it the signing secret.
    assert 'id="no-webhooks"' in webhooks.text
    with sqlite3.connect(tmp_path / "broker.db") as db:
        endpoints = db.execute("SELECT url, enabled FROM webhook_endpoints").fetchall()
        secrets = db.execute("SELECT count(*) FROM webhook_secrets").fetchone()
    assert endpoints == [(f"{sandbox}/portal/webhooks", 1)]
    assert secrets == (1,)
    text = output.decode()
    assert f"open {sandbox}/portal/" in text
    assert demo.returncode == 0
