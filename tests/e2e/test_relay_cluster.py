"""Three broker processes on one PostgreSQL never exceed Skatteetaten's 5 calls per org."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import httpx
import pytest

from broker.app import create_app
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.store import migrate
from broker.store.db import create_engine
from tests.e2e.cluster import brokers
from tests.flow import APPROVER, AUTHORITY, SUPPLIER
from tests.support import free_port, make_settings, serving

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "cluster-test-secret-key-0123456789abcdefghij"
RETURN_URL = "https://portal.example/ebevis/return"


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


def _settings(database_url: str, sandbox: str, key_file: Path) -> dict[str, str]:
    return {
        "BROKER_ENV": "test",
        "BROKER_DATABASE_URL": database_url,
        "BROKER_SECRET_KEY": SECRET,
        "BROKER_MASKINPORTEN_URL": f"{sandbox}/maskinporten",
        "BROKER_ALTINN_URL": f"{sandbox}/altinn",
        "BROKER_SKATTEETATEN_URL": f"{sandbox}/skatteetaten",
        "BROKER_MASKINPORTEN_KEY_FILE": str(key_file),
        "BROKER_RECONCILE_INTERVAL": "0",
        "BROKER_SKATTEETATEN_SLOT_TIMEOUT": "60",
        "BROKER_LOG_LEVEL": "WARNING",
    }


async def _granted_request(settings: dict[str, str], sandbox: str) -> tuple[str, str]:
    """Register a client and run one consent flow to a grant; return (request id, API key)."""
    app = create_app(
        make_settings(**{k.removeprefix("BROKER_").lower(): v for k, v in settings.items()})
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://broker.test") as broker,
        httpx.AsyncClient(base_url=sandbox) as sandbox_http,
    ):
        client_id = await app.state.clients.register(
            name="Portal", org_number="974760673", return_urls=(RETURN_URL,)
        )
        key = (await app.state.clients.issue_key(client_id)).value
        headers = {"Authorization": f"Bearer {key}"}
        body = {
            "requestor": AUTHORITY,
            "subject": SUPPLIER,
            "reference": "x",
            "return_url": RETURN_URL,
        }
        created = (await broker.post("/v1/consent-requests", json=body, headers=headers)).json()
        start = await broker.get(created["consent_url"])
        altinn_id = start.headers["location"].rsplit("id=", 1)[1]
        answer = await sandbox_http.post(
            f"/control/consents/{altinn_id}/approve", json={"person": APPROVER}
        )
        back = await broker.get(answer.json()["redirect"])
        assert back.status_code == 303
        assert "status=granted" in back.headers["location"]
    return created["id"], key


async def test_three_processes_keep_the_per_org_peak_at_five(
    database_url: str, tmp_path: Path
) -> None:
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    key_file = tmp_path / "broker-client.jwk.json"
    sandbox = world.build(world.SandboxConfig(base_url=sandbox_url, broker_key_file=key_file))
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    settings = _settings(database_url, sandbox_url, key_file)
    async with serving(sandbox_app.create_app(sandbox), sandbox_port):
        request_id, key = await _granted_request(settings, sandbox_url)
        # Each upstream call lasts a while, so 50 relays overlap heavily.
        sandbox.skatteetaten.set_latency(0.3)
        async with brokers(settings, 3) as urls, httpx.AsyncClient(timeout=120) as client:
            targets = itertools.cycle(urls)
            answers = await asyncio.gather(
                *(
                    client.get(
                        f"{next(targets)}/v1/consent-requests/{request_id}/oppdrag",
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    for _ in range(50)
                )
            )
    assert [a.status_code for a in answers] == [200] * 50
    assert sandbox.skatteetaten.calls_by_consumer() == {AUTHORITY: 50}
    peak = sandbox.skatteetaten.peak_in_flight()[AUTHORITY]
    assert peak == 5, peak  # the cap is reached (the calls do overlap) and never passed
    assert sandbox.skatteetaten.over_limit_calls() == {}
