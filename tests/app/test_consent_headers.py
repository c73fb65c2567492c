"""G9 (security.md §6): every response of the browser routes refuses framing, caching and
Referer leaks, and the flow cookie has the attributes a flow cookie needs.

Every page the person can be shown (each kind in ``broker.consent.pages``), every redirect,
and the 404/405 problem answers under ``/consent`` are produced and checked.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from broker.consent import pages
from tests.app.security_support import (
    DEV_COOKIE,
    HTML,
    PROBLEM,
    PROD_COOKIE,
    altinn_id_of,
    assert_page,
    portal_query,
    prod_stack,
    set_cookie,
)
from tests.flow import BROKER, Stack, stack
from tests.support import sqlite_url

RETURN_TTL = 1800


def assert_browser_headers(response: httpx.Response, label: str) -> None:
    headers = response.headers
    policy = [d.strip() for d in headers.get("content-security-policy", "").split(";")]
    assert "frame-ancestors 'none'" in policy, (label, headers)
    assert headers.get("x-frame-options") == "DENY", label
    assert headers.get("referrer-policy") == "no-referrer", label
    assert headers.get("cache-control") == "no-store", label
    assert headers.get("x-content-type-options") == "nosniff", label
    for name in ("content-security-policy", "x-frame-options", "referrer-policy"):
        assert len(headers.get_list(name)) == 1, (label, name)


def assert_flow_cookie(response: httpx.Response, *, name: str, secure: bool) -> str:
    cookie_name, value, attributes = set_cookie(response)
    assert cookie_name == name
    assert len(value) == 43  # 256 random bits, URL-safe base64
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    assert attributes["max-age"] == str(RETURN_TTL)
    assert ("secure" in attributes) is secure
    return value


async def _every_browser_response(s: Stack, base: str) -> dict[str, httpx.Response]:
    """One of each response the browser routes give, labelled; ends with time travel."""
    seen: dict[str, httpx.Response] = {}
    granted, again, cancelled = [await s.create(reference=f"r{n}") for n in range(3)]
    expiring, late = await s.create(reference="expiring"), await s.create(reference="late")
    refused = await s.create(subject="974760673", reference="not-a-supplier")
    async with s.browser() as person, s.browser() as stranger:
        # First, while the broker holds no cached token: Maskinporten fails once and asks for
        # a wait longer than the broker will take, so the person is told to try again.
        failing = {"status": 503, "error": "server_error", "retry_after": 3600, "count": 1}
        assert (
            await s.sandbox_http.post("/control/maskinporten/fail-next", json=failing)
        ).is_success
        seen["page try_again"] = await person.get(late["consent_url"])
        seen["start: 303 to Altinn, cookie set"] = await person.get(granted["consent_url"])
        seen["start again: 303 to Altinn"] = await person.get(again["consent_url"])
        altinn_id = altinn_id_of(seen["start: 303 to Altinn, cookie set"])
        back = await s.answer(altinn_id)
        seen["return: 303 to the portal"] = await person.get(back)
        seen["page return_used"] = await person.get(back)
        seen["start of a granted request: 303 to the portal"] = await person.get(
            granted["consent_url"]
        )
        seen["page return_invalid"] = await stranger.get(back)
        seen["page link_invalid"] = await person.get(granted["consent_url"] + "x")
        cancel = await s.api.delete(
            f"/v1/consent-requests/{cancelled['id']}", headers=s.tenant.headers
        )
        assert cancel.status_code == 200, cancel.text
        seen["page request_closed"] = await person.get(cancelled["consent_url"])
        seen["page altinn_refused"] = await person.get(refused["consent_url"])
        request_id = granted["id"]
        for method, path, status in [
            ("GET", "/consent/nowhere", 404),
            ("GET", f"/consent/{request_id}/start/more", 404),
            ("GET", "/consent/return/more", 404),
            ("POST", "/consent/return", 405),
            ("DELETE", "/consent/return", 405),
            ("POST", f"/consent/{request_id}/start", 405),
            ("PUT", f"/consent/{request_id}/start", 405),
        ]:
            response = await person.request(method, base + path)
            assert response.status_code == status, (method, path, response.text)
            assert response.headers["content-type"] == PROBLEM
            seen[f"{method} {path}: {status} problem"] = response
        seen["HEAD of the return"] = await person.head(back)

        expiring_id = await s.go_to_altinn(person, expiring["consent_url"])
        s.sandbox.clock.advance(604801)
        seen["page link_expired"] = await person.get(late["consent_url"])
        seen["page return_expired"] = await person.get(await s.answer(expiring_id))
    return seen


async def test_g9_every_browser_response_refuses_framing_caching_and_referrers(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        seen = await _every_browser_response(s, BROKER)
    shown_pages = {label.removeprefix("page ") for label in seen if label.startswith("page ")}
    assert shown_pages == set(pages._TEXTS), "a page kind is not covered"
    statuses = {
        "link_invalid": 400,
        "link_expired": 410,
        "request_closed": 410,
        "return_invalid": 400,
        "return_expired": 400,
        "return_used": 409,
        "try_again": 503,
        "altinn_refused": 502,
    }
    for kind, status in statuses.items():
        assert_page(seen[f"page {kind}"], status, kind)
    for label, response in seen.items():
        assert_browser_headers(response, label)
        if response.status_code == 303:
            assert response.content == b"", label
        elif response.headers.get("content-type") == HTML:
            assert "http" not in response.text, label  # no third-party resources (RFC 9700 4.2)
    assert_flow_cookie(seen["start: 303 to Altinn, cookie set"], name=DEV_COOKIE, secure=False)
    assert portal_query(seen["return: 303 to the portal"])["status"] == "granted"
    assert seen["HEAD of the return"].status_code == 409


async def test_g9_in_production_the_cookie_is_host_prefixed_and_secure(
    tmp_path: Path, generation: str
) -> None:
    async with prod_stack(sqlite_url(tmp_path), tmp_path, generation) as s:
        created = await s.create()
        async with s.browser() as person:
            started = await person.get(created["consent_url"])
            assert created["consent_url"].startswith("https://broker.test/consent/")
            altinn_id = altinn_id_of(started)
            value = assert_flow_cookie(started, name=PROD_COOKIE, secure=True)
            assert person.cookies[PROD_COOKIE] == value
            back = await s.answer(altinn_id)
            assert back.startswith("https://broker.test/consent/return?h=")
            done = await person.get(back)
            # The dev name is not read in production: a cookie under it binds nothing.
            async with s.browser() as imposter:
                imposter.cookies.set(DEV_COOKIE, value)
                refused = await imposter.get(back)
            not_found = await person.get("/consent/nowhere")
        for label, response in [
            ("start", started),
            ("return", done),
            ("refused", refused),
            ("404", not_found),
        ]:
            assert_browser_headers(response, label)
        assert portal_query(done) == {"consent_request": created["id"], "status": "granted"}
        assert_page(refused, 400, "return_invalid")
