"""The demo portal as the broker's webhook receiver: the broker delivers, the portal verifies
with the standardwebhooks library and shows each delivery with its result, through a rotation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from broker.sandbox.parties import default_parties
from broker.sandbox.portal import PortalConfig, create_portal
from tests.app.api_support import api_stack, denied, granted
from tests.app.webhook_support import deliver_all, register
from tests.flow import PORTAL_RETURN

PORTAL_WEBHOOKS = "https://93.184.216.34/webhooks"  # where create_portal serves its receiver


@dataclass
class Later(httpx.AsyncBaseTransport):
    """A transport whose target is set once known (the portal needs the secret first)."""

    target: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.target is not None
        return await self.target.handle_async_request(request)


def _portal(secrets: tuple[str, ...]) -> httpx.ASGITransport:
    config = PortalConfig(
        broker_url="http://broker.test",
        api_key="unused",
        return_url=PORTAL_RETURN,
        webhook_secrets=secrets,
    )
    return httpx.ASGITransport(app=create_portal(config, httpx.AsyncClient(), default_parties()))


async def _shown(portal: httpx.AsyncBaseTransport) -> str:
    async with httpx.AsyncClient(transport=portal, base_url="http://portal.test") as web:
        return (await web.get("/webhooks")).text


def _results(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="(\w+)">.*?<td class="result">(.*?)</td>', page)


async def test_the_portal_verifies_and_shows_what_the_broker_delivers(
    database_url: str, tmp_path: Path
) -> None:
    to_portal = Later()
    async with api_stack(database_url, tmp_path, webhooks=to_portal) as s:
        secret = await register(s, url=PORTAL_WEBHOOKS)
        to_portal.target = first = _portal((secret,))
        created = await granted(s)
        assert await deliver_all(s) == 1
        # The portal deploys a rotated secret, still accepting the old one meanwhile.
        rotated = await s.api.post("/v1/webhook-endpoint/secrets", headers=s.tenant.headers)
        to_portal.target = second = _portal((rotated.json()["secret"], secret))
        await denied(s)
        assert await deliver_all(s) == 1
        deliveries = (await s.api.get("/v1/webhook-deliveries", headers=s.tenant.headers)).json()[
            "items"
        ]
        before, after = await _shown(first), await _shown(second)
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    assert _results(before) == _results(after) == [("verified", "verified")]
    assert "consent_request.granted" in before
    assert created["id"] in before
    assert "consent_request.denied" in after
    assert deliveries[1]["id"] in before  # each shows its webhook-id
    assert deliveries[0]["id"] in after
