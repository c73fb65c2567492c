"""Liveness, readiness against real databases built by the migrations, and metrics."""

from __future__ import annotations

from pathlib import Path

from broker.app import create_app
from broker.store import migrate
from broker.store.db import create_engine
from tests.support import make_settings, problem, running


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


async def test_healthz_is_alive_without_a_database(tmp_path: Path) -> None:
    # A directory where the database file should be: the database is unusable.
    bad = tmp_path / "broker.db"
    bad.mkdir()
    app = create_app(make_settings(database_url=f"sqlite+aiosqlite:///{bad}"))
    async with running(app) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
    assert ready.status_code == 503
    body = problem(ready)
    assert body["code"] == "not_ready"
    assert body["checks"] == {"database": "unreachable", "migrations": "unknown"}


async def test_readyz_is_ready_once_migrated_to_head(database_url: str) -> None:
    await _migrated(database_url)
    app = create_app(make_settings(database_url=database_url))
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "at_head"},
    }
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_not_ready_on_an_unmigrated_database(database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url))
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert problem(response)["checks"] == {"database": "ok", "migrations": "behind_or_ahead"}


async def test_readyz_is_not_ready_when_postgres_does_not_answer() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    app = create_app(make_settings(database_url=url))
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "127.0.0.1:1" not in response.text
    assert problem(response)["checks"]["database"] == "unreachable"  # type: ignore[index]


async def test_metrics_count_requests_by_route_template_and_status(tmp_path: Path) -> None:
    app = create_app(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/b.db"))
    async with running(app) as client:
        await client.get("/healthz")
        await client.get("/healthz")
        await client.get("/no/such/path/12345")
        await client.post("/healthz")
        response = await client.get("/metrics")
    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'broker_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'broker_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'broker_http_requests_total{method="POST",route="/healthz",status="405"} 1.0' in text
    assert (
        'broker_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 2.0'
        in text
    )
    assert "12345" not in text  # paths are never labels


async def test_two_apps_keep_separate_metrics(tmp_path: Path) -> None:
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/b.db")
    first, second = create_app(settings), create_app(settings)
    async with running(first) as one, running(second) as two:
        await one.get("/healthz")
        metrics = (await two.get("/metrics")).text
    assert 'route="/healthz"' not in metrics
