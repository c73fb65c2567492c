"""Reading claims: consumer/supplier of a token (for authenticating procurement systems), party
identifiers in both forms, and the checks on a consent token's consent entry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.maskinporten.claims import (
    ExpectedConsent,
    TokenParties,
    consent_token_from_claims,
    iso6523_orgnr,
    party_orgnr,
    token_parties,
)
from broker.maskinporten.errors import TokenInvalid
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import SandboxClient
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import (
    BROKER_ORG,
    CUSTOMER_ORG,
    OTHER_ORG,
    SCOPE,
    SUBJECT_ORG,
    broker_client,
    fetch_token,
    token_claims,
)

CONSENT_ID = uuid.UUID("ecbff842-199b-45c9-8b58-80ed4d813660")
EXPECTED = ExpectedConsent(CONSENT_ID, SUBJECT_ORG, CUSTOMER_ORG, CUSTOMER_ORG)


def iso(orgnr: str) -> dict[str, str]:
    return {"authority": "iso6523-actorid-upis", "ID": f"0192:{orgnr}"}


def consent_claims(**entry: Any) -> dict[str, Any]:
    """Claims shaped like altinn-consent.md §3.2's example, with ``entry`` changes."""
    detail: dict[str, Any] = {
        "type": "urn:altinn:consent",
        "id": str(CONSENT_ID),
        "from": f"urn:altinn:organization:identifier-no:{SUBJECT_ORG}",
        "to": iso(CUSTOMER_ORG),
        "consented": "2026-01-15T10:34:39.676924+00:00",
        "validTo": "2026-01-20T10:34:34.836+00:00",
        "consentRights": [
            {
                "action": ["consent"],
                "resource": [{"type": "urn:altinn:resource", "value": "r1"}],
                "metadata": {"inntektsaar": "2028"},
            }
        ],
    }
    detail.update(entry)
    return {
        "authorization_details": [{k: v for k, v in detail.items() if v is not None}],
        "scope": SCOPE,
        "supplier": iso(BROKER_ORG),
        "consumer": iso(CUSTOMER_ORG),
        "iat": 1768473280,
        "exp": 1768473780,
    }


def refusal(claims: dict[str, Any], expected: ExpectedConsent = EXPECTED) -> str:
    with pytest.raises(TokenInvalid) as caught:
        consent_token_from_claims("token", claims, expected)
    return caught.value.reason


# Parties of a token


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp-claims")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


async def test_a_delegated_tokens_parties_are_consumer_and_supplier(mp: Fake) -> None:
    token = await fetch_token(
        mp.http, mp.registered, now=mp.clock.timestamp(), consumer_org=CUSTOMER_ORG
    )

    parties = token_parties(token_claims(token, mp.keys.public_jwks(), mp.clock))

    assert parties == TokenParties(consumer=CUSTOMER_ORG, supplier=BROKER_ORG)


async def test_a_plain_token_has_no_supplier(mp: Fake) -> None:
    token = await fetch_token(mp.http, mp.registered, now=mp.clock.timestamp())

    parties = token_parties(await mp.verifier().verify(token))

    assert parties == TokenParties(consumer=BROKER_ORG, supplier=None)


@pytest.mark.parametrize(
    "consumer",
    [
        None,
        "0192:310000027",
        {"authority": "iso6523-actorid-upis"},
        {"authority": "iso6523-actorid-upis", "ID": 310000027},
        {"authority": "other", "ID": "0192:310000027"},
        {"authority": "iso6523-actorid-upis", "ID": "0007:310000027"},
        {"authority": "iso6523-actorid-upis", "ID": "0192:31000002"},
        {"authority": "iso6523-actorid-upis", "ID": "0192:991825827:ER//987464291:1"},
    ],
)
def test_an_unreadable_consumer_is_refused(consumer: object) -> None:
    with pytest.raises(TokenInvalid, match="missing or unsupported consumer"):
        token_parties({"consumer": consumer})


def test_an_unreadable_supplier_is_refused() -> None:
    with pytest.raises(TokenInvalid, match="unsupported supplier"):
        token_parties({"consumer": iso(CUSTOMER_ORG), "supplier": {"ID": "0192:310000019"}})


@pytest.mark.parametrize(
    ("value", "orgnr"),
    [
        (iso(SUBJECT_ORG), SUBJECT_ORG),
        (f"urn:altinn:organization:identifier-no:{SUBJECT_ORG}", SUBJECT_ORG),
        ("urn:altinn:person:identifier-no:23886799519", None),
        ("urn:altinn:organization:identifier-no:12345", None),
        (SUBJECT_ORG, None),
        (None, None),
        (["0192:312345676"], None),
    ],
)
def test_parties_are_read_from_either_form(value: object, orgnr: str | None) -> None:
    assert party_orgnr(value) == orgnr


def test_iso6523_reads_only_objects() -> None:
    assert iso6523_orgnr(iso(BROKER_ORG)) == BROKER_ORG
    assert iso6523_orgnr(f"urn:altinn:organization:identifier-no:{BROKER_ORG}") is None


# The consent entry


def test_the_reference_example_is_read() -> None:
    token = consent_token_from_claims("raw-token", consent_claims(), EXPECTED)

    assert (token.token, token.consent_id) == ("raw-token", CONSENT_ID)
    assert (token.subject_org, token.requestor_org) == (SUBJECT_ORG, CUSTOMER_ORG)
    assert token.resources == ("r1",)
    assert token.valid_to == datetime(2026, 1, 20, 10, 34, 34, 836000, tzinfo=UTC)
    assert token.consented_at == datetime(2026, 1, 15, 10, 34, 39, 676924, tzinfo=UTC)
    assert token.expires_at == datetime.fromtimestamp(1768473780, UTC)


def test_parties_in_the_other_form_and_other_offsets_are_read() -> None:
    claims = consent_claims(
        **{
            "from": iso(SUBJECT_ORG),
            "to": f"urn:altinn:organization:identifier-no:{CUSTOMER_ORG}",
            "consented": "2026-01-15T11:34:39.6769241+01:00",
            "validTo": "2026-01-20T10:34:34Z",
        }
    )

    token = consent_token_from_claims("t", claims, EXPECTED)

    assert token.consented_at == datetime(2026, 1, 15, 10, 34, 39, 676924, tzinfo=UTC)
    assert token.valid_to == datetime(2026, 1, 20, 10, 34, 34, tzinfo=UTC)


def test_resources_of_all_rights_are_collected_once() -> None:
    right = {"action": ["consent"], "resource": [{"type": "urn:altinn:resource", "value": "r1"}]}
    migrated = {**right, "resource": [{"type": "urn:altinn:resource", "value": "digdir_5616_2"}]}

    token = consent_token_from_claims(
        "t", consent_claims(consentRights=[right, migrated, right]), EXPECTED
    )

    assert token.resources == ("r1", "digdir_5616_2")


def test_the_consumer_is_checked_only_in_vendor_mode() -> None:
    claims = {**consent_claims(), "consumer": iso(BROKER_ORG)}
    own = ExpectedConsent(CONSENT_ID, SUBJECT_ORG, CUSTOMER_ORG, None)

    assert refusal(claims) == "consumer mismatch"
    assert consent_token_from_claims("t", claims, own).requestor_org == CUSTOMER_ORG


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"id": str(uuid.uuid4())}, "consent id mismatch"),
        ({"id": None}, "consent id mismatch"),
        (
            {"from": f"urn:altinn:organization:identifier-no:{OTHER_ORG}"},
            "consent subject mismatch",
        ),
        ({"from": "urn:altinn:person:identifier-no:23886799519"}, "consent subject mismatch"),
        ({"to": iso(OTHER_ORG)}, "consent recipient mismatch"),
        ({"to": None}, "consent recipient mismatch"),
        ({"consentRights": []}, "malformed consent rights"),
        ({"consentRights": None}, "malformed consent rights"),
        ({"consentRights": ["right"]}, "malformed consent rights"),
        ({"consentRights": [{"resource": []}]}, "malformed consent rights"),
        ({"consentRights": [{"resource": [{"value": ""}]}]}, "malformed consent rights"),
        ({"consentRights": [{"resource": ["r1"]}]}, "malformed consent rights"),
        ({"validTo": None}, "malformed consent time"),
        ({"validTo": "next week"}, "malformed consent time"),
        ({"consented": "2026-01-15T10:34:39"}, "malformed consent time"),
        ({"consented": 1768473280}, "malformed consent time"),
    ],
)
def test_a_consent_entry_that_does_not_match_or_parse_is_refused(
    entry: dict[str, Any], reason: str
) -> None:
    assert refusal(consent_claims(**entry)) == reason


@pytest.mark.parametrize(
    "details",
    [
        None,
        "urn:altinn:consent",
        [],
        [{"type": "urn:altinn:systemuser"}],
        [consent_claims()["authorization_details"][0]] * 2,
    ],
)
def test_exactly_one_consent_entry_is_expected(details: object) -> None:
    claims = {**consent_claims(), "authorization_details": details}

    assert refusal(claims) == "expected exactly one consent in the token"


@pytest.mark.parametrize("exp", [None, "1768473780", True])
def test_the_tokens_expiry_must_be_a_number(exp: object) -> None:
    assert refusal({**consent_claims(), "exp": exp}) == "missing exp"
