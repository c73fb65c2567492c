"""Discovery of the issuer's endpoints from its RFC 8414 metadata, and wiring from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from broker.consent.ports import UpstreamRefused, UpstreamUnavailable
from broker.maskinporten.metadata import ServerMetadata, discover
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import SandboxClient
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    CUSTOMER_ORG,
    ISSUER,
    SCOPE,
    SUBJECT_ORG,
    add_consent,
    broker_client,
)

DOCUMENT = {"issuer": ISSUER, "token_endpoint": ISSUER + "token", "jwks_uri": ISSUER + "jwk"}


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp-metadata")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


async def test_the_fakes_metadata_is_discovered(mp: Fake) -> None:
    metadata = await discover(mp.http, ISSUER)

    assert metadata == ServerMetadata(ISSUER, ISSUER + "token", ISSUER + "jwk")
    (request,) = mp.traffic.requests
    assert str(request.url) == ISSUER + ".well-known/oauth-authorization-server"


async def test_a_client_wired_from_metadata_gets_consent_tokens(mp: Fake) -> None:
    metadata = await discover(mp.http, ISSUER)
    verifier = mp.verifier(issuer=metadata.issuer, jwks_uri=metadata.jwks_uri)
    client = mp.client(token_endpoint=metadata.token_endpoint, verifier=verifier)
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)

    token = await client.consent_token(
        consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )

    assert token.consent_id == record.id
    assert (await client.access_token(SCOPE)).token


async def test_metadata_for_another_issuer_is_refused(mp: Fake) -> None:
    # The issuer must match exactly (RFC 8414 §3.3): here the slash is missing.
    with pytest.raises(UpstreamRefused, match="another issuer"):
        await discover(mp.http, BASE_URL)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailable),
        (httpx.Response(503), UpstreamUnavailable),
        (httpx.Response(429), UpstreamUnavailable),
        (httpx.Response(200, text="<html>"), UpstreamUnavailable),
        (httpx.Response(404), UpstreamRefused),
        (httpx.Response(200, json=["not", "an", "object"]), UpstreamRefused),
        (httpx.Response(200, json={**DOCUMENT, "jwks_uri": ""}), UpstreamRefused),
        (httpx.Response(200, json={**DOCUMENT, "token_endpoint": None}), UpstreamRefused),
    ],
)
async def test_unusable_metadata_is_an_upstream_error(
    mp: Fake, answer: Exception | httpx.Response, error: type[Exception]
) -> None:
    mp.traffic.faults.append(answer)

    with pytest.raises(error):
        await discover(mp.http, ISSUER)
