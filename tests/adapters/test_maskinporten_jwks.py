"""The verifier's JWKS handling against the fake: caching, rotation (a new kid is refetched
once), the unknown-kid refetch limit, and an unusable or unreachable JWKS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from broker.consent.ports import UpstreamUnavailable
from broker.maskinporten.errors import TokenInvalid
from broker.maskinporten.verifier import TokenVerifier
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import SandboxClient
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import ISSUER, SCOPE, broker_client, post_token


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-jwks")


@pytest.fixture(scope="module")
def stranger() -> SigningKeys:
    return SigningKeys.generate(1, prefix="stranger")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


async def mint(fake: Fake) -> str:
    grant = fake.registered.assertion(ISSUER, now=fake.clock.timestamp(), scope=SCOPE)
    response = await post_token(fake.http, grant)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


async def reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenInvalid) as caught:
        await verifier.verify(token)
    return caught.value.reason


async def test_the_jwks_is_fetched_once_and_kept_for_a_day(mp: Fake) -> None:
    verifier = mp.verifier()

    for _ in range(5):
        await verifier.verify(await mint(mp))
    mp.clock.advance(86_400)
    await verifier.verify(await mint(mp))

    assert mp.traffic.jwks_fetches == 2


async def test_concurrent_first_verifications_fetch_the_jwks_once(mp: Fake) -> None:
    verifier = mp.verifier()
    token = await mint(mp)

    await asyncio.gather(*(verifier.verify(token) for _ in range(20)))

    assert mp.traffic.jwks_fetches == 1


async def test_rotation_to_a_published_key_needs_no_refetch(
    registered: SandboxClient, tmp_path: Path
) -> None:
    keys = SigningKeys.generate(2, prefix="published")
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        verifier = fake.verifier()
        await verifier.verify(await mint(fake))
        keys.rotate()
        rotated = await mint(fake)

        assert await verifier.verify(rotated)
        assert fake.traffic.jwks_fetches == 1


async def test_a_new_signing_key_makes_the_verifier_refetch_once(
    registered: SandboxClient, tmp_path: Path
) -> None:
    keys = SigningKeys.generate(2, prefix="rotating")
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        fake.traffic.published = {keys.primary_kid}  # the next key is not out yet
        verifier = fake.verifier()
        await verifier.verify(await mint(fake))

        keys.rotate()
        fake.traffic.published.add(keys.primary_kid)
        tokens = [await mint(fake) for _ in range(3)]
        results = await asyncio.gather(*(verifier.verify(t) for t in tokens * 10))

        assert len(results) == 30
        assert fake.traffic.jwks_fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    mp: Fake, stranger: SigningKeys
) -> None:
    verifier = mp.verifier(jwks_min_refetch_interval=60)
    await verifier.verify(await mint(mp))
    garbage = [stranger.sign(mp.claims(), headers={"kid": f"garbage-{n}"}) for n in range(5)]

    for token in garbage:
        assert await reason(verifier, token) == "unknown kid"
    assert mp.traffic.jwks_fetches == 2
    mp.clock.advance(59)
    assert await reason(verifier, garbage[0]) == "unknown kid"
    assert mp.traffic.jwks_fetches == 2
    mp.clock.advance(1)
    assert await reason(verifier, garbage[0]) == "unknown kid"
    assert mp.traffic.jwks_fetches == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.Response(503),
        httpx.Response(404),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"keys": []}),
        httpx.Response(200, json=["not", "a", "set"]),
    ],
)
async def test_an_unusable_jwks_makes_verification_unavailable(
    mp: Fake, failure: Exception | httpx.Response
) -> None:
    token = await mint(mp)
    mp.traffic.faults.append(failure)

    with pytest.raises(UpstreamUnavailable, match="JWKS"):
        await mp.verifier().verify(token)


async def test_after_a_failed_first_fetch_the_next_waits_a_moment(mp: Fake) -> None:
    token = await mint(mp)
    verifier = mp.verifier()
    mp.traffic.faults.append(httpx.ConnectError("refused"))

    with pytest.raises(UpstreamUnavailable):
        await verifier.verify(token)
    with pytest.raises(UpstreamUnavailable, match="moments ago"):
        await verifier.verify(token)
    assert mp.traffic.jwks_fetches == 1
    mp.clock.advance(5)

    assert await verifier.verify(token)
    assert mp.traffic.jwks_fetches == 2


async def test_stale_keys_are_kept_while_the_jwks_is_down(mp: Fake) -> None:
    verifier = mp.verifier()
    await verifier.verify(await mint(mp))
    mp.clock.advance(86_400)
    token = await mint(mp)
    mp.traffic.faults.append(httpx.Response(503))

    assert await verifier.verify(token)
    assert await verifier.verify(token)  # no new attempt for a while
    assert mp.traffic.jwks_fetches == 2
    mp.clock.advance(60)
    assert await verifier.verify(token)
    assert mp.traffic.jwks_fetches == 3


async def test_an_unknown_kid_refetch_that_fails_is_unavailable(
    mp: Fake, stranger: SigningKeys
) -> None:
    verifier = mp.verifier()
    await verifier.verify(await mint(mp))
    mp.traffic.faults.append(httpx.Response(502))

    with pytest.raises(UpstreamUnavailable):
        await verifier.verify(stranger.sign(mp.claims(), headers={"kid": "new"}))


async def test_keys_that_cannot_verify_are_skipped(mp: Fake, keys: SigningKeys) -> None:
    token = await mint(mp)
    good = keys.public_jwks()["keys"]
    odd = [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        {**good[0], "kid": "enc", "use": "enc"},
        {k: v for k, v in good[0].items() if k != "kid"},
        {**good[0], "kid": "private", "d": "AA"},
        {"kty": "RSA", "kid": "broken", "n": "%", "e": "AQAB"},
        "not-a-key",
    ]
    mp.traffic.faults.append(httpx.Response(200, json={"keys": odd + good}))

    assert await mp.verifier().verify(token)
