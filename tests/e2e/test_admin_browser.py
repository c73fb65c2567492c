"""The admin interface in a real headless Chromium, against the broker and the sandbox served on
loopback: a person grants consent through the demo portal; an operator logs in, searches, opens
the request and revokes it with a reason; the relay refuses the portal's next fetch, the portal
has received the signed ``consent_request.revoked`` webhook, and the audit trail shows the
operator and the reason. The screenshots are the ones in docs/operations.md."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page
from starlette.applications import Starlette

from broker.admin.auth import Actor
from broker.admin.ports import Role
from broker.app import AdminTools, create_app
from broker.cli import portal_webhook_secret
from broker.clients.service import ClientService
from broker.consent.model import Caller
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.portal import PortalConfig
from broker.store import migrate
from broker.store.db import create_engine
from tests.browser import chromium
from tests.support import free_port, make_settings, serving

pytestmark = pytest.mark.slow

APPROVER = "01819040180"  # Kari Nordmann: may answer for NORDBYGG POLSKA NUF (310100013)
SUPPLIER = "310100013"
PASSWORD = "correct horse battery staple"
REASON = "The supplier reports the request was sent to the wrong contracting authority"
IMAGES = Path(__file__).parents[2] / "docs" / "img"


@dataclass
class Running:
    broker: str
    portal: str
    app: Starlette
    api_key: str


@asynccontextmanager
async def running(database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    sandbox_port, broker_port = free_port(), free_port()
    sandbox_url, broker_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{broker_port}"
    key_file = tmp_path / "key.json"
    sandbox = world.build(world.SandboxConfig(base_url=sandbox_url, broker_key_file=key_file))
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(
        make_settings(
            database_url=database_url,
            public_url=broker_url,
            maskinporten_url=f"{sandbox_url}/maskinporten",
            altinn_url=f"{sandbox_url}/altinn",
            skatteetaten_url=f"{sandbox_url}/skatteetaten",
            maskinporten_key_file=str(key_file),
            webhook_allow_local="true",
        )
    )
    clients: ClientService = app.state.clients
    return_url = f"{sandbox_url}/portal/return"
    client_id = await clients.register(
        name="Demo portal", org_number="974760673", return_urls=(return_url,)
    )
    key = await clients.issue_key(client_id)
    caller = Caller(client_id=client_id, name="Demo portal", return_urls=(return_url,))
    secret = await portal_webhook_secret(app, caller, f"{sandbox_url}/portal/webhooks")
    tools: AdminTools = app.state.admin
    await tools.auth.create_user("ola", PASSWORD, role=Role.ADMIN, actor=Actor.cli("ops"))
    portal = PortalConfig(
        broker_url=broker_url, api_key=key.value, return_url=return_url, webhook_secrets=(secret,)
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(app, broker_port))
        await stack.enter_async_context(
            serving(sandbox_app.create_app(sandbox, portal=portal), sandbox_port)
        )
        yield Running(broker_url, f"{sandbox_url}/portal/", app, key.value)


async def _grant(page: Page, portal: str) -> str:
    """A person consents through the demo portal; the request's id."""
    await page.goto(portal)
    await page.get_by_label("Contracting authority (requestor)").select_option("310200018")
    await page.get_by_label("Supplier (subject)").select_option(SUPPLIER)
    await page.get_by_label("Reference").fill("Anbud 2026/17")
    await page.get_by_role("button", name="Ask for consent").click()
    await page.get_by_label("Log in as").select_option(APPROVER)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(f"{portal}return**")
    assert await page.inner_text("#status") == "granted"
    return page.url.split("consent_request=")[1].split("&")[0]


async def _shot(page: Page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(IMAGES / f"admin-{name}.png"), full_page=True)


async def _log_in_by_keyboard(page: Page, broker: str) -> None:
    await page.goto(f"{broker}/admin/requests")
    assert page.url.startswith(f"{broker}/admin/login")
    await _shot(page, "login")
    await page.keyboard.press("Tab")
    assert await page.locator(":focus").inner_text() == "Skip to main content"
    await page.keyboard.press("Tab")
    assert await page.locator(":focus").get_attribute("id") == "username"
    await page.keyboard.type("ola")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{broker}/admin/requests")


async def test_an_operator_revokes_a_grant_and_everyone_sees_it(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path) as run, chromium() as browser:
        person = await browser.new_page()
        request_id = await _grant(person, run.portal)

        admin = await (
            await browser.new_context(viewport={"width": 1280, "height": 900})
        ).new_page()
        await _log_in_by_keyboard(admin, run.broker)
        assert await admin.inner_text("#operator") == "ola"
        await admin.get_by_label("Subject (supplier)").fill(SUPPLIER)
        await admin.get_by_label("Status").select_option("granted")
        await admin.get_by_role("button", name="Search").click()
        results = admin.locator("#results tbody tr")
        assert await results.count() == 1
        await _shot(admin, "search")
        await admin.get_by_role("link", name=request_id).click()
        assert await admin.inner_text("#status") == "granted"
        lifecycle = await admin.inner_text("#lifecycle")
        assert "created" in lifecycle
        assert "granted" in lifecycle

        await admin.get_by_label("Reason (required)").fill(REASON)
        await _shot(admin, "request")
        await admin.get_by_role("button", name="Revoke…").click()
        assert await admin.inner_text("#confirm-reason") == REASON
        await _shot(admin, "confirm")
        await admin.get_by_role("button", name="Yes, revoke it").click()
        await admin.wait_for_url(f"{run.broker}/admin/requests/{request_id}")
        assert (await admin.inner_text("#status")).startswith("revoked")
        assert "Revoked." in await admin.inner_text("main")
        audit = await admin.inner_text("#audit")
        assert "admin: ola" in audit
        assert REASON in audit
        await _shot(admin, "revoked")

        # The relay refuses at once, with the specific code.
        async with httpx.AsyncClient(base_url=run.broker) as api:
            refused = await api.get(
                f"/v1/consent-requests/{request_id}/oppdrag",
                headers={"Authorization": f"Bearer {run.api_key}"},
            )
        assert refused.status_code == 409
        assert refused.json()["code"] == "consent_revoked_by_admin"
        await person.goto(f"{run.portal}requests/{request_id}")
        assert await person.inner_text("#status") == "revoked"
        await person.goto(f"{run.portal}requests/{request_id}/data")  # the link is gone now
        assert await person.inner_text("#problem-code") == "consent_revoked_by_admin"

        # The portal received the signed consent_request.revoked webhook.
        await person.goto(f"{run.portal}webhooks")
        row = person.locator("#webhooks tbody tr").first
        for _ in range(50):  # delivered at the commit's wake-up, at worst within a poll
            if await row.count() and "consent_request.revoked" in await row.inner_text():
                break
            await person.wait_for_timeout(100)
            await person.reload()
        assert "consent_request.revoked" in await row.inner_text()
        assert "admin" in await row.inner_text()
        assert await row.locator("td.result").inner_text() == "verified"
        await person.set_viewport_size({"width": 1280, "height": 700})
        await _shot(person, "portal-webhook")

        await admin.get_by_role("link", name="Audit trail", exact=True).click()
        await admin.get_by_role("button", name="Verify the whole chain").click()
        assert (await admin.inner_text("#verify-result")).startswith("Intact")
        await _shot(admin, "audit")
