"""The composition root: resources live as long as the lifespan; upstreams are injectable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from broker.app import UPSTREAMS, Resources, create_app
from tests.support import make_settings, running, sqlite_url


def _resources(app: object) -> Resources:
    resources = app.state.resources  # type: ignore[attr-defined]
    assert isinstance(resources, Resources)
    return resources


async def test_each_upstream_gets_a_pooled_client_with_timeouts(tmp_path: Path) -> None:
    settings = make_settings(
        database_url=sqlite_url(tmp_path),
        http_connect_timeout="1.5",
        http_read_timeout="4",
        altinn_url="https://altinn.example/",
    )
    app = create_app(settings)
    async with running(app):
        resources = _resources(app)
        clients = {name: resources.http(name) for name in UPSTREAMS}
        assert len({id(c) for c in clients.values()}) == len(UPSTREAMS)
        altinn = clients["altinn"]
        assert (altinn.base_url.scheme, altinn.base_url.host) == ("https", "altinn.example")
        assert altinn.timeout == httpx.Timeout(connect=1.5, read=4.0, write=4.0, pool=1.5)
        assert altinn.follow_redirects is False
    assert all(client.is_closed for client in clients.values())


async def test_injected_transports_replace_the_network(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    app = create_app(
        make_settings(database_url=sqlite_url(tmp_path)),
        transports={"skatteetaten": httpx.MockTransport(handler)},
    )
    async with running(app):
        response = await _resources(app).http("skatteetaten").get("/v1/ping")
    assert response.json() == {"ok": True}
    assert seen == ["http://127.0.0.1:8001/skatteetaten/v1/ping"]


def test_an_unknown_upstream_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown upstream"):
        create_app(
            make_settings(database_url=sqlite_url(tmp_path)),
            transports={"altin": httpx.MockTransport(lambda r: httpx.Response(200))},
        )


async def test_building_an_app_does_no_io_and_the_lifespan_closes_everything(
    tmp_path: Path,
) -> None:
    app = create_app(make_settings(database_url=sqlite_url(tmp_path / "db")))
    resources = _resources(app)
    assert not (tmp_path / "db" / "broker.db").exists()  # no connection yet
    async with running(app) as client:
        assert (await client.get("/readyz")).status_code == 503  # unmigrated, but reachable
        assert resources.engine.dialect.name == "sqlite"
        assert not resources.closed
    assert resources.closed
    assert all(resources.http(name).is_closed for name in UPSTREAMS)
