"""The whole flow in a real headless Chromium, as a person clicks it in ``make demo``:
demo portal → broker → the sandbox's Altinn consent page → log in → answer → back on the portal,
for a deployment on Altinn 3 and one on Altinn 2 (the same client API and portal for both);
then the data is fetched (the relay) and the grant withdrawn through the client API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from broker.app import create_app
from broker.cli import portal_webhook_secret
from broker.clients.service import ClientService
from broker.consent.model import Caller
from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.portal import PortalConfig
from broker.sandbox.seed import ALTINN2_API_KEY
from broker.store import migrate
from broker.store.db import create_engine
from tests.browser import chromium
from tests.support import free_port, make_settings, serving, sqlite_url

pytestmark = pytest.mark.slow

APPROVER = "01819040180"  # Kari Nordmann: may answer for NORDBYGG POLSKA NUF (310100013)
OUTSIDER = "11889940079"


PAGES = {
    "altinn3": "/altinn/accessmanagement/ui/consent/request",
    "altinn2": "/altinn2/ui/AccessConsent/request",
}


@dataclass
class Demo:
    portal: str
    broker: str
    api_key: str
    sandbox: world.Sandbox


@asynccontextmanager
async def demo(
    database_url: str, tmp_path: Path, generation: str = "altinn3"
) -> AsyncIterator[Demo]:
    sandbox_port, broker_port = free_port(), free_port()
    sandbox_url, broker_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{broker_port}"
    key_file = tmp_path / "key.json"
    sandbox = world.build(world.SandboxConfig(base_url=sandbox_url, broker_key_file=key_file))
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    broker = create_app(
        make_settings(
            database_url=database_url,
            public_url=broker_url,
            maskinporten_url=f"{sandbox_url}/maskinporten",
            altinn_url=f"{sandbox_url}/altinn",
            altinn2_url=f"{sandbox_url}/altinn2",
            altinn2_api_key=ALTINN2_API_KEY,
            enhetsregisteret_url=f"{sandbox_url}/brreg/enhetsregisteret/api",
            skatteetaten_url=f"{sandbox_url}/skatteetaten",
            maskinporten_key_file=str(key_file),
            webhook_allow_local="true",
            altinn_generation=generation,
        )
    )
    clients: ClientService = broker.state.clients
    client_id = await clients.register(
        name="Demo portal", org_number="974760673", return_urls=(f"{sandbox_url}/portal/return",)
    )
    key = await clients.issue_key(client_id)
    return_url = f"{sandbox_url}/portal/return"
    caller = Caller(client_id=client_id, name="Demo portal", return_urls=(return_url,))
    secret = await portal_webhook_secret(broker, caller, f"{sandbox_url}/portal/webhooks")
    portal = PortalConfig(
        broker_url=broker_url,
        api_key=key.value,
        return_url=return_url,
        webhook_secrets=(secret,),
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(broker, broker_port))
        await stack.enter_async_context(
            serving(sandbox_app.create_app(sandbox, portal=portal), sandbox_port)
        )
        yield Demo(f"{sandbox_url}/portal/", broker_url, key.value, sandbox)


async def _ask_for_consent(page: Page, portal: str) -> None:
    await page.goto(portal)
    await page.get_by_label("Contracting authority (requestor)").select_option("310200018")
    await page.get_by_label("Supplier (subject)").select_option("310100013")
    await page.get_by_label("Reference").fill("Anbud 2026/17")
    await page.get_by_role("button", name="Ask for consent").click()
    await page.get_by_label("Log in as").wait_for()


async def _log_in(page: Page, fnr: str) -> None:
    await page.get_by_label("Log in as").select_option(fnr)
    await page.get_by_role("button", name="Log in", exact=True).click()


async def _withdraw(d: Demo, request_id: str) -> None:
    """The portal's server withdraws the grant through the client API (DELETE)."""
    async with httpx.AsyncClient(base_url=d.broker) as api:
        response = await api.delete(
            f"/v1/consent-requests/{request_id}", headers={"Authorization": f"Bearer {d.api_key}"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["grant"]["revoked_by"] == "client"


ANSWERS = pytest.mark.parametrize(
    ("answer", "expected"), [("Approve", "granted"), ("Reject", "denied")]
)


@ANSWERS
async def test_a_person_answers_and_the_portal_shows_the_result(
    database_url: str, tmp_path: Path, answer: str, expected: str
) -> None:
    await _answer_in_the_browser(database_url, tmp_path, answer, expected, "altinn3")


@ANSWERS
async def test_a_person_answers_in_altinn_2_and_the_portal_shows_the_result(
    tmp_path: Path, answer: str, expected: str
) -> None:
    # The database side of the flow is the same for both generations (tests/app run it on
    # both backends); one backend keeps the browser runs few.
    await _answer_in_the_browser(sqlite_url(tmp_path), tmp_path, answer, expected, "altinn2")


async def _answer_in_the_browser(
    database_url: str, tmp_path: Path, answer: str, expected: str, generation: str
) -> None:
    async with demo(database_url, tmp_path, generation) as d, chromium() as browser:
        page = await browser.new_page()
        await _ask_for_consent(page, d.portal)
        assert PAGES[generation] in page.url
        await _log_in(page, APPROVER)
        await page.get_by_role("button", name=answer).click()
        await page.wait_for_url(f"{d.portal}return**")
        assert await page.inner_text("#status") == expected
        history = await page.inner_text("#history")
        assert "redirected" in history
        assert expected in history
        if expected == "granted":
            assert await page.locator("#grant-valid-to").count() == 1
            # The relay: the portal fetches the data and checks the broker's signature on it.
            await page.get_by_role("link", name="Fetch the data").click()
            signature = await page.inner_text("#signature")
            assert signature.startswith("Signature verified")
        request_url = page.url
        await _webhook_verified(page, d.portal, f"consent_request.{expected}")
        if expected != "granted":
            return
        # The grant is withdrawn through the client API; the portal shows it at once.
        request_id = request_url.split("/requests/")[1].split("/")[0]
        await _withdraw(d, request_id)
        await page.goto(f"{d.portal}requests/{request_id}")
        assert await page.inner_text("#status") == "cancelled"
        assert "oppdrag.fetch" in await page.inner_text("#history")
        if generation == "altinn2":
            # Altinn 2 was told too: the rights are discarded there.
            [a2] = d.sandbox.altinn2.requests()
            assert a2.discarded


async def _webhook_verified(page: Page, portal: str, event: str) -> None:
    """The broker called the portal back; the portal verified the delivery and shows it."""
    await page.goto(f"{portal}webhooks")
    row = page.locator("#webhooks tbody tr").first
    for _ in range(50):  # delivered at the commit's wake-up, at worst within a poll (0.5 s)
        if await row.count() and event in await row.inner_text():
            break
        await page.wait_for_timeout(100)
        await page.reload()
    assert event in await row.inner_text()
    assert await row.get_attribute("class") == "verified"
    assert await row.locator("td.result").inner_text() == "verified"


async def test_a_person_without_rights_cannot_answer(database_url: str, tmp_path: Path) -> None:
    async with demo(database_url, tmp_path) as d, chromium() as browser:
        page = await browser.new_page()
        await _ask_for_consent(page, d.portal)
        await _log_in(page, OUTSIDER)
        assert await page.get_by_role("button", name="Approve").count() == 0
        assert "may not answer consent requests" in await page.content()
        await page.goto(d.portal)
        request_link = page.locator("#requests a").first
        await request_link.click()
        assert await page.inner_text("#status") == "redirected"
