"""The fake Altinn consent page in a real headless Chromium: a person logs in, answers, and the
browser lands on the redirect URL with Altinn's parameters; someone without rights is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from broker.sandbox import app as sandbox_app
from broker.sandbox import world
from broker.sandbox.consents import ConsentStatus
from tests.browser import chromium
from tests.sandbox.sandbox_helpers import APPROVER, OUTSIDER, consent_request
from tests.support import free_port, serving

pytestmark = pytest.mark.slow


@dataclass
class Stage:
    sandbox: world.Sandbox
    sandbox_url: str
    portal_url: str


async def _portal(request: Request) -> HTMLResponse:
    return HTMLResponse(f"<h1>Back at the portal</h1><p id='query'>{request.url.query}</p>")


@asynccontextmanager
async def stage() -> AsyncIterator[Stage]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = world.build(world.SandboxConfig(base_url=base, broker_key_file=None))
    portal = Starlette(routes=[Route("/return", _portal)])
    async with serving(sandbox_app.create_app(sandbox), port) as url, serving(portal) as portal_url:
        assert url == base
        yield Stage(sandbox, url, portal_url)


async def _create(stage: Stage) -> tuple[uuid.UUID, str]:
    """Create a consent request through the real API, with a token from the fake Maskinporten."""
    sandbox = stage.sandbox
    consent_id = uuid.uuid4()
    async with httpx.AsyncClient(base_url=stage.sandbox_url) as http:
        assertion = sandbox.seed.broker_client.assertion(
            f"{stage.sandbox_url}/maskinporten/",
            now=sandbox.clock.timestamp(),
            scope="altinn:consentrequests.write",
            consumer_org="310200018",
        )
        token = await http.post(
            "/maskinporten/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        body = consent_request(consent_id, redirect_url=f"{stage.portal_url}/return?ref=abc")
        # The served sandbox runs on the wall clock, so validity is counted from now.
        body["validTo"] = (sandbox.clock.now() + timedelta(days=30)).isoformat()
        created = await http.post(
            "/altinn/accessmanagement/api/v1/enterprise/consentrequests",
            json=body,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
    assert created.status_code == 201, created.text
    view_uri = created.json()["viewUri"]
    assert isinstance(view_uri, str)
    return consent_id, view_uri


async def _log_in(page: Page, view_uri: str, fnr: str) -> None:
    await page.goto(view_uri)
    await page.get_by_label("Log in as").select_option(fnr)
    await page.get_by_role("button", name="Log in", exact=True).click()


async def test_an_authorised_person_approves_and_lands_on_the_redirect_url() -> None:
    async with stage() as s, chromium() as browser:
        consent_id, view_uri = await _create(s)
        page = await browser.new_page()
        await _log_in(page, view_uri, APPROVER)
        await page.get_by_role("button", name="Approve").click()
        await page.wait_for_url(f"{s.portal_url}/return**")
        query = parse_qs(urlsplit(page.url).query)
        assert query == {"ref": ["abc"], "Status": ["OK"]}
        assert await page.inner_text("h1") == "Back at the portal"
        record = s.sandbox.register.get(consent_id)
        assert record is not None
        assert record.status is ConsentStatus.ACCEPTED


async def test_a_rejection_lands_with_the_failure_parameters() -> None:
    async with stage() as s, chromium() as browser:
        consent_id, view_uri = await _create(s)
        page = await browser.new_page()
        await _log_in(page, view_uri, APPROVER)
        await page.get_by_role("button", name="Reject").click()
        await page.wait_for_url(f"{s.portal_url}/return**")
        query = parse_qs(urlsplit(page.url).query)
        assert query["Status"] == ["Failed"]
        assert query["ErrorMessage"] == ["User did not give consent"]
        record = s.sandbox.register.get(consent_id)
        assert record is not None
        assert record.status is ConsentStatus.REJECTED


async def test_a_person_without_rights_is_refused() -> None:
    async with stage() as s, chromium() as browser:
        consent_id, view_uri = await _create(s)
        page = await browser.new_page()
        await _log_in(page, view_uri, OUTSIDER)
        assert await page.get_by_role("button", name="Approve").count() == 0
        assert "may not answer consent requests" in await page.content()
        response = await page.reload()
        assert response is not None
        assert response.status == 403
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        record = s.sandbox.register.get(consent_id)
        assert record is not None
        assert record.status is ConsentStatus.CREATED
