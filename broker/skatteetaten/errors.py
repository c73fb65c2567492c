"""What the Skatteetaten client raises: the consent ports' exceptions, by what the caller must do.

    SkatteetatenError
    ├── SkatteetatenUnavailable (UpstreamUnavailable)  try later: -001, -002, DAS-003, any 5xx,
    │   │                                              408, 429, timeouts, connection errors
    │   ├── SkatteetatenBadResponse                    an answer we cannot use (not retried)
    │   └── CircuitOpen                                the breaker is open: nothing was sent
    └── SkatteetatenRefused (UpstreamRefused)          4xx: never retried
        ├── ConsentRejected        -007: the consent is missing, revoked or invalid
        ├── SubjectNotFound        -008 (and 410): Skatteetaten does not know the organisation
        ├── OurDefect              -006, -009, other 4xx: a request we should never have sent
        └── Misconfigured          -003, -005, DAS-002, DAS-008, other 403/404: our set-up
            └── TokenRejected      401 or -004: drop the cached token and try once more

Every error carries ``status`` (None when nothing came back), Skatteetaten's ``kode`` when it
gave one, and ``korrelasjonsid``: Skatteetaten's from the error body or a ``Korrelasjonsid``
response header, else the one we sent, so support can find the call (§3.1). A refusal's
``code`` (the port's) is the ``kode``, or ``http_<status>`` for a body without one (a gateway
page). ``melding`` is Skatteetaten's text, cleaned and shortened; it varies for one ``kode``, so
match on ``kode``, never on it (§3.1). No message holds a token: messages are built from
statuses, codes, ids we checked the shape of, and exception type names; ``melding`` has
anything token-like struck out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

from broker.consent.ports import UpstreamRefused, UpstreamUnavailable
from broker.skatteetaten.schemas import Feil, parse_feil

__all__ = [
    "PREFIX",
    "CircuitOpen",
    "ConsentRejected",
    "Misconfigured",
    "OurDefect",
    "SkatteetatenBadResponse",
    "SkatteetatenError",
    "SkatteetatenRefused",
    "SkatteetatenUnavailable",
    "SubjectNotFound",
    "TokenRejected",
    "from_response",
    "retry_after",
]

PREFIX = "OPPDRAGUTENLANDSKEVIRKSOMHETER"

_KODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_JWT_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MELDING_LIMIT = 300


class SkatteetatenError(Exception):
    """Base of everything the Skatteetaten client raises."""

    status: int | None = None
    kode: str | None = None
    korrelasjonsid: str | None = None
    melding: str | None = None


class SkatteetatenUnavailable(SkatteetatenError, UpstreamUnavailable):
    """No usable answer for now. ``timed_out`` tells a deadline (the caller's 504) from the
    rest (503); ``retry_after`` is in seconds, from ``Retry-After`` or the breaker."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kode: str | None = None,
        korrelasjonsid: str | None = None,
        melding: str | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.kode, self.korrelasjonsid = status, kode, korrelasjonsid
        self.melding = melding
        self.retry_after = retry_after
        self.timed_out = timed_out


class SkatteetatenBadResponse(SkatteetatenUnavailable):
    """Skatteetaten (or something in front of it) answered with something we cannot use."""


class CircuitOpen(SkatteetatenUnavailable):
    """Recent calls failed, so this one was not sent; ``retry_after`` is the rest of the
    breaker's cool-down."""


class SkatteetatenRefused(SkatteetatenError, UpstreamRefused):
    """A refusal for good. ``code`` is ``kode`` or ``http_<status>``; ``detail`` is ours."""

    _summary = "Skatteetaten refused the request"

    def __init__(
        self,
        *,
        status: int,
        kode: str | None,
        korrelasjonsid: str | None,
        melding: str | None = None,
    ) -> None:
        code = kode or f"http_{status}"
        detail = f"{self._summary} ({status}"
        detail += f" {kode})" if kode else f" {_phrase(status)})"
        if korrelasjonsid:
            detail += f"; korrelasjonsid {korrelasjonsid}"
        super().__init__(code, detail)
        self.status, self.kode, self.korrelasjonsid = status, kode, korrelasjonsid
        self.melding = melding


class ConsentRejected(SkatteetatenRefused):
    _summary = "Skatteetaten does not accept the consent"


class SubjectNotFound(SkatteetatenRefused):
    _summary = "Skatteetaten does not know the organisation"


class OurDefect(SkatteetatenRefused):
    _summary = "Skatteetaten refused a request the broker should not have sent"


class Misconfigured(SkatteetatenRefused):
    _summary = "Skatteetaten refused the broker's access (Maskinporten, scope or address)"


class TokenRejected(Misconfigured):
    _summary = "Skatteetaten did not accept the access token"


_BY_KODE: dict[str, type[SkatteetatenRefused]] = {
    f"{PREFIX}-003": Misconfigured,  # unknown URL: our base URL or path is wrong
    f"{PREFIX}-004": TokenRejected,
    f"{PREFIX}-005": Misconfigured,
    f"{PREFIX}-006": OurDefect,
    f"{PREFIX}-007": ConsentRejected,
    f"{PREFIX}-008": SubjectNotFound,
    f"{PREFIX}-009": OurDefect,
    "DAS-002": Misconfigured,  # not a valid endpoint
    "DAS-008": Misconfigured,  # not authorised for the resource
}
_BY_STATUS: dict[int, type[SkatteetatenRefused]] = {
    403: Misconfigured,
    404: Misconfigured,  # a gateway's "404 NOT FOUND" or "Unknown instance" page (§3.1)
    410: SubjectNotFound,
}
_TRANSIENT_4XX = frozenset({408, 429})


def from_response(
    status: int,
    headers: httpx.Headers,
    body: bytes,
    *,
    sent_korrelasjonsid: str,
    now: datetime,
    secrets: Iterable[str] = (),
) -> SkatteetatenError | None:
    """The error an answer means, or None for a 2xx (which the caller reads).

    ``secrets`` (the bearer token) are struck out of ``melding`` should Skatteetaten quote them.
    """
    if 200 <= status < 300:
        return None
    feil = parse_feil(body, headers.get("content-type")) or Feil(None, None, None)
    kode = _checked(feil.kode, _KODE)
    korrelasjonsid = (
        _checked(feil.korrelasjonsid, _ID)
        or _checked(headers.get("korrelasjonsid"), _ID)
        or sent_korrelasjonsid
    )
    melding = _clean(feil.melding, secrets)
    if status >= 500 or status in _TRANSIENT_4XX:
        return SkatteetatenUnavailable(
            _answered(status, kode, korrelasjonsid),
            status=status,
            kode=kode,
            korrelasjonsid=korrelasjonsid,
            melding=melding,
            retry_after=retry_after(headers, now=now),
        )
    if status >= 400:
        kind = _refusal(status, kode)
        return kind(status=status, kode=kode, korrelasjonsid=korrelasjonsid, melding=melding)
    # 1xx/3xx: redirects are not followed, and nothing else is expected.
    return SkatteetatenBadResponse(
        _answered(status, kode, korrelasjonsid), status=status, korrelasjonsid=korrelasjonsid
    )


def _refusal(status: int, kode: str | None) -> type[SkatteetatenRefused]:
    if status == 401:
        return TokenRejected
    if kode is not None and kode.upper() in _BY_KODE:
        return _BY_KODE[kode.upper()]
    return _BY_STATUS.get(status, OurDefect)


def retry_after(headers: httpx.Headers, *, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None if absent or bad."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.utcoffset() is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _answered(status: int, kode: str | None, korrelasjonsid: str | None) -> str:
    message = f"Skatteetaten answered {status} {kode or _phrase(status)}"
    return f"{message}; korrelasjonsid {korrelasjonsid}" if korrelasjonsid else message


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _checked(value: str | None, shape: re.Pattern[str]) -> str | None:
    """``value`` if it has the expected shape (so it is safe in logs), else None."""
    if value is not None and shape.fullmatch(value.strip()):
        return value.strip()
    return None


def _clean(melding: str | None, secrets: Iterable[str]) -> str | None:
    if melding is None:
        return None
    for secret in secrets:
        if secret:
            melding = melding.replace(secret, "[redacted]")
    melding = _JWT_LIKE.sub("[redacted]", melding)
    melding = _CONTROL.sub(" ", melding).strip()
    return melding[:_MELDING_LIMIT] or None
