"""Reading the token endpoint's answer into a token or one of our errors (``maskinporten.md``
§1.5, §1.7; ``altinn-consent.md`` §5.2, §6.1).

- 200 with ``access_token`` and ``expires_in``: a token.
- 408, 429, 5xx, or a 200 we cannot read: ``Transient`` (the client retries, then gives up
  with ``UpstreamUnavailable``).
- Any other status, when the ``error_description`` carries Altinn Access Management codes
  (``AM-00011: Consent is revoked``…): ``ConsentUnavailable`` with the first code. The error
  name and status of a consent refusal are undocumented (400 ``invalid_request`` in the fake,
  configurable there), so the AM code is what identifies one.
- Other 4xx: ``UpstreamRefused`` with the OAuth ``error`` (``invalid_grant``, ``forbidden``…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from broker.consent.ports import ConsentUnavailable, UpstreamRefused
from broker.maskinporten.retry import parse_retry_after

__all__ = ["TokenResponse", "Transient", "read_token_response"]

_RETRYABLE = frozenset({408, 429})
_AM_CODE = re.compile(r"\bAM-\d{5}\b")
_ERROR_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_DETAIL = 300


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_in: int
    scope: str | None


class Transient(Exception):
    """A failure worth retrying; ``reason`` is safe to log."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def read_token_response(response: httpx.Response, *, now: datetime) -> TokenResponse:
    status = response.status_code
    if status in _RETRYABLE or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        raise Transient(f"HTTP {status}", retry_after=retry_after)
    if status == httpx.codes.OK:
        return _token(response)
    error, description = _error(response)
    codes = _AM_CODE.findall(description)
    if codes:
        raise ConsentUnavailable(codes[0], description)
    raise UpstreamRefused(error or f"http_{status}", description)


def _token(response: httpx.Response) -> TokenResponse:
    try:
        body = response.json()
    except ValueError as exc:
        raise Transient("token response is not JSON") from exc
    token = body.get("access_token") if isinstance(body, dict) else None
    expires_in = body.get("expires_in") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise Transient("token response has no access_token")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise Transient("token response has no usable expires_in")
    scope = body.get("scope")
    return TokenResponse(token, expires_in, scope if isinstance(scope, str) else None)


def _error(response: httpx.Response) -> tuple[str | None, str]:
    """The OAuth ``error`` (if it looks like one) and a trimmed, printable description."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    error, description = body.get("error"), body.get("error_description")
    name = error if isinstance(error, str) and _ERROR_NAME.fullmatch(error) else None
    text = description if isinstance(description, str) else ""
    # Upstream text ends up in logs and problem details: keep it short and on one line.
    text = "".join(ch if ch.isprintable() else " " for ch in text)[:_MAX_DETAIL]
    return name, text
