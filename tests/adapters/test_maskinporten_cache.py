"""The token cache: hits, one entry per identity, refresh ahead of expiry, single-flight,
failures never cached, and invalidation ("drop and retry once")."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from broker.consent.ports import ConsentUnavailable, UpstreamRefused
from broker.maskinporten.cache import CacheKey, Fetched, TokenCache
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import Fault, SandboxClient
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import (
    BROKER_ORG,
    CUSTOMER_ORG,
    ISSUER,
    OTHER_ORG,
    OTHER_SCOPE,
    SCOPE,
    START,
    SUBJECT_ORG,
    add_consent,
    broker_client,
)

KEY = CacheKey(ISSUER, "client", SCOPE)


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp-cache")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


# Hits and keys


async def test_a_fresh_token_is_served_from_the_cache(mp: Fake) -> None:
    client = mp.client()

    first = await client.access_token(SCOPE)
    second = await client.access_token(SCOPE)

    assert second is first
    assert mp.token_requests() == 1


async def test_scope_and_consumer_each_get_their_own_token(mp: Fake) -> None:
    client = mp.client()
    asks = [(SCOPE, None), (OTHER_SCOPE, None), (SCOPE, CUSTOMER_ORG)]

    tokens = [await client.access_token(scope, consumer_org=org) for scope, org in asks]
    again = [await client.access_token(scope, consumer_org=org) for scope, org in asks]

    assert len({token.token for token in tokens}) == 3
    assert again == tokens
    assert mp.token_requests() == 3


async def test_each_consent_gets_its_own_token(mp: Fake) -> None:
    client = mp.client()
    records = [add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG) for _ in range(2)]

    for _ in range(2):
        for record in records:
            await client.consent_token(
                consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
            )

    assert mp.token_requests() == 2


# Expiry


async def test_a_token_is_refreshed_ahead_of_expiry(mp: Fake) -> None:
    client = mp.client()
    first = await client.access_token(SCOPE)

    mp.clock.advance(95)  # 120 s tokens: 20 % = 24 s margin, so fresh until +96 s
    kept = await client.access_token(SCOPE)
    mp.clock.advance(1)
    renewed = await client.access_token(SCOPE)

    assert kept is first
    assert renewed.token != first.token
    assert renewed.expires_at == START + timedelta(seconds=96 + 120)
    assert mp.token_requests() == 2


async def test_the_refresh_margin_is_configurable(mp: Fake) -> None:
    client = mp.client(refresh_ratio=0.0, refresh_min=30.0)
    first = await client.access_token(SCOPE)

    mp.clock.advance(89)
    kept = await client.access_token(SCOPE)
    mp.clock.advance(1)
    renewed = await client.access_token(SCOPE)

    assert kept is first
    assert renewed is not first


async def test_a_consent_token_is_not_kept_past_the_consents_end(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG, valid_for=timedelta(minutes=1))
    client = mp.client()

    async def ask() -> None:
        await client.consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    await ask()
    mp.clock.advance(47)  # usable for 60 s only, so refreshed 12 s (20 %) before it ends
    await ask()
    assert mp.token_requests() == 1
    mp.clock.advance(1)
    await ask()
    assert mp.token_requests() == 2
    mp.clock.advance(12)  # the consent has ended: the renewal is refused
    with pytest.raises(ConsentUnavailable, match="AM-00013"):
        await ask()


# Single-flight


async def test_fifty_concurrent_misses_make_one_request(mp: Fake) -> None:
    client = mp.client()

    tokens = await asyncio.gather(*(client.access_token(SCOPE) for _ in range(50)))

    assert mp.token_requests() == 1
    assert len({token.token for token in tokens}) == 1


async def test_fifty_concurrent_consent_misses_make_one_request(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)
    client = mp.client()

    tokens = await asyncio.gather(
        *(
            client.consent_token(
                consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
            )
            for _ in range(50)
        )
    )

    assert mp.token_requests() == 1
    assert mp.traffic.jwks_fetches == 1
    assert len({token.token for token in tokens}) == 1


async def test_a_shared_failure_reaches_every_caller_and_is_not_cached(mp: Fake) -> None:
    mp.state.fail_next(Fault(400, "invalid_request", "Refused once"))
    client = mp.client()

    results = await asyncio.gather(
        *(client.access_token(SCOPE) for _ in range(10)), return_exceptions=True
    )
    recovered = await client.access_token(SCOPE)

    assert all(isinstance(result, UpstreamRefused) for result in results)
    assert recovered.token
    assert mp.token_requests() == 2


async def test_a_consent_refusal_is_not_cached(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, status=ConsentStatus.CREATED, to_org=CUSTOMER_ORG)
    client = mp.client()

    async def ask() -> None:
        await client.consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    with pytest.raises(ConsentUnavailable):
        await ask()
    mp.consents.set_status(record, ConsentStatus.ACCEPTED, at=mp.clock.now(), performed_by=None)
    await ask()

    assert mp.token_requests() == 2


# Invalidation


async def test_drop_and_retry_once_gets_a_new_token(mp: Fake) -> None:
    client = mp.client()
    rejected = await client.access_token(SCOPE, consumer_org=CUSTOMER_ORG)

    # The API answered 401 with `rejected`: drop it and ask again.
    dropped = client.invalidate(SCOPE, consumer_org=CUSTOMER_ORG, token=rejected.token)
    retried = await client.access_token(SCOPE, consumer_org=CUSTOMER_ORG)

    assert dropped
    assert retried.token != rejected.token
    assert mp.token_requests() == 2


async def test_invalidating_an_old_token_keeps_a_newer_one(mp: Fake) -> None:
    client = mp.client()
    old = await client.access_token(SCOPE)
    client.invalidate(SCOPE)
    new = await client.access_token(SCOPE)

    dropped = client.invalidate(SCOPE, token=old.token)

    assert not dropped
    assert await client.access_token(SCOPE) is new
    assert not client.invalidate(OTHER_SCOPE)


async def test_a_consent_token_can_be_invalidated(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)
    client = mp.client()

    async def ask() -> str:
        token = await client.consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )
        return token.token

    first = await ask()

    assert not client.invalidate_consent(uuid.uuid4())
    assert not client.invalidate_consent(record.id, token="another token")
    assert client.invalidate_consent(record.id, token=first)
    second = await ask()

    assert second != first
    assert mp.token_requests() == 2


async def test_a_consent_asked_for_with_other_parties_is_not_served_from_the_cache(
    mp: Fake,
) -> None:
    client = mp.client(vendor_mode=False)
    handled = add_consent(
        mp.consents, mp.clock, to_org=CUSTOMER_ORG, handled_by=org_urn(BROKER_ORG)
    )

    token = await client.consent_token(
        consent_id=handled.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )
    with pytest.raises(UpstreamRefused, match="consent recipient mismatch"):
        await client.consent_token(
            consent_id=handled.id, subject_org=SUBJECT_ORG, requestor_org=OTHER_ORG
        )

    assert token.requestor_org == CUSTOMER_ORG
    assert mp.token_requests() == 2


async def test_invalidating_a_consent_drops_its_tokens_for_all_parties(mp: Fake) -> None:
    handled = add_consent(
        mp.consents, mp.clock, to_org=CUSTOMER_ORG, handled_by=org_urn(BROKER_ORG)
    )
    client = mp.client(vendor_mode=False)
    await client.consent_token(
        consent_id=handled.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )

    assert client.invalidate_consent(handled.id)
    assert not client.invalidate_consent(handled.id)


# The cache on its own


def fetched(clock: Clock, value: str, lifetime: float) -> Fetched[str]:
    now = clock.now()
    return Fetched(value, now, now + timedelta(seconds=lifetime))


async def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch() -> None:
    clock = Clock(START)
    cache: TokenCache[str] = TokenCache(clock=clock.now)
    gate, calls = asyncio.Event(), []

    async def fetch() -> Fetched[str]:
        calls.append(1)
        await gate.wait()
        return fetched(clock, "value", 120)

    first = asyncio.create_task(cache.get(KEY, fetch))
    second = asyncio.create_task(cache.get(KEY, fetch))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()

    assert await second == "value"
    assert first.cancelled()
    assert await cache.get(KEY, fetch) == "value"
    assert calls == [1]


async def test_short_lived_tokens_are_kept_for_half_their_life() -> None:
    clock = Clock(START)
    cache: TokenCache[str] = TokenCache(clock=clock.now)
    values = iter(["first", "second"])

    async def fetch() -> Fetched[str]:
        return fetched(clock, next(values), 10)  # margin max(2 s, 10 s), capped at 5 s

    assert await cache.get(KEY, fetch) == "first"
    clock.advance(4.9)
    assert await cache.get(KEY, fetch) == "first"
    clock.advance(0.1)
    assert await cache.get(KEY, fetch) == "second"


async def test_expired_values_are_not_kept() -> None:
    clock = Clock(START)
    cache: TokenCache[str] = TokenCache(clock=clock.now)
    other = CacheKey(ISSUER, "client", OTHER_SCOPE)

    async def stale() -> Fetched[str]:
        return fetched(clock, "stale", 0)

    async def fresh() -> Fetched[str]:
        return fetched(clock, "fresh", 60)

    assert await cache.get(KEY, stale) == "stale"
    assert len(cache) == 0
    await cache.get(KEY, fresh)
    clock.advance(61)
    await cache.get(other, fresh)
    assert len(cache) == 1  # the first entry expired and was swept
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(("ratio", "minimum"), [(-0.1, 10.0), (1.0, 10.0), (0.2, -1.0)])
def test_the_margin_settings_are_checked(ratio: float, minimum: float) -> None:
    with pytest.raises(ValueError, match="refresh_ratio"):
        TokenCache[str](clock=Clock(START).now, refresh_ratio=ratio, refresh_min=minimum)
