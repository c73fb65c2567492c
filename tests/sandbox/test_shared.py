"""The shared sandbox pieces: clock, org numbers, RS256 keys and JWT verification."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from broker.sandbox.clock import Clock
from broker.sandbox.jose import InvalidToken, SigningKeys, decode_unverified_header, verify_jwt
from broker.sandbox.orgnr import is_valid_orgnr, with_check_digit

T0 = datetime(2026, 11, 28, 10, tzinfo=UTC)
NOW = int(T0.timestamp())


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(2, prefix="test")


def test_a_frozen_clock_moves_only_when_told() -> None:
    clock = Clock(T0)
    assert clock.now() == T0
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90)
    assert clock.timestamp() == NOW + 90
    clock.reset()
    assert clock.now() == T0
    with pytest.raises(ValueError, match="aware"):
        Clock(datetime(2026, 1, 1))


def test_a_live_clock_follows_the_wall_clock() -> None:
    before = datetime.now(UTC)
    assert Clock().now() >= before


def test_org_numbers() -> None:
    assert is_valid_orgnr("310100013")
    assert not is_valid_orgnr("310100014")
    assert not is_valid_orgnr("31010001")
    assert with_check_digit("31010001") == "310100013"


def test_tokens_verify_and_carry_only_alg_and_kid(keys: SigningKeys) -> None:
    token = keys.sign({"iss": "x", "exp": NOW + 60})
    assert decode_unverified_header(token) == {"alg": "RS256", "kid": keys.primary_kid}
    assert verify_jwt(token, keys.public_jwks(), now=NOW) == {"iss": "x", "exp": NOW + 60}


@pytest.mark.parametrize(
    ("claims", "now", "reason"),
    [
        ({"exp": NOW}, NOW, "expired"),
        ({"exp": "soon"}, NOW, "expired"),
        ({"exp": NOW + 60, "nbf": NOW + 30}, NOW, "not yet valid"),
    ],
)
def test_time_claims_are_checked(
    keys: SigningKeys, claims: dict[str, object], now: int, reason: str
) -> None:
    with pytest.raises(InvalidToken) as caught:
        verify_jwt(keys.sign(claims), keys.public_jwks(), now=now)
    assert caught.value.reason == reason


def test_foreign_altered_and_malformed_tokens_are_refused(keys: SigningKeys) -> None:
    other = SigningKeys.generate(1, prefix="other")
    token = keys.sign({"exp": NOW + 60})
    cases = {
        other.sign({"exp": NOW + 60}): "unknown kid",
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"): "bad signature",
        "not-a-jwt": "malformed token",
        "a.b.c": "malformed token",
        _with_header(token, {"alg": "HS256", "kid": keys.primary_kid}): "unsupported alg",
    }
    for bad, reason in cases.items():
        with pytest.raises(InvalidToken) as caught:
            verify_jwt(bad, keys.public_jwks(), now=NOW)
        assert caught.value.reason == reason


def _with_header(token: str, header: dict[str, str]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


def test_rotation_keeps_old_tokens_verifiable(keys: SigningKeys) -> None:
    rotating = SigningKeys.generate(2, prefix="rot")
    old = rotating.sign({"exp": NOW + 60})
    first = rotating.primary_kid
    rotating.rotate()
    assert rotating.primary_kid != first
    new = rotating.sign({"exp": NOW + 60})
    assert decode_unverified_header(new)["kid"] == rotating.primary_kid
    for token in (old, new):
        assert verify_jwt(token, rotating.public_jwks(), now=NOW)["exp"] == NOW + 60
    with pytest.raises(ValueError, match="at least one key"):
        SigningKeys([])
