"""The SSRF guard where connections are made (security.md G15), against a real loopback server:
a name that resolves to an internal address when the broker connects (DNS rebinding) is
refused before any byte is sent, and the guarded transport still delivers where it may."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpcore
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.webhooks.client import WebhookClient
from broker.webhooks.signing import new_secret
from broker.webhooks.ssrf import GuardedBackend, UrlPolicy, UrlRefused, guarded_transport
from tests.support import serving

PUBLIC = "93.184.216.34"


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[int, list[Request]]]:
    got: list[Request] = []

    async def hook(request: Request) -> Response:
        await request.body()
        got.append(request)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with serving(app) as url:
        yield int(url.rsplit(":", 1)[1]), got


class Dns:
    """A resolver whose answers the test changes (a rebinding attacker's name server)."""

    def __init__(self, **answers: list[str]) -> None:
        self.answers = {k.replace("_", "."): v for k, v in answers.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("Name or service not known")  # what getaddrinfo raises
        return self.answers[host]


async def _send(policy: UrlPolicy, url: str) -> tuple[int | None, str | None]:
    transport = guarded_transport(policy, max_connections=4)
    async with httpx.AsyncClient(transport=transport) as http:
        client = WebhookClient(http, policy=policy, timeout=5)
        outcome = await client.send(url, "id-1", "{}", [new_secret()], at=datetime.now(UTC))
    return outcome.status_code, outcome.error


async def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send() -> None:
    dns = Dns(hooks_example=[PUBLIC])
    policy = UrlPolicy(resolve=dns)
    async with receiver() as (port, got):
        url = f"https://hooks.example:{port}/hook"
        await policy.check(url)  # registration: the name was public then
        dns.answers["hooks.example"] = ["127.0.0.1"]  # ... and points inside now
        status, error = await _send(policy, url)
    assert (status, error) == (
        None,
        "refused: must not point to a loopback address (127.0.0.1)",
    )
    assert got == []  # nothing reached the internal server
    assert dns.asked == ["hooks.example", "hooks.example"]  # resolved again at send time


async def test_metadata_and_private_addresses_are_refused_at_connect_even_in_dev() -> None:
    for allow_local, address, why in (
        (True, "169.254.169.254", "metadata"),
        (True, "fe80::1", "link-local"),
        (False, "10.0.0.8", "private"),
        (False, "::ffff:127.0.0.1", "loopback"),
    ):
        policy = UrlPolicy(allow_local=allow_local, resolve=Dns(hooks_example=[address]))
        status, error = await _send(policy, "https://hooks.example/hook")
        assert status is None
        assert error is not None
        assert error.startswith("refused:")
        assert why in error


async def test_in_dev_the_guarded_transport_delivers_to_loopback_by_name_and_address() -> None:
    dns = Dns(portal_local=["127.0.0.1"])
    policy = UrlPolicy(allow_local=True, resolve=dns)
    async with receiver() as (port, got):
        assert await _send(policy, f"http://127.0.0.1:{port}/hook") == (204, None)
        assert await _send(policy, f"http://portal.local:{port}/hook") == (204, None)
        # An unreachable port is an ordinary failed attempt, summarised.
        closed = port + 1 if port < 65535 else port - 1
        status, error = await _send(policy, f"http://127.0.0.1:{closed}/hook")
    assert [r.headers["host"] for r in got] == [f"127.0.0.1:{port}", f"portal.local:{port}"]
    assert all(r.headers["webhook-id"] == "id-1" for r in got)
    assert (status, error) == (None, "connect failed")


async def test_unix_sockets_and_unresolvable_names_are_refused() -> None:
    backend = GuardedBackend(UrlPolicy(resolve=Dns()))
    with pytest.raises(httpcore.ConnectError, match="unix sockets"):
        await backend.connect_unix_socket("/var/run/docker.sock")
    with pytest.raises(httpcore.ConnectError, match="does not resolve"):
        await backend.connect_tcp("nowhere.example", 443)
    with pytest.raises(UrlRefused, match="does not resolve"):
        await UrlPolicy(resolve=Dns()).check("https://nowhere.example/hook")
