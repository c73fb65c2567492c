"""The JWT grant: header, claims (decoded and verified), lifetime limits and input checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from broker.maskinporten.assertion import (
    ConsentGrant,
    GrantRequest,
    build_assertion,
    grant_claims,
)
from broker.maskinporten.keys import ClientKey
from broker.sandbox.maskinporten import SandboxClient
from tests.adapters.maskinporten_support import header
from tests.sandbox.maskinporten_helpers import (
    BROKER_ORG,
    CUSTOMER_ORG,
    ISSUER,
    SCOPE,
    START,
    SUBJECT_ORG,
)

CONSENT_ID = uuid.UUID("0a7d59f8-8c62-4312-9fb4-62456664c96f")


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return SandboxClient.generate("grant-client", BROKER_ORG, {SCOPE}, kid="grant-kid")


@pytest.fixture(scope="module")
def key(registered: SandboxClient) -> ClientKey:
    return ClientKey(registered.private_key, kid=registered.kid)


def decode(token: str, registered: SandboxClient) -> dict[str, Any]:
    public = RSAKey.import_key(registered.public_jwk())
    return dict(jwt.decode(token, public, algorithms=["RS256"]).claims)


def sign(key: ClientKey, request: GrantRequest, **kwargs: Any) -> str:
    return build_assertion(key, request, issuer=ISSUER, client_id="grant-client", **kwargs)


def test_a_plain_grant_has_exactly_the_documented_claims(
    key: ClientKey, registered: SandboxClient
) -> None:
    token = sign(key, GrantRequest(SCOPE), now=START)

    claims = decode(token, registered)
    iat = int(START.timestamp())
    assert header(token) == {"alg": "RS256", "kid": "grant-kid"}
    assert claims == {
        "aud": ISSUER,
        "iss": "grant-client",
        "iat": iat,
        "exp": iat + 60,
        "jti": claims["jti"],
        "scope": SCOPE,
    }
    assert uuid.UUID(claims["jti"]).version == 4


def test_the_audience_is_the_issuer_verbatim_with_its_slash(key: ClientKey) -> None:
    claims = grant_claims(GrantRequest(SCOPE), issuer=ISSUER, client_id="c", now=START, lifetime=60)

    assert claims["aud"] == "http://maskinporten.test/"


def test_a_delegated_grant_names_the_consumer(key: ClientKey, registered: SandboxClient) -> None:
    token = sign(key, GrantRequest(SCOPE, consumer_org=CUSTOMER_ORG), now=START)

    claims = decode(token, registered)
    assert claims["consumer_org"] == CUSTOMER_ORG
    assert "authorization_details" not in claims


def test_a_consent_grant_carries_one_consent_detail(
    key: ClientKey, registered: SandboxClient
) -> None:
    request = GrantRequest(SCOPE, CUSTOMER_ORG, ConsentGrant(CONSENT_ID, SUBJECT_ORG))

    claims = decode(sign(key, request, now=START), registered)

    assert claims["consumer_org"] == CUSTOMER_ORG
    assert claims["authorization_details"] == [
        {
            "type": "urn:altinn:consent",
            "id": str(CONSENT_ID),
            "from": f"urn:altinn:organization:identifier-no:{SUBJECT_ORG}",
        }
    ]
    assert "resource" not in claims


def test_every_grant_gets_a_fresh_jti(key: ClientKey, registered: SandboxClient) -> None:
    request = GrantRequest(SCOPE)

    jtis = {decode(sign(key, request, now=START), registered)["jti"] for _ in range(5)}

    assert len(jtis) == 5


@pytest.mark.parametrize("lifetime", [1, 60, 120])
def test_the_lifetime_is_configurable_up_to_120_seconds(
    key: ClientKey, registered: SandboxClient, lifetime: int
) -> None:
    claims = decode(sign(key, GrantRequest(SCOPE), now=START, lifetime=lifetime), registered)

    assert claims["exp"] - claims["iat"] == lifetime


@pytest.mark.parametrize("lifetime", [0, -5, 121, 180])
def test_a_lifetime_outside_the_limit_is_refused(key: ClientKey, lifetime: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.120 seconds"):
        sign(key, GrantRequest(SCOPE), now=START, lifetime=lifetime)


def test_iat_is_whole_seconds_of_an_aware_now(key: ClientKey, registered: SandboxClient) -> None:
    now = START.astimezone(timezone(timedelta(hours=2))) + timedelta(milliseconds=900)

    claims = decode(sign(key, GrantRequest(SCOPE), now=now), registered)

    assert claims["iat"] == int(START.timestamp())


def test_a_naive_now_is_refused(key: ClientKey) -> None:
    with pytest.raises(ValueError, match="aware"):
        sign(key, GrantRequest(SCOPE), now=datetime(2026, 3, 2, 9, 30))


@pytest.mark.parametrize("scope", ["", " scope", "scope ", "a  b"])
def test_a_malformed_scope_is_refused(scope: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        GrantRequest(scope)


def test_several_scopes_may_be_asked_for() -> None:
    assert GrantRequest("a:b c:d").scope == "a:b c:d"


@pytest.mark.parametrize("orgnr", ["31000001", "3100000190", "31000001x", "٣١٠٠٠٠٠١٩"])
def test_org_numbers_must_be_nine_ascii_digits(orgnr: str) -> None:
    with pytest.raises(ValueError, match="consumer_org"):
        GrantRequest(SCOPE, consumer_org=orgnr)
    with pytest.raises(ValueError, match="subject_org"):
        ConsentGrant(CONSENT_ID, orgnr)


def test_now_in_utc_is_used_as_is(key: ClientKey) -> None:
    now = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)

    claims = grant_claims(GrantRequest(SCOPE), issuer=ISSUER, client_id="c", now=now, lifetime=30)

    assert (claims["iat"], claims["exp"]) == (int(now.timestamp()), int(now.timestamp()) + 30)
