"""authorization_details of type urn:altinn:consent: the enriched consent in the token, the
details' form (MP-301/302/303) and the Altinn lookup rules (altinn-consent.md §2.3, §3.2, §6.1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from broker.sandbox.consents import ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import (
    Delegation,
    MaskinportenConfig,
    SandboxClient,
    consent_details,
)
from broker.sandbox.maskinporten_consent import iso6523
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    BROKER_ORG,
    CUSTOMER_ORG,
    OTHER_ORG,
    RESOURCE_ID,
    SCOPE,
    START,
    SUBJECT_ORG,
    Sandbox,
    add_consent,
    broker_client,
    error,
    sandbox,
    token_claims,
)

INVALID_SCOPES = error("invalid_scope", "MP-200: Token request contains invalid scopes for client")
CONSENT_TYPE = "urn:altinn:consent"


def details_error(text: str) -> dict[str, str]:
    return error("invalid_authorization_details", text)


def consent_error(*problems: str) -> dict[str, str]:
    return error("invalid_request", ", ".join(problems))


@pytest.fixture(scope="module")
def client() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-consent")


@pytest.fixture
async def mp(client: SandboxClient, keys: SigningKeys) -> AsyncIterator[Sandbox]:
    async with sandbox(client, keys) as box:
        yield box


# The token's consent


async def test_a_consent_token_carries_the_enriched_consent(
    mp: Sandbox, client: SandboxClient
) -> None:
    record = add_consent(mp.consents, mp.clock, metadata={"inntektsaar": "2025"})

    details = consent_details(record.id, org_urn(SUBJECT_ORG))
    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 200
    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["authorization_details"] == [
        {
            "type": "urn:altinn:consent",
            "id": str(record.id),
            "from": f"urn:altinn:organization:identifier-no:{SUBJECT_ORG}",
            "to": {"authority": "iso6523-actorid-upis", "ID": f"0192:{BROKER_ORG}"},
            "consented": "2026-03-02T09:26:00+00:00",
            "validTo": "2026-05-31T09:30:00+00:00",
            "consentRights": [
                {
                    "action": ["consent"],
                    "resource": [{"type": "urn:altinn:resource", "value": RESOURCE_ID}],
                    "metadata": {"inntektsaar": "2025"},
                }
            ],
        }
    ]
    assert claims["consumer"] == iso6523(BROKER_ORG)
    assert (claims["scope"], claims["client_id"]) == (SCOPE, client.client_id)
    assert "supplier" not in claims


async def test_consent_times_keep_altinns_fraction_form(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock)
    record.valid_to = START + timedelta(days=3, microseconds=836000)
    record.consented = START - timedelta(microseconds=240451)

    details = consent_details(record.id, SUBJECT_ORG)
    response = await mp.token(mp.assertion(authorization_details=details))

    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    entry = claims["authorization_details"][0]
    assert entry["validTo"] == "2026-03-05T09:30:00.836+00:00"
    assert entry["consented"] == "2026-03-02T09:29:59.759549+00:00"


async def test_a_delegated_consent_token_is_for_the_consumer(mp: Sandbox) -> None:
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)

    details = consent_details(record.id, SUBJECT_ORG)
    response = await mp.token(
        mp.assertion(consumer_org=CUSTOMER_ORG, authorization_details=details)
    )

    assert response.status_code == 200
    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["authorization_details"][0]["to"] == iso6523(CUSTOMER_ORG)
    assert (claims["consumer"], claims["supplier"]) == (iso6523(CUSTOMER_ORG), iso6523(BROKER_ORG))


async def test_a_consent_handled_by_the_client_org_is_found(mp: Sandbox) -> None:
    # altinn-consent.md §6.1: to may match the request's to or its handledBy.
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG, handled_by=org_urn(BROKER_ORG))

    details = consent_details(record.id, SUBJECT_ORG)
    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 200
    claims = token_claims(response.json()["access_token"], mp.keys.public_jwks(), mp.clock)
    assert claims["authorization_details"][0]["to"] == iso6523(CUSTOMER_ORG)
    assert claims["consumer"] == iso6523(BROKER_ORG)


async def test_the_consent_error_shape_is_configurable(
    client: SandboxClient, keys: SigningKeys
) -> None:
    config = MaskinportenConfig(
        base_url=BASE_URL, consent_error_status=403, consent_error="access_denied"
    )
    async with sandbox(client, keys, config) as box:
        record = add_consent(box.consents, box.clock, status=ConsentStatus.CREATED)
        details = consent_details(record.id, SUBJECT_ORG)
        response = await box.token(box.assertion(authorization_details=details))

    assert response.status_code == 403
    assert response.json() == error("access_denied", "AM-00014: Consent is not accepted")


# authorization_details: form (RFC 9396, MP-301/302/303)


@pytest.mark.parametrize(
    ("details", "text"),
    [
        ({"type": CONSENT_TYPE}, "must be a non-empty array"),
        ([], "must be a non-empty array"),
        (["urn:altinn:consent"], "entries must be objects"),
    ],
)
async def test_authorization_details_must_be_an_array_of_objects(
    mp: Sandbox, details: object, text: str
) -> None:
    response = await mp.token(mp.assertion(claims={"authorization_details": details}))

    assert response.status_code == 400
    assert response.json() == details_error(
        f"MP-303: Invalid value in authorization_details: {text}"
    )


async def test_an_unknown_details_type_is_rejected(mp: Sandbox) -> None:
    details = [{"type": "urn:altinn:concent", "id": str(uuid.uuid4())}]

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == details_error(
        "MP-301: Unknown authorization_details type urn:altinn:concent"
    )


async def test_more_than_one_consent_per_grant_is_rejected(mp: Sandbox) -> None:
    first = add_consent(mp.consents, mp.clock)
    second = add_consent(mp.consents, mp.clock)
    details = consent_details(first.id, SUBJECT_ORG) + consent_details(second.id, SUBJECT_ORG)

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == details_error(
        "MP-303: Invalid value in authorization_details: only one entry is allowed per grant"
    )


async def test_unknown_consent_fields_are_rejected(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock)
    details = [{**consent_details(record.id, SUBJECT_ORG)[0], "to": BROKER_ORG, "extra": 1}]

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == details_error(
        "MP-302: Unknown fields in authorization_details: extra, to"
    )


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"id": "not-a-uuid"}, "id must be a UUID"),
        ({"id": 12}, "id must be a UUID"),
        ({"from": SUBJECT_ORG}, "from must be a person or organization URN"),
        ({"from": org_urn("312345670")}, "from must be a person or organization URN"),
        (
            {"from": "urn:altinn:person:identifier-no:123"},
            "from must be a person or organization URN",
        ),
    ],
)
async def test_malformed_consent_values_are_rejected(
    mp: Sandbox, entry: dict[str, Any], text: str
) -> None:
    details = [{**consent_details(uuid.uuid4(), SUBJECT_ORG)[0], **entry}]

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == details_error(
        f"MP-303: Invalid value in authorization_details: {text}"
    )


async def test_a_missing_consent_id_is_rejected(mp: Sandbox) -> None:
    details = [{"type": CONSENT_TYPE, "from": org_urn(SUBJECT_ORG)}]

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == details_error(
        "MP-303: Invalid value in authorization_details: id must be a UUID"
    )


async def test_a_system_user_request_finds_no_system_user(mp: Sandbox) -> None:
    details = [
        {
            "type": "urn:altinn:systemuser",
            "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": f"0192:{CUSTOMER_ORG}"},
        }
    ]

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_altinn_customer_configuration", "MP-303: No system user found for the request"
    )


# authorization_details: the consent lookup (altinn-consent.md §6.1, AM problem codes)


async def test_an_unknown_consent_is_not_found(mp: Sandbox) -> None:
    details = consent_details(uuid.uuid4(), SUBJECT_ORG)

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00001: Consent not found")


@pytest.mark.parametrize(
    "status", [ConsentStatus.CREATED, ConsentStatus.REJECTED, ConsentStatus.DELETED]
)
async def test_a_consent_not_accepted_gives_no_token(mp: Sandbox, status: ConsentStatus) -> None:
    record = add_consent(mp.consents, mp.clock, status=status)

    response = await mp.token(
        mp.assertion(authorization_details=consent_details(record.id, SUBJECT_ORG))
    )

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00014: Consent is not accepted")


async def test_a_revoked_consent_gives_no_token(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock, status=ConsentStatus.REVOKED)

    response = await mp.token(
        mp.assertion(authorization_details=consent_details(record.id, SUBJECT_ORG))
    )

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00011: Consent is revoked")


@pytest.mark.parametrize("past_valid_to", [0, 1])
async def test_an_expired_consent_gives_no_token(mp: Sandbox, past_valid_to: int) -> None:
    record = add_consent(mp.consents, mp.clock, valid_for=timedelta(hours=1))
    mp.clock.advance(3600 + past_valid_to)

    response = await mp.token(
        mp.assertion(authorization_details=consent_details(record.id, SUBJECT_ORG))
    )

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00013: Consent is expired")


async def test_a_consent_from_another_party_is_a_mismatch(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock)

    response = await mp.token(
        mp.assertion(authorization_details=consent_details(record.id, OTHER_ORG))
    )

    assert response.status_code == 400
    assert response.json() == consent_error(
        "AM-00012: The consented party does not match the party requested"
    )


async def test_a_consent_given_to_another_org_is_not_found(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=OTHER_ORG)

    response = await mp.token(
        mp.assertion(authorization_details=consent_details(record.id, SUBJECT_ORG))
    )

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00001: Consent not found")


async def test_a_delegated_consent_must_be_given_to_the_consumer(mp: Sandbox) -> None:
    # The consent is to the vendor itself, but with consumer_org the token's "to" is the customer.
    mp.state.add_delegation(Delegation(CUSTOMER_ORG, BROKER_ORG, SCOPE))
    record = add_consent(mp.consents, mp.clock, to_org=BROKER_ORG)
    details = consent_details(record.id, SUBJECT_ORG)

    response = await mp.token(
        mp.assertion(consumer_org=CUSTOMER_ORG, authorization_details=details)
    )

    assert response.status_code == 400
    assert response.json() == consent_error("AM-00001: Consent not found")


async def test_consent_problems_accumulate_like_altinns(mp: Sandbox) -> None:
    record = add_consent(
        mp.consents,
        mp.clock,
        to_org=OTHER_ORG,
        status=ConsentStatus.REVOKED,
        valid_for=timedelta(0),
    )
    details = consent_details(record.id, CUSTOMER_ORG)

    response = await mp.token(mp.assertion(authorization_details=details))

    assert response.status_code == 400
    assert response.json() == consent_error(
        "AM-00001: Consent not found",
        "AM-00012: The consented party does not match the party requested",
        "AM-00013: Consent is expired",
        "AM-00011: Consent is revoked",
    )


async def test_a_consent_lookup_still_needs_the_scope(mp: Sandbox) -> None:
    record = add_consent(mp.consents, mp.clock)
    details = consent_details(record.id, SUBJECT_ORG)

    response = await mp.token(mp.assertion(omit=("scope",), authorization_details=details))

    assert response.status_code == 400
    assert response.json() == INVALID_SCOPES
