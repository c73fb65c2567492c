"""Purpose-bound, expiring, signed values for the browser flow (itsdangerous, one salt each).

- The **start token** makes ``consent_url`` a link that opens exactly one request's flow.
- The **binding** ties the return from Altinn to the browser that left: a random value goes into
  a cookie, its SHA-256 goes into the signed **return handle** in Altinn's ``redirectUrl``. The
  return is accepted only when the handle's signature and age are right and the cookie hashes to
  the handle's binding (compared in constant time).

Signatures only authenticate, they do not hide: nothing secret is put in a token. Single use of
a return is enforced in the database, not here. Time comes from the injected ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

__all__ = ["Binding", "FlowTokens", "TokenExpired", "TokenInvalid"]

START_SALT = "ebevis-broker/consent-start"
RETURN_SALT = "ebevis-broker/consent-return"


class TokenInvalid(Exception):
    """Forged, altered, for another purpose, or not bound to this browser."""


class TokenExpired(TokenInvalid):
    """Authentic but too old."""


@dataclass(frozen=True)
class Binding:
    cookie_value: str  # goes into the browser's cookie
    digest: str  # goes into the return handle


def _digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


class FlowTokens:
    def __init__(
        self,
        secret_keys: list[str],
        *,
        now: Callable[[], float],
        start_max_age: int,
        return_max_age: int,
    ) -> None:
        # The first key signs; older keys still verify during a rotation.
        self._start = _serializer(secret_keys, START_SALT, now)
        self._return = _serializer(secret_keys, RETURN_SALT, now)
        self._start_max_age = start_max_age
        self._return_max_age = return_max_age

    def start_token(self, request_id: str) -> str:
        return str(self._start.dumps(request_id))

    def read_start_token(self, token: str) -> str:
        return _read(self._start, token, self._start_max_age, list_len=None)[0]

    @staticmethod
    def new_binding() -> Binding:
        return FlowTokens.binding_for(secrets.token_urlsafe(32))

    @staticmethod
    def binding_for(cookie_value: str) -> Binding:
        """The binding of a browser that already has a cookie (flows in parallel share it)."""
        return Binding(cookie_value=cookie_value, digest=_digest(cookie_value))

    def return_handle(self, request_id: str, binding: Binding) -> str:
        return str(self._return.dumps([request_id, binding.digest]))

    def read_return_handle(self, handle: str, cookie_value: str | None) -> str:
        """The request id, if the handle is authentic, fresh and bound to ``cookie_value``."""
        request_id, digest = _read(self._return, handle, self._return_max_age, list_len=2)
        if cookie_value is None or not hmac.compare_digest(digest, _digest(cookie_value)):
            raise TokenInvalid("the return is not bound to this browser")
        return request_id


def _serializer(keys: list[str], salt: str, now: Callable[[], float]) -> URLSafeTimedSerializer:
    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(now())

    return URLSafeTimedSerializer(keys[::-1], salt=salt, signer=Signer)


def _read(
    serializer: URLSafeTimedSerializer, token: str, max_age: int, *, list_len: int | None
) -> list[str]:
    try:
        value = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenExpired("expired") from exc
    except BadSignature as exc:
        raise TokenInvalid("bad signature") from exc
    values = value if isinstance(value, list) else [value]
    if (list_len is not None and len(values) != list_len) or not all(
        isinstance(v, str) for v in values
    ):
        raise TokenInvalid("unexpected payload")
    return values
