"""Encryption of secrets at rest: AES-256-GCM, bound to the row that holds the ciphertext.

Each ciphertext is ``nonce (12 bytes) || ciphertext+tag`` and is stored with the id of the key
that made it. The associated data names the row (e.g. ``consent_grants:<id>:<client id>``), so a
ciphertext copied into another row fails to decrypt. Keys come from ``BROKER_ENCRYPTION_KEYS``
(``id:base64key,…``; the first encrypts, all decrypt, which is what a rotation needs). In dev
and test without configured keys, one key is derived from the secret key, so the demo works
without set-up; outside dev/test the settings refuse to start without real keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Cipher", "DecryptionFailed", "parse_keys"]

_NONCE = 12
_DEV_KEY_ID = "dev"


class DecryptionFailed(Exception):
    """Wrong key, wrong row, or altered ciphertext. Says nothing about which."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """``id:base64key,…`` → {id: 32-byte key}, in order."""
    keys: dict[str, bytes] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key_id, _, encoded = part.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError(f"encryption key {key_id!r} is not base64") from None
        if not key_id or len(key) != 32:
            raise ValueError(f"encryption key {key_id!r} must be an id and 32 bytes")
        keys[key_id] = key
    return keys


class Cipher:
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = next(iter(keys))

    @classmethod
    def for_dev(cls, secret_key: str) -> Cipher:
        derived = hashlib.sha256(b"ebevis-broker dev encryption key\0" + secret_key.encode())
        return cls({_DEV_KEY_ID: derived.digest()})

    def __repr__(self) -> str:
        return f"Cipher(key_ids={list(self._keys)})"

    def encrypt(self, plaintext: bytes, *, aad: str) -> tuple[bytes, str]:
        nonce = os.urandom(_NONCE)  # random 96-bit nonces: safe far beyond our volumes
        sealed = self._keys[self.current_key_id].encrypt(nonce, plaintext, aad.encode())
        return nonce + sealed, self.current_key_id

    def decrypt(self, ciphertext: bytes, *, key_id: str, aad: str) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None or len(ciphertext) <= _NONCE:
            raise DecryptionFailed("cannot decrypt")
        try:
            return aead.decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], aad.encode())
        except InvalidTag:
            raise DecryptionFailed("cannot decrypt") from None
