"""The fake Skatteetaten's Altinn 3 consent rules (403 -007), each with its exact body."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from broker.sandbox.consents import PERSON_URN, ConsentStatus, org_urn
from broker.sandbox.skatteetaten_config import SkatteetatenConfig
from tests.sandbox.skatteetaten_helpers import (
    CONSUMER,
    ISSUER,
    MIGRATED_RESOURCE,
    OTHER_SUBJECT,
    SUBJECT,
    SUPPLIER,
    Sandbox,
    call,
    expect,
    iso_party,
    make_sandbox,
    url,
)

CONSENT = "Feil i forbindelse med samtykke."


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


def consent_detail(sandbox: Sandbox, **changes: object) -> dict[str, Any]:
    claims = sandbox.consent_claims(sandbox.add_consent())
    detail: dict[str, Any] = claims["authorization_details"][0]
    detail.update(changes)
    return detail


async def refused(sandbox: Sandbox, claims: dict[str, Any]) -> tuple[int, Any]:
    return await call(sandbox, sandbox.headers(sandbox.token(claims)))


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (None, "Tokenet inneholder ikke noe samtykke."),
        ([], "Tokenet inneholder ikke noe samtykke."),
        ("urn:altinn:consent", "Tokenet inneholder ikke noe samtykke."),
        ([{"type": "urn:altinn:systemuser"}], "Tokenet inneholder ikke noe samtykke."),
        ([{"type": "urn:altinn:concent"}], "Tokenet inneholder ikke noe samtykke."),
    ],
)
async def test_token_without_a_consent_is_403_007(
    sandbox: Sandbox, details: object, reason: str
) -> None:
    claims = sandbox.plain_claims()
    if details is not None:
        claims["authorization_details"] = details
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_two_consents_in_one_token_are_403_007(sandbox: Sandbox) -> None:
    details = [consent_detail(sandbox), consent_detail(sandbox)]
    claims = sandbox.plain_claims(authorization_details=details)
    reason = "Tokenet inneholder mer enn ett samtykke."
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


@pytest.mark.parametrize(
    "subject",
    [
        org_urn(OTHER_SUBJECT),
        SUBJECT,
        f"0192:{SUBJECT}",
        PERSON_URN + "23886799519",
        "urn:altinn:organization:identifier-no:974761076 ",
        None,
    ],
)
async def test_consent_from_another_party_is_403_007(sandbox: Sandbox, subject: object) -> None:
    claims = sandbox.plain_claims(
        authorization_details=[consent_detail(sandbox, **{"from": subject})]
    )
    reason = "Samtykket er ikke gitt av den forespurte organisasjonen."
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_a_consent_for_another_org_does_not_open_this_one(sandbox: Sandbox) -> None:
    sandbox.state.set_fixture(OTHER_SUBJECT)
    headers = sandbox.authorised(OTHER_SUBJECT)
    reason = "Samtykket er ikke gitt av den forespurte organisasjonen."
    assert await call(sandbox, headers) == (403, expect("007", f"{CONSENT} {reason}"))
    status, _ = await call(sandbox, headers, url(OTHER_SUBJECT))
    assert status == 200


@pytest.mark.parametrize(
    "to",
    [
        iso_party(SUPPLIER),
        {"authority": "other", "ID": f"0192:{CONSUMER}"},
        org_urn(CONSUMER),
        None,
    ],
)
async def test_consent_to_another_party_than_the_consumer_is_403_007(
    sandbox: Sandbox, to: object
) -> None:
    claims = sandbox.plain_claims(authorization_details=[consent_detail(sandbox, to=to)])
    reason = "Samtykket er ikke gitt til konsumenten."
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_consent_to_consumer_rule_can_be_switched_off() -> None:
    config = SkatteetatenConfig(issuer=ISSUER, require_consent_to_consumer=False)
    sandbox = make_sandbox(config=config)
    claims = sandbox.plain_claims(
        authorization_details=[consent_detail(sandbox, to=iso_party(SUPPLIER))]
    )
    status, _ = await refused(sandbox, claims)
    assert status == 200


async def test_vendor_token_for_a_consumer_is_accepted(sandbox: Sandbox) -> None:
    claims = sandbox.consent_claims(
        sandbox.add_consent(),
        supplier=iso_party(SUPPLIER),
        delegation_source="https://tt02.altinn.no/",
    )
    status, _ = await refused(sandbox, claims)
    assert status == 200


@pytest.mark.parametrize(
    ("valid_to", "reason"),
    [
        ("2026-01-15T10:00:00+00:00", "Samtykket er utløpt."),
        ("2026-01-15T10:59:59+01:00", "Samtykket er utløpt."),
        ("2026-04-15T10:00:00", "Samtykket har ugyldig validTo."),
        ("neste uke", "Samtykket har ugyldig validTo."),
        (1776247200, "Samtykket har ugyldig validTo."),
        (None, "Samtykket har ugyldig validTo."),
    ],
)
async def test_consent_valid_to_must_be_ahead(
    sandbox: Sandbox, valid_to: object, reason: str
) -> None:
    claims = sandbox.plain_claims(authorization_details=[consent_detail(sandbox, validTo=valid_to)])
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_consent_valid_to_with_z_suffix_is_accepted(sandbox: Sandbox) -> None:
    detail = consent_detail(sandbox, validTo="2026-04-15T10:34:34.836Z")
    status, _ = await refused(sandbox, sandbox.plain_claims(authorization_details=[detail]))
    assert status == 200


async def test_consent_expiring_between_mint_and_call_is_403_007(sandbox: Sandbox) -> None:
    record = sandbox.add_consent(valid_for=timedelta(seconds=30))
    token = sandbox.consent_token(record)
    sandbox.clock.advance(30)
    reason = "Samtykket er utløpt."
    assert await call(sandbox, sandbox.headers(token)) == (
        403,
        expect("007", f"{CONSENT} {reason}"),
    )


@pytest.mark.parametrize(
    "rights",
    [
        [
            {
                "action": ["consent"],
                "resource": [
                    {"type": "urn:altinn:resource", "value": "ske-samtykke-krav-og-betalinger"}
                ],
            }
        ],
        [
            {
                "action": ["consent"],
                "resource": [{"type": "urn:altinn:app", "value": "digdir_5616_2"}],
            }
        ],
        [{"action": ["consent"], "resource": "digdir_5616_2"}],
        [{"action": ["consent"]}],
        [],
        None,
        "digdir-oppdragutenlandskevirksomheter-skatteetaten",
    ],
)
async def test_consent_for_another_resource_is_403_007(sandbox: Sandbox, rights: object) -> None:
    claims = sandbox.plain_claims(
        authorization_details=[consent_detail(sandbox, consentRights=rights)]
    )
    reason = "Samtykket gjelder ikke denne tjenesten."
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_migrated_altinn_2_resource_is_accepted(sandbox: Sandbox) -> None:
    token = sandbox.consent_token(sandbox.add_consent(resource=MIGRATED_RESOURCE))
    status, _ = await call(sandbox, sandbox.headers(token))
    assert status == 200


@pytest.mark.parametrize("consent_id", ["not-a-uuid", "ECBFF842199B45C98B5880ED4D813660", 42, None])
async def test_consent_with_a_malformed_id_is_403_007(sandbox: Sandbox, consent_id: object) -> None:
    claims = sandbox.plain_claims(authorization_details=[consent_detail(sandbox, id=consent_id)])
    reason = "Samtykket har ugyldig id."
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_consent_unknown_to_altinn_is_403_007(sandbox: Sandbox) -> None:
    detail = consent_detail(sandbox, id="ecbff842-199b-45c9-8b58-80ed4d813660")
    reason = "Samtykket finnes ikke i Altinn."
    claims = sandbox.plain_claims(authorization_details=[detail])
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} {reason}"))


@pytest.mark.parametrize(
    "status",
    [ConsentStatus.REVOKED, ConsentStatus.DELETED, ConsentStatus.EXPIRED, ConsentStatus.REJECTED],
)
async def test_consent_no_longer_accepted_at_altinn_is_403_007(
    sandbox: Sandbox, status: ConsentStatus
) -> None:
    record = sandbox.add_consent()
    token = sandbox.consent_token(record)
    sandbox.register.set_status(record, status, at=sandbox.clock.now(), performed_by=None)
    reason = f"Samtykket har status {status}."
    assert await call(sandbox, sandbox.headers(token)) == (
        403,
        expect("007", f"{CONSENT} {reason}"),
    )


async def test_consent_expired_at_altinn_is_403_007(sandbox: Sandbox) -> None:
    record = sandbox.add_consent(valid_for=timedelta(seconds=10))
    detail = consent_detail(sandbox, id=str(record.id), validTo="2026-06-01T00:00:00+00:00")
    sandbox.clock.advance(10)
    claims = sandbox.plain_claims(authorization_details=[detail])
    assert await refused(sandbox, claims) == (403, expect("007", f"{CONSENT} Samtykket er utløpt."))


async def test_register_lookup_can_be_switched_off() -> None:
    sandbox = make_sandbox(config=SkatteetatenConfig(issuer=ISSUER, check_consent_register=False))
    record = sandbox.add_consent()
    token = sandbox.consent_token(record)
    sandbox.register.set_status(
        record, ConsentStatus.REVOKED, at=sandbox.clock.now(), performed_by=None
    )
    status, _ = await call(sandbox, sandbox.headers(token))
    assert status == 200


async def test_altinn_samtykke_header_next_to_an_a3_token_is_403_007(sandbox: Sandbox) -> None:
    headers = sandbox.authorised(AltinnSamtykke="eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    reason = "AltinnSamtykke kan ikke sendes sammen med Altinn 3-samtykke."
    assert await call(sandbox, headers) == (403, expect("007", f"{CONSENT} {reason}"))


async def test_altinn_samtykke_rule_can_be_switched_off() -> None:
    config = SkatteetatenConfig(issuer=ISSUER, reject_altinn_samtykke_header=False)
    sandbox = make_sandbox(config=config)
    status, _ = await call(sandbox, sandbox.authorised(AltinnSamtykke="x"))
    assert status == 200


async def test_path_validation_comes_before_consent(sandbox: Sandbox) -> None:
    token = sandbox.token(sandbox.plain_claims())
    status, body = await call(sandbox, sandbox.headers(token), url("123456789"))
    assert (status, body["kode"]) == (400, "OPPDRAGUTENLANDSKEVIRKSOMHETER-006")
