"""The fake Maskinporten: metadata, JWKS and rotation, issued tokens, counters and faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from broker.sandbox.clock import Clock
from broker.sandbox.jose import SigningKeys, decode_unverified_header, verify_jwt
from broker.sandbox.maskinporten import (
    Delegation,
    Fault,
    MaskinportenConfig,
    MaskinportenState,
    SandboxClient,
    ScopeRule,
    consent_details,
    create_app,
    issuer_jwks,
)
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    BROKER_ORG,
    CUSTOMER_ORG,
    ISSUER,
    OTHER_SCOPE,
    SCOPE,
    START,
    SUBJECT_ORG,
    Sandbox,
    broker_client,
    error,
    fetch_token,
    sandbox,
    token_claims,
)


@pytest.fixture(scope="module")
def client() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-test")


@pytest.fixture
async def mp(client: SandboxClient, keys: SigningKeys) -> AsyncIterator[Sandbox]:
    async with sandbox(client, keys) as box:
        yield box


async def test_metadata_lists_the_fields_maskinporten_publishes(mp: Sandbox) -> None:
    response = await mp.http.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    assert response.json() == {
        "issuer": "http://maskinporten.test/",
        "token_endpoint": "http://maskinporten.test/token",
        "jwks_uri": "http://maskinporten.test/jwk",
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
        "authorization_details_types_supported": ["urn:altinn:systemuser", "urn:altinn:consent"],
    }


@pytest.mark.parametrize("base_url", ["http://mp.test", "http://mp.test/"])
def test_the_issuer_ends_in_exactly_one_slash(base_url: str) -> None:
    config = MaskinportenConfig(base_url=base_url)

    assert (config.issuer, config.token_endpoint) == ("http://mp.test/", "http://mp.test/token")


async def test_jwk_publishes_both_public_signing_keys(mp: Sandbox, keys: SigningKeys) -> None:
    response = await mp.http.get("/jwk")

    assert response.status_code == 200
    published = response.json()["keys"]
    assert [key["kid"] for key in published] == [key["kid"] for key in keys.public_jwks()["keys"]]
    assert len(published) == 2
    assert all(key["kty"] == "RSA" and "d" not in key for key in published)


async def test_the_token_endpoint_only_takes_post(mp: Sandbox) -> None:
    response = await mp.http.get("/token")

    assert response.status_code == 405


async def test_a_plain_scope_token_carries_the_documented_claims(
    mp: Sandbox, client: SandboxClient
) -> None:
    response = await mp.token(mp.assertion())

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": 120,
        "scope": SCOPE,
    }
    header = decode_unverified_header(body["access_token"])
    assert (header["alg"], header["kid"]) == ("RS256", mp.keys.primary_kid)
    claims = token_claims(body["access_token"], mp.keys.public_jwks(), mp.clock)
    now = mp.clock.timestamp()
    assert claims == {
        "iss": ISSUER,
        "client_amr": "private_key_jwt",
        "token_type": "Bearer",
        "aud": "unspecified",
        "scope": SCOPE,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{BROKER_ORG}"},
        "client_id": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": claims["jti"],
    }
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 32


async def test_two_tokens_get_different_jtis(mp: Sandbox) -> None:
    first = (await mp.token(mp.assertion())).json()["access_token"]
    second = (await mp.token(mp.assertion())).json()["access_token"]

    jwks = mp.keys.public_jwks()
    assert token_claims(first, jwks, mp.clock)["jti"] != token_claims(second, jwks, mp.clock)["jti"]


async def test_a_delegated_token_names_consumer_supplier_and_source(mp: Sandbox) -> None:
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))

    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 200
    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": f"0192:{CUSTOMER_ORG}"}
    assert claims["supplier"] == {"authority": "iso6523-actorid-upis", "ID": f"0192:{BROKER_ORG}"}
    assert claims["delegation_source"] == "https://tt02.altinn.no/"
    assert "authorization_details" not in claims


async def test_the_delegation_source_comes_from_the_scope_rule(mp: Sandbox) -> None:
    mp.state.register_scope(ScopeRule(SCOPE, delegation_source="https://www.altinn.no"))
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))

    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["delegation_source"] == "https://www.altinn.no"


async def test_a_requested_resource_becomes_the_audience(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(claims={"resource": ["https://api.test/"]}))

    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["aud"] == "https://api.test/"


async def test_a_pid_is_carried_into_the_token(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(claims={"pid": "05848998356"}))

    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["pid"] == "05848998356"


async def test_the_lifetime_is_the_lowest_of_client_and_scope_limits(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(
        base_url=BASE_URL, token_lifetime=600, scopes=(ScopeRule(OTHER_SCOPE, at_max_age=30),)
    )
    async with sandbox(client, keys, config) as box:
        plain = await box.token(box.assertion())
        capped = await box.token(box.assertion(scope=OTHER_SCOPE))
        box.state.register_client(client.registration(access_token_lifetime=90))
        own = await box.token(box.assertion())

    assert [r.json()["expires_in"] for r in (plain, capped, own)] == [600, 30, 90]
    claims = verify_jwt(plain.json()["access_token"], keys.public_jwks(), now=box.clock.timestamp())
    assert claims["exp"] - claims["iat"] == 600


async def test_aud_can_be_left_out_when_no_resource_was_asked_for(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, unrequested_audience=None)
    async with sandbox(client, keys, config) as box:
        response = await box.token(box.assertion())

    claims = token_claims(response.json()["access_token"], keys.public_jwks(), box.clock)
    assert "aud" not in claims


async def test_a_resource_string_is_accepted_when_switched_on(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, accept_resource_string=True)
    async with sandbox(client, keys, config) as box:
        response = await box.token(box.assertion(claims={"resource": "https://api.test/"}))

    claims = token_claims(response.json()["access_token"], keys.public_jwks(), box.clock)
    assert claims["aud"] == "https://api.test/"


async def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
    client: SandboxClient,
) -> None:
    keys = SigningKeys.generate(2, prefix="rotating")
    async with sandbox(client, keys) as box:
        before = (await box.token(box.assertion())).json()["access_token"]
        old_kid = keys.primary_kid
        keys.rotate()
        after = (await box.token(box.assertion())).json()["access_token"]
        published = (await box.http.get("/jwk")).json()

    assert decode_unverified_header(before)["kid"] == old_kid
    assert decode_unverified_header(after)["kid"] == keys.primary_kid != old_kid
    assert {key["kid"] for key in published["keys"]} == {old_kid, keys.primary_kid}
    now = box.clock.timestamp()
    assert verify_jwt(before, published, now=now)["client_id"] == client.client_id
    assert verify_jwt(after, published, now=now)["client_id"] == client.client_id


async def test_counters_count_requests_per_client_key_failures_and_tokens(
    mp: Sandbox, client: SandboxClient
) -> None:
    await mp.token(mp.assertion())
    await mp.token(mp.assertion(claims={"aud": BASE_URL}))
    await mp.token(mp.assertion(scope="unknown:scope"))

    assert mp.state.token_requests() == {(client.client_id, client.kid): 3}
    assert mp.state.failures() == {"invalid_grant": 1, "invalid_scope": 1}
    assert mp.state.tokens_issued() == {(client.client_id, SCOPE, None): 1}

    mp.state.reset()

    assert (mp.state.token_requests(), mp.state.failures(), mp.state.tokens_issued()) == (
        {},
        {},
        {},
    )
    assert mp.state.client(client.client_id) is not None


async def test_an_injected_fault_answers_once_then_service_resumes(mp: Sandbox) -> None:
    fault = Fault(503, "temporarily_unavailable", "Service unavailable", retry_after=7)
    mp.state.fail_next(fault)

    failed = await mp.token(mp.assertion())
    recovered = await mp.token(mp.assertion())

    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "7"
    assert failed.json() == {
        "error": "temporarily_unavailable",
        "error_description": "Service unavailable",
    }
    assert recovered.status_code == 200


async def test_fetch_token_gives_a_token_other_tests_can_use(
    mp: Sandbox, client: SandboxClient
) -> None:
    token = await fetch_token(mp.http, client, now=mp.clock.timestamp())

    assert token_claims(token, mp.keys.public_jwks(), mp.clock)["scope"] == SCOPE


def test_consent_details_builds_the_grant_entry() -> None:
    details = consent_details("0a7d59f8-8c62-4312-9fb4-62456664c96f", SUBJECT_ORG)

    assert details == [
        {
            "type": "urn:altinn:consent",
            "id": "0a7d59f8-8c62-4312-9fb4-62456664c96f",
            "from": f"urn:altinn:organization:identifier-no:{SUBJECT_ORG}",
        }
    ]


def test_create_app_exposes_state_keys_and_seeds(client: SandboxClient, keys: SigningKeys) -> None:
    config = MaskinportenConfig(
        base_url=BASE_URL,
        clients=(client.registration(),),
        delegations=(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE),),
    )
    state = MaskinportenState()

    app = create_app(config, Clock(START), state=state, keys=keys)

    assert app.state.maskinporten is state
    assert app.state.signing_keys is keys
    assert state.client(client.client_id) == client.registration()
    assert state.delegations() == [Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE)]


async def test_defaults_give_a_working_fake_with_its_own_keys(client: SandboxClient) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, clients=(client.registration(),))
    clock = Clock(START)
    app = create_app(config, clock)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        token = await fetch_token(http, client, now=clock.timestamp())
        published = (await http.get("/jwk")).json()

    jwks = issuer_jwks(app)
    assert published == jwks()
    assert verify_jwt(token, jwks(), now=clock.timestamp())["iss"] == ISSUER


async def test_issuer_jwks_follows_rotation(client: SandboxClient) -> None:
    keys = SigningKeys.generate(2, prefix="followed")
    app = create_app(MaskinportenConfig(base_url=BASE_URL), Clock(START), keys=keys)
    jwks = issuer_jwks(app)
    before = [key["kid"] for key in jwks()["keys"]]

    keys.rotate()

    assert [key["kid"] for key in jwks()["keys"]] == [*before[1:], before[0]]


async def test_metadata_lists_only_the_configured_algorithms(keys: SigningKeys) -> None:
    flexible = SandboxClient.generate("flexible-client", BROKER_ORG, {SCOPE}, alg=None)
    config = MaskinportenConfig(base_url=BASE_URL, assertion_algorithms=("RS256",))
    async with sandbox(flexible, keys, config) as box:
        document = (await box.http.get("/.well-known/oauth-authorization-server")).json()
        refused = await box.token(box.assertion(header={"alg": "RS512", "kid": flexible.kid}))

    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS256"]
    assert refused.json() == error(
        "invalid_grant",
        "Invalid assertion. Client authentication failed. Unsupported JWT algorithm",
    )


async def test_descriptions_leave_out_mp_codes_when_switched_off(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, mp_codes_in_descriptions=False)
    async with sandbox(client, keys, config) as box:
        response = await box.token(box.assertion(claims={"aud": BASE_URL}))

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_grant", "Invalid assertion. Client authentication failed. Invalid JWT claim aud"
    )
