"""The fake Maskinporten enforces the grant's own claims: aud, iat/exp and lifetime, the claim
allow-list and jti replay (maskinporten.md §1.4, §1.7, §6.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import MaskinportenConfig, MaskinportenState, SandboxClient
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    ISSUER,
    OTHER_ORG,
    SCOPE,
    Sandbox,
    broker_client,
    error,
    sandbox,
)

CLIENT_AUTH = "Invalid assertion. Client authentication failed."
INVALID_VALUE = error("invalid_request", "MP-011: Invalid assertion. Invalid parameter value")
BAD_AUD = error("invalid_grant", f"MP-110: {CLIENT_AUTH} Invalid JWT claim aud")


@pytest.fixture(scope="module")
def client() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def other_client() -> SandboxClient:
    return SandboxClient.generate("other-client", OTHER_ORG, {SCOPE})


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-assertion")


@pytest.fixture
async def mp(client: SandboxClient, keys: SigningKeys) -> AsyncIterator[Sandbox]:
    async with sandbox(client, keys) as box:
        yield box


# aud


@pytest.mark.parametrize(
    "aud",
    [BASE_URL, f"{BASE_URL}/token", "https://maskinporten.no/", [ISSUER], None],
)
async def test_aud_must_be_exactly_the_issuer(mp: Sandbox, aud: object) -> None:
    omit = ("aud",) if aud is None else ()
    claims = {} if aud is None else {"aud": aud}
    response = await mp.token(mp.assertion(claims=claims, omit=omit))

    assert response.status_code == 400
    assert response.json() == BAD_AUD


# Time


async def test_iat_beyond_the_skew_is_after_now(mp: Sandbox) -> None:
    now = mp.clock.timestamp()
    response = await mp.token(mp.assertion(claims={"iat": now + 11, "exp": now + 60}))

    assert response.status_code == 400
    assert response.json() == error("invalid_grant", "Issue time is after now")


async def test_iat_within_the_skew_is_accepted(mp: Sandbox) -> None:
    now = mp.clock.timestamp()
    response = await mp.token(mp.assertion(claims={"iat": now + 10, "exp": now + 60}))

    assert response.status_code == 200


async def test_an_expired_grant_is_rejected(mp: Sandbox) -> None:
    assertion = mp.assertion(lifetime=60)
    mp.clock.advance(71)

    response = await mp.token(assertion)

    assert response.status_code == 400
    assert response.json() == error("invalid_grant", "MP-130: JWT is expired")


async def test_a_grant_expired_within_the_skew_is_accepted(mp: Sandbox) -> None:
    assertion = mp.assertion(lifetime=60)
    mp.clock.advance(70)

    response = await mp.token(assertion)

    assert response.status_code == 200


async def test_a_grant_living_longer_than_120_seconds_is_rejected(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(lifetime=121))

    assert response.status_code == 400
    assert response.json() == error("invalid_grant", "JWT has too long lifetime")


async def test_a_grant_living_exactly_120_seconds_is_accepted(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(lifetime=120))

    assert response.status_code == 200


async def test_the_lifetime_limit_is_configurable(client: SandboxClient, keys: SigningKeys) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, max_grant_lifetime=180)
    async with sandbox(client, keys, config) as box:
        accepted = await box.token(box.assertion(lifetime=180))
        rejected = await box.token(box.assertion(lifetime=181))

    assert accepted.status_code == 200
    assert rejected.json() == error("invalid_grant", "JWT has too long lifetime")


@pytest.mark.parametrize(
    ("claims", "omit"),
    [({}, ("iat",)), ({}, ("exp",)), ({"iat": "now"}, ()), ({"exp": True}, ())],
)
async def test_missing_or_non_numeric_times_are_invalid_parameters(
    mp: Sandbox, claims: dict[str, Any], omit: tuple[str, ...]
) -> None:
    response = await mp.token(mp.assertion(claims=claims, omit=omit))

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


# Allowed claims


@pytest.mark.parametrize(
    ("extra", "names"),
    [({"sub": "x"}, "sub"), ({"nbf": 1, "client_id": "x"}, "client_id, nbf")],
)
async def test_claims_outside_the_allow_list_are_rejected(
    mp: Sandbox, extra: dict[str, Any], names: str
) -> None:
    response = await mp.token(mp.assertion(claims=extra))

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", f"Invalid assertion. Unknown claims: {names}"
    )


async def test_extra_claims_can_be_allowed(client: SandboxClient, keys: SigningKeys) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, extra_allowed_claims=frozenset({"nbf", "sub"}))
    async with sandbox(client, keys, config) as box:
        now = box.clock.timestamp()
        response = await box.token(box.assertion(claims={"nbf": now, "sub": "x"}))

    assert response.status_code == 200


# jti


async def test_a_reused_jti_is_a_used_grant(mp: Sandbox) -> None:
    assertion = mp.assertion()

    first = await mp.token(assertion)
    second = await mp.token(assertion)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == error("invalid_grant", "MP-012: Grant is used before")


async def test_a_jti_is_remembered_even_when_the_request_failed_later(mp: Sandbox) -> None:
    await mp.token(mp.assertion(scope="unknown:scope", claims={"jti": "once"}))

    response = await mp.token(mp.assertion(claims={"jti": "once"}))

    assert response.json() == error("invalid_grant", "MP-012: Grant is used before")


async def test_a_forged_grant_does_not_burn_the_jti(
    mp: Sandbox, other_client: SandboxClient
) -> None:
    forged = other_client.assertion(
        ISSUER,
        now=mp.clock.timestamp(),
        scope=SCOPE,
        claims={"iss": mp.client.client_id, "jti": "precious"},
        header={"alg": "RS256", "kid": mp.client.kid},
    )
    await mp.token(forged)

    response = await mp.token(mp.assertion(claims={"jti": "precious"}))

    assert response.status_code == 200


async def test_jtis_are_per_client(mp: Sandbox, other_client: SandboxClient) -> None:
    mp.state.register_client(other_client.registration())
    now = mp.clock.timestamp()
    theirs = other_client.assertion(ISSUER, now=now, scope=SCOPE, claims={"jti": "shared"})

    first = await mp.token(mp.assertion(claims={"jti": "shared"}))
    second = await mp.token(theirs)

    assert (first.status_code, second.status_code) == (200, 200)


async def test_a_missing_jti_is_rejected(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(omit=("jti",)))

    assert response.status_code == 400
    assert response.json() == error("invalid_grant", "MP-012: Invalid assertion. Missing claim jti")


async def test_a_missing_jti_is_allowed_when_not_required(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, require_jti=False)
    async with sandbox(client, keys, config) as box:
        response = await box.token(box.assertion(omit=("jti",)))

    assert response.status_code == 200


@pytest.mark.parametrize("jti", ["", 17])
async def test_an_empty_or_non_string_jti_is_an_invalid_parameter(mp: Sandbox, jti: object) -> None:
    response = await mp.token(mp.assertion(claims={"jti": jti}))

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


def test_jtis_are_forgotten_after_they_expire() -> None:
    state = MaskinportenState()

    assert state.remember_jti("c", "j", expires=100, now=50)
    assert not state.remember_jti("c", "j", expires=100, now=100)
    assert state.remember_jti("c", "j", expires=200, now=101)
