"""MaskinportenClient against the fake: plain, delegated and consent tokens, and how each
refusal of the token endpoint becomes one of the ports' errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from broker.consent.ports import (
    ConsentToken,
    ConsentTokens,
    ConsentUnavailable,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.maskinporten.client import SKATTEETATEN_SCOPE, AccessToken
from broker.maskinporten.keys import load_client_key
from broker.sandbox.consents import ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import MaskinportenConfig, SandboxClient
from broker.sandbox.maskinporten_consent import iso6523
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import (
    BASE_URL,
    BROKER_ORG,
    CUSTOMER_ORG,
    ISSUER,
    OTHER_ORG,
    OTHER_SCOPE,
    RESOURCE_ID,
    SCOPE,
    START,
    SUBJECT_ORG,
    add_consent,
    broker_client,
    token_claims,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-client")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


# Happy paths


async def test_a_plain_token_is_for_the_clients_own_org(mp: Fake) -> None:
    token = await mp.client().access_token(OTHER_SCOPE)

    claims = token_claims(token.token, mp.keys.public_jwks(), mp.clock)
    assert (claims["scope"], claims["consumer"]) == (OTHER_SCOPE, iso6523(BROKER_ORG))
    assert "supplier" not in claims
    assert token.expires_at == START + timedelta(seconds=120)
    assert token.scope == OTHER_SCOPE
    assert mp.state.tokens_issued() == {("broker-client", OTHER_SCOPE, None): 1}


async def test_the_request_is_a_form_with_only_grant_type_and_assertion(mp: Fake) -> None:
    await mp.client().access_token(SCOPE)

    (request,) = mp.traffic.requests
    assert (request.method, str(request.url)) == ("POST", ISSUER + "token")
    assert request.headers["content-type"] == FORM
    form = httpx.QueryParams(request.content.decode())
    assert sorted(form.keys()) == ["assertion", "grant_type"]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def test_a_delegated_token_is_for_the_consumer(mp: Fake) -> None:
    token = await mp.client().access_token(SCOPE, consumer_org=CUSTOMER_ORG)

    claims = token_claims(token.token, mp.keys.public_jwks(), mp.clock)
    assert (claims["consumer"], claims["supplier"]) == (iso6523(CUSTOMER_ORG), iso6523(BROKER_ORG))
    assert mp.traffic.assertions()[0]["consumer_org"] == CUSTOMER_ORG


async def test_the_clients_own_org_is_never_sent_as_consumer_org(mp: Fake) -> None:
    # Maskinporten refuses consumer_org equal to the client's org (maskinporten.md §3.1).
    token = await mp.client(client_org=BROKER_ORG).access_token(SCOPE, consumer_org=BROKER_ORG)

    assert "consumer_org" not in mp.traffic.assertions()[0]
    claims = token_claims(token.token, mp.keys.public_jwks(), mp.clock)
    assert claims["consumer"] == iso6523(BROKER_ORG)


async def test_a_consent_token_is_verified_and_parsed(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG, metadata={"år": "2025"})

    token = await mp.client().consent_token(
        consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )

    assert token == ConsentToken(
        token=token.token,
        consent_id=record.id,
        subject_org=SUBJECT_ORG,
        requestor_org=CUSTOMER_ORG,
        resources=(RESOURCE_ID,),
        valid_to=START + timedelta(days=90),
        consented_at=START - timedelta(minutes=4),
        expires_at=START + timedelta(seconds=120),
    )
    (grant,) = mp.traffic.assertions()
    assert (grant["scope"], grant["consumer_org"]) == (SKATTEETATEN_SCOPE, CUSTOMER_ORG)
    assert grant["authorization_details"] == [
        {"type": "urn:altinn:consent", "id": str(record.id), "from": org_urn(SUBJECT_ORG)}
    ]
    assert mp.traffic.jwks_fetches == 1


async def test_scope_and_mode_of_consent_tokens_are_configurable(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=BROKER_ORG)
    client = mp.client(consent_scope=OTHER_SCOPE, vendor_mode=False)

    token = await client.consent_token(
        consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=BROKER_ORG
    )

    (grant,) = mp.traffic.assertions()
    assert grant["scope"] == OTHER_SCOPE
    assert "consumer_org" not in grant
    assert token.requestor_org == BROKER_ORG


async def test_a_consent_handled_by_the_broker_is_fetched_in_its_own_name(mp: Fake) -> None:
    # Org mode: the consent was given to the authority and is handled by the broker, which
    # asks without consumer_org (altinn-consent.md §2.3: the lookup accepts handledBy).
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG, handled_by=org_urn(BROKER_ORG))

    token = await mp.client(vendor_mode=False).consent_token(
        consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )

    assert (token.requestor_org, token.subject_org) == (CUSTOMER_ORG, SUBJECT_ORG)
    claims = token_claims(token.token, mp.keys.public_jwks(), mp.clock)
    assert (claims["consumer"], claims["authorization_details"][0]["to"]) == (
        iso6523(BROKER_ORG),
        iso6523(CUSTOMER_ORG),
    )


async def test_the_client_implements_the_consent_tokens_port(mp: Fake) -> None:
    port: ConsentTokens = mp.client()
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)

    token = await port.consent_token(
        consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
    )

    assert token.consent_id == record.id


async def test_tokens_and_keys_stay_out_of_reprs(mp: Fake) -> None:
    client = mp.client()
    token = await client.access_token(SCOPE)

    assert token.token not in repr(token)
    assert repr(client) == f"MaskinportenClient(issuer={ISSUER!r}, client_id='broker-client')"
    assert repr(AccessToken("secret-value", START, SCOPE)).count("secret-value") == 0


# Consent refusals: ConsentUnavailable with Altinn's code


@pytest.mark.parametrize(
    ("status", "valid_for", "code"),
    [
        (ConsentStatus.CREATED, timedelta(days=1), "AM-00014"),
        (ConsentStatus.REJECTED, timedelta(days=1), "AM-00014"),
        (ConsentStatus.REVOKED, timedelta(days=1), "AM-00011"),
        (ConsentStatus.ACCEPTED, timedelta(days=-1), "AM-00013"),
    ],
)
async def test_a_consent_maskinporten_refuses_is_unavailable(
    mp: Fake, status: ConsentStatus, valid_for: timedelta, code: str
) -> None:
    record = add_consent(
        mp.consents, mp.clock, status=status, to_org=CUSTOMER_ORG, valid_for=valid_for
    )

    with pytest.raises(ConsentUnavailable) as caught:
        await mp.client().consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert caught.value.code == code
    assert code in caught.value.detail


async def test_an_unknown_consent_is_unavailable(mp: Fake) -> None:
    with pytest.raises(ConsentUnavailable) as caught:
        await mp.client().consent_token(
            consent_id=uuid.uuid4(), subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert caught.value.code == "AM-00001"


async def test_a_consent_from_another_party_is_unavailable(mp: Fake) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)

    with pytest.raises(ConsentUnavailable) as caught:
        await mp.client().consent_token(
            consent_id=record.id, subject_org=OTHER_ORG, requestor_org=CUSTOMER_ORG
        )

    assert caught.value.code == "AM-00012"


async def test_a_consent_refusal_in_another_shape_is_still_recognised(
    registered: SandboxClient, keys: SigningKeys, tmp_path: Path
) -> None:
    # The status and error name are undocumented (altinn-consent.md §5.2); the AM code is not.
    config = MaskinportenConfig(
        base_url=BASE_URL, consent_error_status=403, consent_error="access_denied"
    )
    async with fake_maskinporten(registered, keys, tmp_path, config=config) as fake:
        record = add_consent(fake.consents, fake.clock, status=ConsentStatus.REVOKED)
        with pytest.raises(ConsentUnavailable) as caught:
            await fake.client(vendor_mode=False).consent_token(
                consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=BROKER_ORG
            )

    assert caught.value.code == "AM-00011"


# Other refusals: UpstreamRefused with the OAuth error


async def test_a_missing_delegation_is_refused(mp: Fake) -> None:
    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().access_token(SCOPE, consumer_org=OTHER_ORG)

    assert not isinstance(caught.value, ConsentUnavailable)
    assert caught.value.code == "forbidden"
    assert caught.value.detail.startswith(f"MP-251: Consumer {OTHER_ORG} has not delegated")


async def test_a_scope_the_client_lacks_is_refused(mp: Fake) -> None:
    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().access_token("unknown:scope")

    assert caught.value.code == "invalid_scope"


async def test_an_unknown_client_is_refused(mp: Fake) -> None:
    mp.state.remove_client("broker-client")

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().access_token(SCOPE)

    assert caught.value.code == "invalid_grant"
    assert "MP-100" in caught.value.detail


async def test_an_unregistered_kid_is_refused(mp: Fake) -> None:
    key = load_client_key(mp.key_file, kid="not-registered")

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client(key=key).access_token(SCOPE)

    assert caught.value.code == "invalid_grant"
    assert "Unknown key identifier (kid)" in caught.value.detail


async def test_an_issuer_without_its_slash_is_a_wrong_audience(mp: Fake) -> None:
    client = mp.client(issuer=BASE_URL, token_endpoint=ISSUER + "token")

    with pytest.raises(UpstreamRefused) as caught:
        await client.access_token(SCOPE)

    assert caught.value.detail.startswith("MP-110: ")


@pytest.mark.parametrize(
    ("response", "code", "detail"),
    [
        (httpx.Response(400, text="<html>Bad Request</html>"), "http_400", ""),
        (httpx.Response(401, json=["not", "an", "object"]), "http_401", ""),
        (httpx.Response(302, headers={"Location": "https://elsewhere.test/"}), "http_302", ""),
        (httpx.Response(400, json={"error": "not an error name"}), "http_400", ""),
        (
            httpx.Response(
                400, json={"error": "invalid_request", "error_description": "a\nb\x00c"}
            ),
            "invalid_request",
            "a b c",
        ),
        (
            httpx.Response(400, json={"error": "invalid_request", "error_description": "x" * 999}),
            "invalid_request",
            "x" * 300,
        ),
    ],
)
async def test_unusual_refusals_get_a_code_and_a_short_printable_detail(
    mp: Fake, response: httpx.Response, code: str, detail: str
) -> None:
    mp.traffic.faults.append(response)

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().access_token(SCOPE)

    assert (caught.value.code, caught.value.detail) == (code, detail)
    assert mp.sleeps.delays == []  # refusals are not retried


# Consent tokens that do not match what was asked for


async def test_a_consent_token_for_another_recipient_is_refused(mp: Fake) -> None:
    # Maskinporten finds a consent by its handledBy too (altinn-consent.md §6.1), so a client
    # acting as itself can get a token whose consent was given to somebody else.
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG, handled_by=org_urn(BROKER_ORG))

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client(vendor_mode=False).consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=BROKER_ORG
        )

    assert (caught.value.code, caught.value.detail) == (
        "invalid_token",
        "consent recipient mismatch",
    )


async def test_a_consent_token_signed_by_a_stranger_is_refused(mp: Fake) -> None:
    stranger = SigningKeys.generate(1, prefix="stranger")
    forged = stranger.sign(mp.claims())
    mp.traffic.faults.append(httpx.Response(200, json={"access_token": forged, "expires_in": 120}))

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().consent_token(
            consent_id=uuid.uuid4(), subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert (caught.value.code, caught.value.detail) == ("invalid_token", "unknown kid")
    assert forged not in str(caught.value)


async def test_a_consent_token_that_cannot_be_verified_for_now_is_unavailable(
    mp: Fake,
) -> None:
    record = add_consent(mp.consents, mp.clock, to_org=CUSTOMER_ORG)
    mp.traffic.fail("/jwk", httpx.ConnectError("refused"))

    with pytest.raises(UpstreamUnavailable, match="JWKS"):
        await mp.client().consent_token(
            consent_id=record.id, subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert mp.token_requests() == 1  # a token was issued, but is neither used nor cached


async def test_a_token_without_a_consent_is_refused(mp: Fake) -> None:
    token = mp.sign(mp.claims())
    mp.traffic.faults.append(httpx.Response(200, json={"access_token": token, "expires_in": 120}))

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().consent_token(
            consent_id=uuid.uuid4(), subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert caught.value.detail == "expected exactly one consent in the token"


async def test_a_consent_token_without_the_consent_scope_is_refused(mp: Fake) -> None:
    token = mp.sign(mp.claims(scope=OTHER_SCOPE))
    mp.traffic.faults.append(httpx.Response(200, json={"access_token": token, "expires_in": 120}))

    with pytest.raises(UpstreamRefused) as caught:
        await mp.client().consent_token(
            consent_id=uuid.uuid4(), subject_org=SUBJECT_ORG, requestor_org=CUSTOMER_ORG
        )

    assert caught.value.detail == "missing scope"
