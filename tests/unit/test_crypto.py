from __future__ import annotations

import base64

import pytest

from broker.crypto import Cipher, DecryptionFailed, parse_keys

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def test_round_trip_bound_to_the_row() -> None:
    cipher = Cipher(parse_keys(f"k1:{K1}"))
    sealed, key_id = cipher.encrypt(b"consent-token-canary", aad="consent_grants:a:client-1")
    assert key_id == "k1"
    assert b"consent-token-canary" not in sealed
    assert cipher.decrypt(sealed, key_id="k1", aad="consent_grants:a:client-1") == (
        b"consent-token-canary"
    )
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(sealed, key_id="k1", aad="consent_grants:b:client-1")


def test_altered_ciphertext_and_unknown_keys_fail() -> None:
    cipher = Cipher(parse_keys(f"k1:{K1}"))
    sealed, _ = cipher.encrypt(b"x", aad="row")
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for bad, key_id in ((altered, "k1"), (sealed, "k9"), (b"short", "k1")):
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bad, key_id=key_id, aad="row")


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old = Cipher(parse_keys(f"k1:{K1}"))
    sealed, _ = old.encrypt(b"x", aad="row")
    rotated = Cipher(parse_keys(f"k2:{K2},k1:{K1}"))
    assert rotated.decrypt(sealed, key_id="k1", aad="row") == b"x"
    assert rotated.encrypt(b"y", aad="row")[1] == "k2"
    assert "k2" in repr(rotated)
    assert K2 not in repr(rotated)


@pytest.mark.parametrize("spec", ["k1:not-base64!", f"k1:{base64.b64encode(b'short').decode()}"])
def test_bad_keys_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="k1"):
        parse_keys(spec)


def test_dev_cipher_is_derived_from_the_secret_key() -> None:
    one, two = Cipher.for_dev("secret-a"), Cipher.for_dev("secret-a")
    sealed, key_id = one.encrypt(b"x", aad="row")
    assert two.decrypt(sealed, key_id=key_id, aad="row") == b"x"
    with pytest.raises(DecryptionFailed):
        Cipher.for_dev("secret-b").decrypt(sealed, key_id=key_id, aad="row")
    with pytest.raises(ValueError, match="at least one"):
        Cipher({})
