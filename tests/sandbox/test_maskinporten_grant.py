"""The fake Maskinporten refuses scopes and delegations the client may not have, and request
claims of the wrong form (maskinporten.md §1.4, §1.7, §3.1, §6.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import (
    Delegation,
    MaskinportenConfig,
    SandboxClient,
    ScopeRule,
)
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    BROKER_ORG,
    CUSTOMER_ORG,
    OTHER_ORG,
    OTHER_SCOPE,
    SCOPE,
    Sandbox,
    broker_client,
    error,
    sandbox,
)

INVALID_VALUE = error("invalid_request", "MP-011: Invalid assertion. Invalid parameter value")
INVALID_SCOPES = error("invalid_scope", "MP-200: Token request contains invalid scopes for client")


def not_delegated(consumer: str = CUSTOMER_ORG, scope: str = SCOPE) -> dict[str, str]:
    text = f"Consumer {consumer} has not delegated access to the scope {scope}"
    return error("forbidden", f"MP-251: {text} to supplier {BROKER_ORG}.")


@pytest.fixture(scope="module")
def client() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-grant")


@pytest.fixture
async def mp(client: SandboxClient, keys: SigningKeys) -> AsyncIterator[Sandbox]:
    async with sandbox(client, keys) as box:
        yield box


# Scopes


@pytest.mark.parametrize(
    "scope", ["unknown:scope", f"{SCOPE} unknown:scope", "", "   ", f"{SCOPE.upper()}"]
)
async def test_a_scope_not_registered_on_the_client_is_invalid(mp: Sandbox, scope: str) -> None:
    response = await mp.token(mp.assertion(scope=scope))

    assert response.status_code == 400
    assert response.json() == INVALID_SCOPES


async def test_a_missing_scope_is_invalid(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(omit=("scope",)))

    assert response.status_code == 400
    assert response.json() == INVALID_SCOPES


async def test_a_scope_array_is_an_invalid_parameter(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(claims={"scope": [SCOPE]}))

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


async def test_two_registered_scopes_are_granted_together(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(scope=f"{SCOPE} {OTHER_SCOPE}"))

    assert response.status_code == 200
    assert response.json()["scope"] == f"{SCOPE} {OTHER_SCOPE}"


async def test_a_scope_closed_to_maskinporten_is_invalid(mp: Sandbox) -> None:
    mp.state.register_scope(ScopeRule(SCOPE, maskinporten_allowed=False))

    response = await mp.token(mp.assertion())

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_scope", "MP-201: Token request contains scopes not allowed for maskinporten"
    )


async def test_a_consumer_the_owner_has_not_granted_is_forbidden(mp: Sandbox) -> None:
    mp.state.register_scope(ScopeRule(SCOPE, consumers=frozenset({OTHER_ORG})))

    response = await mp.token(mp.assertion())

    assert response.status_code == 403
    assert response.json() == error(
        "forbidden", f"MP-250: Consumer has not been granted access to the scope {SCOPE}"
    )


async def test_a_granted_consumer_gets_the_scope(mp: Sandbox) -> None:
    rule = ScopeRule(SCOPE, consumers=frozenset({CUSTOMER_ORG}), delegation_source="https://x/")
    mp.state.register_scope(rule)
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))

    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 200


async def test_the_forbidden_status_is_configurable(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(base_url=BASE_URL, forbidden_status=400)
    async with sandbox(client, keys, config) as box:
        response = await box.token(box.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 400
    assert response.json() == not_delegated()


# consumer_org and delegation


async def test_consumer_org_without_a_delegation_is_forbidden(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 403
    assert response.json() == not_delegated()


@pytest.mark.parametrize(
    "delegation",
    [
        Delegation(CUSTOMER_ORG, BROKER_ORG, OTHER_SCOPE),
        Delegation(CUSTOMER_ORG, OTHER_ORG, SCOPE),
        Delegation(OTHER_ORG, BROKER_ORG, SCOPE),
    ],
)
async def test_a_delegation_for_another_scope_or_party_does_not_count(
    mp: Sandbox, delegation: Delegation
) -> None:
    mp.state.add_delegation(delegation)

    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 403
    assert response.json() == not_delegated()


async def test_a_removed_delegation_stops_working(mp: Sandbox) -> None:
    delegation = Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE)
    mp.state.add_delegation(delegation)
    granted = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))
    mp.state.remove_delegation(delegation)

    refused = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert (granted.status_code, refused.status_code) == (200, 403)


async def test_a_scope_without_delegation_source_cannot_be_delegated(mp: Sandbox) -> None:
    mp.state.register_scope(ScopeRule(SCOPE, delegation_source=None))
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))

    response = await mp.token(mp.assertion(consumer_org=CUSTOMER_ORG))

    assert response.status_code == 403
    assert response.json() == not_delegated()


async def test_every_requested_scope_needs_its_delegation(mp: Sandbox) -> None:
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))

    assertion = mp.assertion(scope=f"{SCOPE} {OTHER_SCOPE}", consumer_org=CUSTOMER_ORG)
    response = await mp.token(assertion)

    assert response.status_code == 403
    assert response.json() == not_delegated(scope=OTHER_SCOPE)


async def test_consumer_org_equal_to_the_clients_own_org_is_invalid(mp: Sandbox) -> None:
    response = await mp.token(mp.assertion(consumer_org=BROKER_ORG))

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request",
        "The combination consumer_org in claim and delegation scope on client is invalid",
    )


@pytest.mark.parametrize("consumer_org", ["310000020", "31000002", 310000027, ""])
async def test_a_malformed_consumer_org_is_an_invalid_parameter(
    mp: Sandbox, consumer_org: object
) -> None:
    response = await mp.token(mp.assertion(claims={"consumer_org": consumer_org}))

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE


# Other claims' forms


@pytest.mark.parametrize(
    "claims",
    [
        {"iss_onbehalfof": "sub-client"},
        {"pid": "123"},
        {"pid": 5848998356},
        {"resource": "https://api.test/"},
        {"resource": []},
        {"resource": [""]},
    ],
)
async def test_claims_of_the_wrong_form_are_invalid_parameters(
    mp: Sandbox, claims: dict[str, Any]
) -> None:
    response = await mp.token(mp.assertion(claims=claims))

    assert response.status_code == 400
    assert response.json() == INVALID_VALUE
