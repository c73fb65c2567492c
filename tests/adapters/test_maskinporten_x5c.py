"""A business certificate signs Maskinporten grants with ``x5c`` (the chain), never ``kid``."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from joserfc.jwk import RSAKey

from broker.app import create_app
from broker.maskinporten import MaskinportenClient
from broker.maskinporten.errors import ClientKeyInvalid
from broker.maskinporten.keys import load_certificate_key
from tests.support import make_settings, sqlite_url

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def _certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, name: str
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def _write(tmp_path: Path, key: object, chain: list[x509.Certificate]) -> tuple[Path, Path]:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    key_path, chain_path = tmp_path / "key.pem", tmp_path / "chain.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    return key_path, chain_path


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_grant_carries_the_chain_and_verifies_with_the_leaf(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf, ca = _certificate(rsa_key, "Broker AS"), _certificate(ca_key, "Test CA")
    key = load_certificate_key(*_write(tmp_path, rsa_key, [leaf, ca]))
    token = key.sign(json.dumps({"iss": "client"}).encode())
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert set(header) == {"alg", "x5c"}
    assert header["alg"] == "RS256"
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    assert chain == [leaf, ca]
    # Checked with the leaf's key directly (joserfc's reader caps headers at 512 bytes, and a
    # certificate chain is bigger than that).
    protected, payload, signature = token.split(".")
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, rsa.RSAPublicKey)
    leaf_key.verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{protected}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert "BEGIN" not in repr(key)


def test_a_chain_for_another_key_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ClientKeyInvalid, match="not for this key"):
        load_certificate_key(*_write(tmp_path, rsa_key, [_certificate(other, "Other AS")]))


def test_non_rsa_keys_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ClientKeyInvalid, match="RSA"):
        load_certificate_key(*_write(tmp_path, ec_key, [_certificate(ec_key, "EC AS")]))
    (tmp_path / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    with pytest.raises(ClientKeyInvalid, match="cannot be read") as caught:
        load_certificate_key(tmp_path / "garbage.pem", tmp_path / "garbage.pem")
    assert "not a key" not in str(caught.value)
    with pytest.raises(ClientKeyInvalid, match="cannot be read"):
        load_certificate_key(tmp_path / "missing.pem", tmp_path / "missing.pem")


def test_the_app_signs_with_the_certificate_when_configured(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    key_path, chain_path = _write(tmp_path, rsa_key, [_certificate(rsa_key, "Broker AS")])
    app = create_app(
        make_settings(
            database_url=sqlite_url(tmp_path),
            maskinporten_key_file=str(key_path),
            maskinporten_cert_file=str(chain_path),
        )
    )
    client = app.state.maskinporten
    assert isinstance(client, MaskinportenClient)
    assert client.signs_with_certificate
    plain = create_app(
        make_settings(
            database_url=sqlite_url(tmp_path / "plain"),
            maskinporten_key_file=str(write_client_jwk(tmp_path)),
        )
    )
    assert not plain.state.maskinporten.signs_with_certificate


def write_client_jwk(directory: Path) -> Path:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
    path = directory / "client.jwk.json"
    path.write_text(json.dumps(key.as_dict(private=True)))
    return path
