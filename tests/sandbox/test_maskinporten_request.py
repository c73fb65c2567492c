"""The fake Maskinporten rejects malformed token requests and grants that fail client
authentication: form, JOSE header, client, key and signature (maskinporten.md §1.2-§1.3,
§1.7, §6.3)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import MaskinportenState, SandboxClient
from tests.sandbox.maskinporten_helpers import (
    BROKER_ORG,
    ISSUER,
    OTHER_ORG,
    SCOPE,
    START,
    Sandbox,
    broker_client,
    error,
    post_token,
    sandbox,
)

CLIENT_AUTH = "Invalid assertion. Client authentication failed."
INVALID_VALUE = error("invalid_request", "MP-011: Invalid assertion. Invalid parameter value")
CLIENT_NOT_FOUND = error("invalid_grant", f"MP-100: {CLIENT_AUTH} Client not found")
UNKNOWN_KID = error(
    "invalid_grant", f"MP-100: {CLIENT_AUTH} Unknown key identifier (kid) for client."
)
BAD_SIGNATURE = error("invalid_grant", f"MP-124: {CLIENT_AUTH} Invalid JWT signature")
UNSUPPORTED_ALG = error("invalid_grant", f"{CLIENT_AUTH} Unsupported JWT algorithm")
KID_OR_X5C = error(
    "invalid_grant", f"{CLIENT_AUTH} Either kid or x5c must be present in the JWT header"
)


@pytest.fixture(scope="module")
def client() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def other_client() -> SandboxClient:
    return SandboxClient.generate("other-client", OTHER_ORG, {SCOPE})


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-request")


@pytest.fixture
async def mp(client: SandboxClient, keys: SigningKeys) -> AsyncIterator[Sandbox]:
    async with sandbox(client, keys) as box:
        yield box


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "c2ln") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


def grant_claims(mp: Sandbox, **overrides: Any) -> dict[str, Any]:
    now = mp.clock.timestamp()
    claims: dict[str, Any] = {"aud": ISSUER, "iss": mp.client.client_id, "scope": SCOPE}
    claims.update(iat=now, exp=now + 60, jti="j-1")
    claims.update(overrides)
    return claims


# The HTTP request


async def test_a_json_body_is_rejected(mp: Sandbox) -> None:
    response = await mp.http.post("/token", json={"grant_type": "x", "assertion": mp.assertion()})

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", "Content-Type must be application/x-www-form-urlencoded"
    )


async def test_a_repeated_parameter_is_rejected(mp: Sandbox) -> None:
    body = f"grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion={mp.assertion()}"
    response = await mp.http.post(
        "/token",
        content=f"{body}&assertion=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", "Parameter assertion is included more than once"
    )


async def test_a_missing_grant_type_is_rejected(mp: Sandbox) -> None:
    response = await mp.http.post("/token", data={"assertion": mp.assertion()})

    assert response.status_code == 400
    assert response.json() == error("invalid_request", "Missing grant_type")


@pytest.mark.parametrize(
    "grant_type", ["client_credentials", "", "urn:ietf:params:oauth:grant-type:saml2-bearer"]
)
async def test_another_grant_type_is_unsupported(mp: Sandbox, grant_type: str) -> None:
    response = await post_token(mp.http, mp.assertion(), grant_type=grant_type)

    assert response.status_code == 400
    assert response.json() == error("unsupported_grant_type", "Unsupported grant_type")


async def test_a_missing_assertion_is_an_invalid_parameter(mp: Sandbox) -> None:
    grant_type = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    response = await mp.http.post("/token", data={"grant_type": grant_type})

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


@pytest.mark.parametrize(
    "assertion",
    ["not-a-jwt", "a.b", "!!!.e30.c2ln", "W10.W10.c2ln", "e30.bnVsbA.c2ln"],
)
async def test_an_unparseable_assertion_is_an_invalid_parameter(
    mp: Sandbox, assertion: str
) -> None:
    response = await post_token(mp.http, assertion)

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


# The JOSE header


@pytest.mark.parametrize("alg", ["none", "HS256", "ES256", "PS256"])
async def test_an_alg_other_than_rs256_384_512_is_rejected(mp: Sandbox, alg: str) -> None:
    token = unsigned({"alg": alg, "kid": mp.client.kid}, grant_claims(mp))

    response = await post_token(mp.http, token)

    assert response.status_code == 400
    assert response.json() == UNSUPPORTED_ALG


async def test_a_header_without_kid_or_x5c_is_rejected(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(header={"alg": "RS256"}))

    assert response.status_code == 400
    assert response.json() == KID_OR_X5C


async def test_a_header_with_both_kid_and_x5c_is_rejected(mp: Sandbox) -> None:
    header = {"alg": "RS256", "kid": mp.client.kid, "x5c": ["MIIB"]}
    response = await mp.token(mp.assertion(header=header))

    assert response.status_code == 400
    assert response.json() == KID_OR_X5C


async def test_a_client_with_registered_keys_may_not_use_x5c(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(header={"alg": "RS256", "x5c": ["MIIB"]}))

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_grant", f"MP-123: {CLIENT_AUTH} Client with registered keys must use kid, not x5c"
    )


async def test_a_non_string_kid_is_rejected(mp: Sandbox) -> None:
    token = unsigned({"alg": "RS256", "kid": 7}, grant_claims(mp))

    response = await post_token(mp.http, token)

    assert response.status_code == 400
    assert response.json() == KID_OR_X5C


# Client and key


@pytest.mark.parametrize("iss", ["no-such-client", None, 42])
async def test_an_unknown_issuer_is_client_not_found(mp: Sandbox, iss: object) -> None:
    omit = ("iss",) if iss is None else ()
    claims = {} if iss is None else {"iss": iss}
    response = await mp.token(mp.assertion(claims=claims, omit=omit))

    assert response.status_code == 400
    assert response.json() == CLIENT_NOT_FOUND


async def test_iss_of_another_client_does_not_match_our_key(
    mp: Sandbox, other_client: SandboxClient
) -> None:
    mp.state.register_client(other_client.registration())

    response = await mp.token(mp.assertion(claims={"iss": other_client.client_id}))

    assert response.status_code == 400
    assert response.json() == UNKNOWN_KID


async def test_an_unregistered_kid_is_rejected(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(header={"alg": "RS256", "kid": "someone-elses"}))

    assert response.status_code == 400
    assert response.json() == UNKNOWN_KID


async def test_a_key_posted_over_a_year_ago_has_expired(mp: Sandbox) -> None:
    posted = {mp.client.kid: START - timedelta(days=366)}
    mp.state.register_client(mp.client.registration(keys_posted=posted))

    response = await mp.token(mp.assertion())

    assert response.status_code == 400
    assert response.json() == error("invalid_grant", f"MP-121: {CLIENT_AUTH} Expired key")


async def test_a_key_posted_within_the_year_still_works(mp: Sandbox) -> None:
    posted = {mp.client.kid: START - timedelta(days=364)}
    mp.state.register_client(mp.client.registration(keys_posted=posted))

    response = await mp.token(mp.assertion())

    assert response.status_code == 200


async def test_a_grant_signed_with_another_key_fails_the_signature(
    mp: Sandbox, other_client: SandboxClient
) -> None:
    forged = other_client.assertion(
        ISSUER,
        now=mp.clock.timestamp(),
        scope=SCOPE,
        claims={"iss": mp.client.client_id},
        header={"alg": "RS256", "kid": mp.client.kid},
    )

    response = await mp.token(forged)

    assert response.status_code == 400
    assert response.json() == BAD_SIGNATURE


async def test_a_tampered_signature_fails(mp: Sandbox) -> None:
    header, claims, _ = mp.assertion().split(".")

    response = await mp.token(f"{header}.{claims}.c2ln")

    assert response.status_code == 400
    assert response.json() == BAD_SIGNATURE


@pytest.mark.parametrize("alg", ["RS384", "RS512"])
async def test_rs384_and_rs512_are_accepted_from_keys_that_allow_them(
    keys: SigningKeys, alg: str
) -> None:
    flexible = SandboxClient.generate("flexible-client", BROKER_ORG, {SCOPE}, alg=None)
    async with sandbox(flexible, keys) as box:
        response = await box.token(box.assertion(header={"alg": alg, "kid": flexible.kid}))

    assert response.status_code == 200


async def test_a_key_registered_for_rs256_refuses_rs384(keys: SigningKeys) -> None:
    flexible = SandboxClient.generate("flexible-client", BROKER_ORG, {SCOPE}, alg=None)
    registered = {flexible.kid: {**flexible.public_jwk(), "alg": "RS256"}}
    async with sandbox(flexible, keys) as box:
        box.state.register_client(flexible.registration(keys=registered))
        response = await box.token(box.assertion(header={"alg": "RS384", "kid": flexible.kid}))

    assert response.status_code == 400
    assert response.json() == BAD_SIGNATURE


# Registrations


def test_registration_refuses_bad_org_numbers_and_keys(client: SandboxClient) -> None:
    state = MaskinportenState()
    private = {client.kid: dict(client.private_key.as_dict(private=True))}

    with pytest.raises(ValueError, match="invalid org number"):
        state.register_client(client.registration(orgnr="123456789"))
    with pytest.raises(ValueError, match="public RSA JWK"):
        state.register_client(client.registration(keys=private))
    with pytest.raises(ValueError, match="public RSA JWK"):
        state.register_client(client.registration(keys={"other-kid": client.public_jwk()}))
    with pytest.raises(ValueError, match="not a valid RSA JWK"):
        state.register_client(
            client.registration(keys={client.kid: {"kid": client.kid, "kty": "RSA"}})
        )


def test_a_kid_belongs_to_one_client_only(client: SandboxClient) -> None:
    state = MaskinportenState()
    state.register_client(client.registration())

    with pytest.raises(ValueError, match="kid already registered"):
        state.register_client(client.registration(client_id="copycat"))
