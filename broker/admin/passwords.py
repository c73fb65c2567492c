"""Admin passwords, hashed with scrypt (memory-hard; Python's standard library).

A hash is stored as ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be raised
later without breaking stored hashes (``needs_rehash`` tells when to re-hash at the next login).
The default (n = 2**15, r = 8, p = 1) takes 32 MiB and tens of milliseconds per attempt, the
parameters OWASP's password storage cheat sheet names for scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "PasswordHasher", "WeakPassword", "check_strength"]

MIN_LENGTH = 12
MAX_LENGTH = 256
_SALT_BYTES = 16
_HASH_BYTES = 32


class WeakPassword(ValueError):
    """The password may not be used; the message says why (never the password)."""


def check_strength(password: str, *, username: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"must have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPassword("must not contain the username")
    if len(set(password)) < 5:
        raise WeakPassword("must not repeat a few characters")


@dataclass(frozen=True)
class PasswordHasher:
    log2_n: int = 15
    r: int = 8
    p: int = 1

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = _scrypt(password, salt, self.log2_n, self.r, self.p)
        return "$".join(
            ("scrypt", str(self.log2_n), str(self.r), str(self.p), _b64(salt), _b64(digest))
        )

    def verify(self, stored: str, password: str) -> bool:
        """Constant-time comparison; a malformed stored hash never verifies."""
        parts = stored.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            return False
        try:
            log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        except ValueError:
            return False
        if not (1 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p), expected)

    def needs_rehash(self, stored: str) -> bool:
        return not stored.startswith(f"scrypt${self.log2_n}${self.r}${self.p}$")

    def dummy(self) -> str:
        """A hash of nothing anyone knows: verifying against it costs what a real check does,
        so an unknown username answers as slowly as a wrong password."""
        return self.hash(secrets.token_urlsafe(16))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + (1 << 20),
        dklen=_HASH_BYTES,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
