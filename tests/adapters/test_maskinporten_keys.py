"""The client key file: the sandbox's format and a bare JWK, the kid, and secrecy."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from broker.maskinporten.errors import ClientKeyInvalid
from broker.maskinporten.keys import ClientKey, load_client_key, parse_client_key
from broker.sandbox.maskinporten import SandboxClient
from broker.sandbox.seed import write_private_jwk
from tests.sandbox.maskinporten_helpers import BROKER_ORG, SCOPE


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return SandboxClient.generate("keys-client", BROKER_ORG, {SCOPE}, kid="keys-kid")


@pytest.fixture(scope="module")
def private_jwk(registered: SandboxClient) -> dict[str, Any]:
    return dict(registered.private_key.as_dict(private=True))


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def verified_payload(token: str, public: dict[str, Any]) -> bytes:
    key = RSAKey.import_key(public)
    return jws.deserialize_compact(token, key, algorithms=["RS256"]).payload


def test_the_sandbox_key_file_is_loaded(registered: SandboxClient, tmp_path: Path) -> None:
    path = tmp_path / "client.jwk.json"
    write_private_jwk(registered, path)

    key = load_client_key(path)

    assert (key.kid, key.client_id) == ("keys-kid", "keys-client")
    assert key.public_jwk() == registered.public_jwk()


def test_a_bare_private_jwk_is_loaded(private_jwk: dict[str, Any], tmp_path: Path) -> None:
    key = load_client_key(write(tmp_path / "bare.json", private_jwk))

    assert (key.kid, key.client_id) == ("keys-kid", None)


def test_an_explicit_kid_overrides_the_jwks(private_jwk: dict[str, Any], tmp_path: Path) -> None:
    without_kid = {k: v for k, v in private_jwk.items() if k != "kid"}

    key = load_client_key(write(tmp_path / "bare.json", without_kid), kid="registered-kid")

    assert key.kid == "registered-kid"
    assert key.public_jwk()["kid"] == "registered-kid"


def test_the_key_signs_rs256_with_only_alg_and_kid(
    registered: SandboxClient, private_jwk: dict[str, Any]
) -> None:
    key = parse_client_key(private_jwk)

    token = key.sign(b'{"a":1}')

    assert jws.extract_compact(token.encode()).headers() == {"alg": "RS256", "kid": "keys-kid"}
    assert verified_payload(token, registered.public_jwk()) == b'{"a":1}'


def test_the_key_material_is_never_shown(private_jwk: dict[str, Any]) -> None:
    key = parse_client_key({"client_id": "keys-client", "jwk": private_jwk})

    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert text == "ClientKey(kid='keys-kid')" or "ClientKey(kid='keys-kid')" in text
        assert private_jwk["d"] not in text
        assert private_jwk["n"] not in text
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kty": "EC"}, "kty 'RSA'"),
        ({"d": None}, "public key"),
        ({"alg": "RS512"}, "RS256 signing key"),
        ({"use": "enc"}, "RS256 signing key"),
        ({"kid": None}, "no 'kid'"),
        ({"e": "%%"}, "not a valid RSA key"),
    ],
)
def test_unusable_keys_are_refused(
    private_jwk: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    jwk = {**private_jwk, **change}
    jwk = {k: v for k, v in jwk.items() if v is not None}

    with pytest.raises(ClientKeyInvalid, match=message) as caught:
        parse_client_key(jwk)

    assert private_jwk["d"] not in str(caught.value)


@pytest.mark.parametrize("modulus", [b"\x01" * 128, b"\x00" * 200 + b"\xff" * 200, None])
def test_a_short_or_missing_modulus_is_refused(
    private_jwk: dict[str, Any], modulus: bytes | None
) -> None:
    n = base64.urlsafe_b64encode(modulus).rstrip(b"=").decode() if modulus else None
    jwk = {k: v for k, v in {**private_jwk, "n": n}.items() if v is not None}

    with pytest.raises(ClientKeyInvalid, match="at least 2048 bits"):
        parse_client_key(jwk)


def test_a_modulus_that_is_not_base64url_is_refused(private_jwk: dict[str, Any]) -> None:
    with pytest.raises(ClientKeyInvalid, match="at least 2048 bits"):
        parse_client_key({**private_jwk, "n": "A"})


def test_a_non_rsa_key_type_is_refused() -> None:
    jwk = dict(ECKey.generate_key("P-256", parameters={"kid": "ec"}).as_dict(private=True))

    with pytest.raises(ClientKeyInvalid, match="kty 'RSA'"):
        parse_client_key(jwk)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"client_id": "c", "jwk": "not-an-object"}, "'jwk' must be a JSON object"),
        ({"client_id": 7, "jwk": {}}, "'client_id' must be a string"),
    ],
)
def test_malformed_documents_are_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientKeyInvalid, match=message):
        parse_client_key(document)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClientKeyInvalid, match="cannot read"):
        load_client_key(tmp_path / "absent.json")


def test_a_file_that_is_not_json_is_refused_without_echoing_it(
    private_jwk: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(private_jwk)[:-1])  # truncated: the key is in the text

    with pytest.raises(ClientKeyInvalid, match="is not JSON") as caught:
        load_client_key(path)

    # The JSONDecodeError (which holds the whole file in .doc) is not chained.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_file_with_a_json_array_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClientKeyInvalid, match="not a JSON object"):
        load_client_key(write(tmp_path / "array.json", [1, 2]))


def test_client_key_keeps_the_kid_it_was_given(registered: SandboxClient) -> None:
    key = ClientKey(registered.private_key, kid="other")

    assert key.public_jwk()["kid"] == "other"
    assert "d" not in key.public_jwk()
