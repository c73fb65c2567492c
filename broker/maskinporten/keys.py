"""The broker's Maskinporten client key: an RS256 private JWK read from a file, or a business
certificate (virksomhetssertifikat) with its private key.

A registered key signs with ``kid``; a business certificate signs with ``x5c``, the whole
certificate chain, leaf first (``maskinporten.md`` §1.3: exactly one of the two). For a
registered key, two file forms are accepted: a bare private JWK
(``{"kty": "RSA", "kid": ..., "d": ...}``), or
the sandbox's ``{"client_id": ..., "jwk": {...}}`` (``broker.sandbox.seed.write_private_jwk``).
The ``kid`` is the one registered at Maskinporten (``maskinporten.md`` §1.3): the JWK's own, or
an explicit override when the key file does not carry it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from broker.maskinporten.errors import ClientKeyInvalid

__all__ = [
    "MIN_KEY_BITS",
    "ClientKey",
    "load_certificate_key",
    "load_client_key",
    "parse_client_key",
]

# Maskinporten supports registered keys of 2048-bit RSA with RS256 (§1.3, [ADMIN]).
MIN_KEY_BITS = 2048
SIGNING_ALG = "RS256"


class ClientKey:
    """A private RSA signing key and its ``kid``. The key material never leaves this object
    except as a signature or the public half, and its repr shows only the ``kid``."""

    __slots__ = ("_key", "client_id", "kid", "x5c")

    def __init__(
        self,
        key: RSAKey,
        *,
        kid: str,
        client_id: str | None = None,
        x5c: tuple[str, ...] | None = None,
    ) -> None:
        self._key = key
        self.kid = kid
        self.client_id = client_id  # the sandbox file names its client; a bare JWK does not
        self.x5c = x5c  # a business certificate's chain (base64 DER, leaf first), if any

    def sign(self, payload: bytes) -> str:
        """A compact RS256 JWS with the header ``{alg, kid}`` (or ``{alg, x5c}`` for a business
        certificate): joserfc's ``jwt.encode`` would add ``typ``, a header the reference lists
        as an open question (§5.2 pitfall 6, §7.1)."""
        header: dict[str, Any] = {"alg": SIGNING_ALG}
        if self.x5c is not None:
            header["x5c"] = list(self.x5c)
        else:
            header["kid"] = self.kid
        return jws.serialize_compact(header, payload, self._key, algorithms=[SIGNING_ALG])

    def public_jwk(self) -> dict[str, Any]:
        """The public half as registered at Maskinporten, with this key's ``kid``."""
        document = dict(self._key.as_dict(private=False))
        document["kid"] = self.kid
        return document

    def __repr__(self) -> str:
        return f"ClientKey(kid={self.kid!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Pickling would copy the private key into caches, queues or crash dumps.
        raise TypeError("a ClientKey cannot be pickled")


def load_client_key(path: Path, *, kid: str | None = None) -> ClientKey:
    """Read the key file at ``path``; ``kid`` overrides the JWK's own."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientKeyInvalid(f"cannot read the Maskinporten key file {path}") from exc
    try:
        document = json.loads(text)
    except ValueError:
        # ``from None``: a JSONDecodeError keeps the whole file (the private key) in ``.doc``.
        raise ClientKeyInvalid(f"the Maskinporten key file {path} is not JSON") from None
    if not isinstance(document, dict):
        raise ClientKeyInvalid(f"the Maskinporten key file {path} is not a JSON object")
    return parse_client_key(document, kid=kid, source=str(path))


def parse_client_key(
    document: Mapping[str, Any], *, kid: str | None = None, source: str = "the key"
) -> ClientKey:
    """A ``ClientKey`` from a bare private JWK or a ``{"client_id", "jwk"}`` document."""
    client_id = document.get("client_id")
    if "jwk" in document:
        jwk = document["jwk"]
        if not isinstance(jwk, dict):
            raise ClientKeyInvalid(f"{source}: 'jwk' must be a JSON object")
    else:
        jwk = dict(document)
    if client_id is not None and not isinstance(client_id, str):
        raise ClientKeyInvalid(f"{source}: 'client_id' must be a string")
    key = _import_private_key(jwk, source)
    chosen = kid if kid is not None else jwk.get("kid")
    if not isinstance(chosen, str) or not chosen:
        raise ClientKeyInvalid(f"{source}: the JWK has no 'kid' and none was given")
    return ClientKey(key, kid=chosen, client_id=client_id)


def _import_private_key(jwk: Mapping[str, Any], source: str) -> RSAKey:
    if jwk.get("kty") != "RSA":
        raise ClientKeyInvalid(f"{source}: the JWK must have kty 'RSA'")
    if "d" not in jwk:
        raise ClientKeyInvalid(f"{source}: the JWK is a public key; the private key is needed")
    if jwk.get("alg", SIGNING_ALG) != SIGNING_ALG or jwk.get("use", "sig") != "sig":
        raise ClientKeyInvalid(f"{source}: the JWK must be an RS256 signing key")
    # Checked before the import, which only warns about a short key.
    if _modulus_bits(jwk.get("n")) < MIN_KEY_BITS:
        raise ClientKeyInvalid(f"{source}: the RSA key must have at least {MIN_KEY_BITS} bits")
    try:
        return RSAKey.import_key(cast(Any, dict(jwk)))
    except (JoseError, ValueError, TypeError) as exc:
        raise ClientKeyInvalid(f"{source}: the JWK is not a valid RSA key") from exc


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (ValueError, binascii.Error):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def load_certificate_key(key_path: Path, chain_path: Path) -> ClientKey:
    """A business certificate: an unencrypted PEM private key and the PEM chain, leaf first."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        chain = x509.load_pem_x509_certificates(chain_path.read_bytes())
    except (OSError, ValueError, TypeError):
        # Not chained: a parser message could quote key material.
        raise ClientKeyInvalid("the business certificate or its key cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise ClientKeyInvalid(f"the certificate key must be RSA with {MIN_KEY_BITS}+ bits")
    leaf_key = chain[0].public_key() if chain else None
    if not isinstance(leaf_key, rsa.RSAPublicKey) or (
        leaf_key.public_numbers() != key.public_key().public_numbers()
    ):
        raise ClientKeyInvalid("the first certificate in the chain is not for this key")
    der = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]
    leaf = chain[0]
    # The thumbprint names the key in logs (the certificate itself is public).
    kid = base64.urlsafe_b64encode(leaf.fingerprint(hashes.SHA256())).decode().rstrip("=")
    jwk = RSAKey.import_key(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ClientKey(jwk, kid=kid, x5c=tuple(der))
