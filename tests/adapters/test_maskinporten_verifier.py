"""TokenVerifier against the fake's tokens: signature, issuer, times, scope, audience and the
header, each failure with its reason (the JWKS handling is in test_maskinporten_jwks.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws

from broker.errors import Unauthenticated
from broker.maskinporten.errors import TokenInvalid
from broker.maskinporten.verifier import TokenVerifier
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import SandboxClient
from tests.adapters.maskinporten_support import Fake, fake_maskinporten
from tests.sandbox.maskinporten_helpers import (
    BROKER_ORG,
    ISSUER,
    OTHER_SCOPE,
    SCOPE,
    broker_client,
    post_token,
)

OTHER_BASE_URL = "http://other-maskinporten.test"


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="mp-verifier")


@pytest.fixture(scope="module")
def stranger() -> SigningKeys:
    return SigningKeys.generate(1, prefix="stranger")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


async def mint(fake: Fake, *, issuer: str = ISSUER, scope: str = SCOPE) -> str:
    """A real access token from ``fake`` (whose issuer is ``issuer``)."""
    grant = fake.registered.assertion(issuer, now=fake.clock.timestamp(), scope=scope)
    response = await post_token(fake.http, grant)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


async def reason(verifier: TokenVerifier, token: str, **kwargs: Any) -> str:
    with pytest.raises(TokenInvalid) as caught:
        await verifier.verify(token, **kwargs)
    assert not token or token not in str(caught.value)
    return caught.value.reason


# The checks


async def test_a_token_of_the_issuer_verifies(mp: Fake) -> None:
    token = await mint(mp)

    claims = await mp.verifier().verify(token, scope=SCOPE)

    assert (claims["iss"], claims["scope"], claims["client_id"]) == (ISSUER, SCOPE, "broker-client")


async def test_a_required_scope_must_be_one_of_the_tokens_scopes(mp: Fake) -> None:
    verifier = mp.verifier()
    token = await mint(mp, scope=f"{OTHER_SCOPE} {SCOPE}")

    assert (await verifier.verify(token, scope=SCOPE))["scope"] == f"{OTHER_SCOPE} {SCOPE}"
    assert await reason(verifier, token, scope="skatteetaten") == "missing scope"
    assert await reason(verifier, mp.sign(mp.claims(scope=None)), scope=SCOPE) == "missing scope"


async def test_an_audience_can_be_required(mp: Fake) -> None:
    verifier = mp.verifier()
    listed = mp.sign(mp.claims(aud=["https://broker.test/", "unspecified"]))

    assert await verifier.verify(await mint(mp), audience="unspecified")
    assert await verifier.verify(listed, audience="https://broker.test/")
    assert await reason(verifier, await mint(mp), audience="https://broker.test/") == (
        "wrong audience"
    )


async def test_an_expired_token_is_refused_after_the_leeway(mp: Fake) -> None:
    token = await mint(mp)  # exp = now + 120
    verifier = mp.verifier()

    mp.clock.advance(129)
    assert await verifier.verify(token)
    mp.clock.advance(1)
    assert await reason(verifier, token) == "expired"
    assert await reason(mp.verifier(leeway=0), mp.sign(mp.claims(exp=mp.clock.timestamp()))) == (
        "expired"
    )


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"nbf": 11}, "not yet valid"),
        ({"iat": 11}, "issued in the future"),
        ({"exp": None}, "missing exp"),
        ({"exp": "soon"}, "malformed exp"),
        ({"exp": True}, "malformed exp"),
        ({"nbf": "later"}, "malformed nbf"),
    ],
)
async def test_time_claims_are_checked_with_the_leeway(
    mp: Fake, claims: dict[str, Any], expected: str
) -> None:
    now = mp.clock.timestamp()
    # Integers in the parameters are offsets from now; other values are used as they are.
    values = {
        k: now + v if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in claims.items()
    }
    token = mp.sign({k: v for k, v in mp.claims(**values).items() if v is not None})

    assert await reason(mp.verifier(), token) == expected
    assert await mp.verifier().verify(mp.sign(mp.claims(nbf=now + 10, iat=now + 10)))


async def test_a_token_of_another_issuer_with_its_own_keys_is_refused(
    mp: Fake, registered: SandboxClient, stranger: SigningKeys, tmp_path: Path
) -> None:
    async with fake_maskinporten(
        registered, stranger, tmp_path / "other", base_url=OTHER_BASE_URL
    ) as other:
        foreign = await mint(other, issuer=OTHER_BASE_URL + "/")

    assert await reason(mp.verifier(), foreign) == "unknown kid"


async def test_a_token_with_our_issuers_keys_but_another_issuer_is_refused(
    mp: Fake, registered: SandboxClient, keys: SigningKeys, tmp_path: Path
) -> None:
    async with fake_maskinporten(
        registered, keys, tmp_path / "other", base_url=OTHER_BASE_URL
    ) as other:
        token = await mint(other, issuer=OTHER_BASE_URL + "/")

    assert await reason(mp.verifier(), token) == "wrong issuer"


async def test_a_forged_signature_under_a_known_kid_is_refused(
    mp: Fake, stranger: SigningKeys
) -> None:
    forged = stranger.sign(mp.claims(), headers={"kid": mp.keys.primary_kid})

    assert await reason(mp.verifier(), forged) == "bad signature"


async def test_a_tampered_payload_is_refused(mp: Fake) -> None:
    head, _, signature = (await mint(mp)).split(".")
    body = mp.claims(consumer={"authority": "iso6523-actorid-upis", "ID": "0192:310000027"})
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()

    assert await reason(mp.verifier(), f"{head}.{payload}.{signature}") == "bad signature"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"alg": "none", "kid": "k"}, "unsupported alg"),
        ({"alg": "HS256", "kid": "k"}, "unsupported alg"),
        ({"alg": "RS512", "kid": "k"}, "unsupported alg"),
        ({"kid": "k"}, "malformed token"),
        ({"alg": "RS256"}, "missing kid"),
        ({"alg": "RS256", "kid": ""}, "missing kid"),
        ({"alg": "RS256", "kid": 7}, "missing kid"),
    ],
)
async def test_the_header_is_checked_before_any_key_is_fetched(
    mp: Fake, header: dict[str, Any], expected: str
) -> None:
    token = unsigned(header, mp.claims(), signature="c2ln")

    assert await reason(mp.verifier(), token) == expected
    assert mp.traffic.jwks_fetches == 0


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c", "ø.ø.ø", "x" * 40_000, unsigned({}, {})[:-1] + "!.x"]
)
async def test_malformed_tokens_are_refused(mp: Fake, token: str) -> None:
    assert await reason(mp.verifier(), token) == "malformed token"


async def test_a_signed_payload_that_is_not_an_object_is_malformed(
    mp: Fake, registered: SandboxClient
) -> None:
    header = {"alg": "RS256", "kid": registered.kid}
    token = jws.serialize_compact(header, b"[1, 2]", registered.private_key)
    mp.traffic.faults.append(httpx.Response(200, json={"keys": [registered.public_jwk()]}))

    assert await reason(mp.verifier(), token) == "malformed token"


def test_only_rsa_algorithms_can_be_allowed(mp: Fake) -> None:
    with pytest.raises(ValueError, match="algorithms"):
        mp.verifier(algorithms=("RS256", "HS256"))
    with pytest.raises(ValueError, match="algorithms"):
        mp.verifier(algorithms=())
    assert mp.verifier(algorithms=("RS256", "RS512")).issuer == ISSUER


def test_token_invalid_is_a_401_with_a_bearer_challenge() -> None:
    error = TokenInvalid("expired")

    assert isinstance(error, Unauthenticated)
    assert (error.status, error.code, error.detail, error.reason) == (
        401,
        "invalid_token",
        "expired",
        "expired",
    )
    assert error.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


async def test_claims_name_the_consumer(mp: Fake) -> None:
    claims = await mp.verifier().verify(await mint(mp))

    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": f"0192:{BROKER_ORG}"}
