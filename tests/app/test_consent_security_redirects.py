"""G7 (security.md §6) over HTTP: ``POST /v1/consent-requests`` refuses the bypass corpus and
answers a Hypothesis sample exactly as the documented rules say; flows started with accepted
variants end with a 303 whose Location starts byte-for-byte with the registered URL.

The oracle, the strategies and the corpus live in ``test_consent_redirects.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.app.security_support import portal_query, register_tenant
from tests.app.test_consent_redirects import (
    ALLOWED_VARIANTS,
    BRACKETS,
    BYPASS_CORPUS,
    REFUSAL,
    REGISTERED,
    REGISTERED_URLS,
    equivalent_variant,
    expected_match,
    near_registered,
)
from tests.flow import PORTAL_RETURN, Stack, Tenant, stack
from tests.support import sqlite_url


def _sample(size: int) -> list[str]:
    sample: list[str] = []

    @settings(max_examples=size, derandomize=True, database=None, deadline=None)
    @given(st.one_of(near_registered(), equivalent_variant()))
    def collect(candidate: str) -> None:
        sample.append(candidate)

    collect()
    return sample


async def _post(s: Stack, tenant: Tenant, return_url: str) -> tuple[int, Any]:
    body = {
        "requestor": "310200018",
        "subject": "310100013",
        "reference": "fuzz",
        "return_url": return_url,
    }
    response = await s.api.post("/v1/consent-requests", json=body, headers=tenant.headers)
    return response.status_code, response.json()


async def test_g7_the_api_refuses_the_corpus_and_a_fuzzed_sample(tmp_path: Path) -> None:
    sample = _sample(60)
    async with stack(sqlite_url(tmp_path), tmp_path) as s:
        tenant = await register_tenant(s.app, "Portal C", "310200026", REGISTERED_URLS)
        for candidate in BYPASS_CORPUS:
            status, body = await _post(s, tenant, candidate)
            assert (status, body["code"], body["errors"]) == (422, "validation_failed", REFUSAL)
        created = 0
        for candidate in sample:
            status, body = await _post(s, tenant, candidate)
            expected = expected_match(candidate)
            if expected is None:
                assert (status, body.get("errors")) == (422, REFUSAL), candidate
            else:
                assert (status, body["return_url"]) == (201, expected), candidate
                created += 1
        assert 0 < created < len(sample)
        listing = await s.api.get("/v1/consent-requests?limit=100", headers=tenant.headers)
        assert len(listing.json()["items"]) == created
        assert all(item["return_url"] in REGISTERED_URLS for item in listing.json()["items"])


async def test_g7_flows_started_with_accepted_variants_end_at_the_registered_url(
    tmp_path: Path, generation: str
) -> None:
    variants = [
        (ALLOWED_VARIANTS[0], PORTAL_RETURN),
        (ALLOWED_VARIANTS[3], PORTAL_RETURN),
        ("HTTPS://portal.EXAMPLE:8443/cb?tenant=a&x=1", REGISTERED[1].url),
        ("https://portal.example/Case/Return", REGISTERED[2].url),
    ]
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        tenant = await register_tenant(s.app, "Portal C", "310200026", REGISTERED_URLS)
        for n, (candidate, registered) in enumerate(variants):
            created = await s.create(tenant, return_url=candidate, reference=f"v{n}")
            assert created["return_url"] == registered
            async with s.browser() as person:
                altinn_id = await s.go_to_altinn(person, created["consent_url"])
                back = await s.answer(altinn_id, "approve" if n % 2 else "reject")
                done = await s.come_back(person, back)
                again = await person.get(created["consent_url"])  # the link after the end
            status = "granted" if n % 2 else "denied"
            for response in (done, again):
                assert response.headers["location"].startswith(registered)
                expected = {"consent_request": created["id"], "status": status}
                assert portal_query(response, registered) == expected


async def test_g7_the_api_answers_422_for_malformed_brackets(tmp_path: Path) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path) as s:
        for candidate in BRACKETS:
            status, body = await _post(s, s.tenant, candidate)
            assert (status, body.get("errors")) == (422, REFUSAL), candidate
