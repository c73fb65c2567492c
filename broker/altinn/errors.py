"""What the Altinn client raises: the consent port's exceptions, with Altinn's particulars.

    AltinnError
    ├── AltinnUnavailable (UpstreamUnavailable)   5xx, 429, timeouts, connection errors
    │   └── AltinnBadResponse                     a body we cannot use (garbage, no viewUri)
    └── AltinnRefused (UpstreamRefused)           ProblemDetails, and empty 401/403/404

The consent service catches the port's two exceptions; the extra attributes are for logs and
tests. No message carries a token: messages are built from status codes, Altinn's error codes
and titles, and exception type names, never from request headers or exception texts.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import httpx

from broker.altinn.schemas import Problem, parse_problem
from broker.consent.ports import UpstreamRefused, UpstreamUnavailable

__all__ = [
    "AltinnBadResponse",
    "AltinnError",
    "AltinnRefused",
    "AltinnUnavailable",
    "from_response",
    "retry_after",
]

# A multiple-problems answer is a validation failure that Altinn sends as 500 (§5.1).
MULTIPLE_PROBLEMS = "STD-00001"


class AltinnError(Exception):
    """Base of everything the Altinn client raises."""


class AltinnUnavailable(AltinnError, UpstreamUnavailable):
    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds Altinn asked us to wait, if it said


class AltinnBadResponse(AltinnUnavailable):
    """Altinn answered, but not with anything we can use."""


class AltinnRefused(AltinnError, UpstreamRefused):
    """``code`` is Altinn's top-level code (``AM-00016``, ``STD-00000``, ``STD-00001``) or ours
    for an empty body (``unauthorized``, ``forbidden``, ``not_found``); ``codes`` lists the
    leaf codes (each validation error or nested problem), ``detail`` is safe to show."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        status: int,
        codes: tuple[str, ...] = (),
        trace_id: str | None = None,
    ) -> None:
        super().__init__(code, detail)
        self.status = status
        self.codes = codes
        self.trace_id = trace_id


# Our codes where Altinn's answer has no body (authentication and authorization run before the
# controller, §5.1) or where the port promises one (``not_found`` from ``status``).
_STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


def retry_after(response: httpx.Response, *, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None if absent or bad."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.utcoffset() is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:  # not JSON (a proxy's HTML page, say)
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _refused(status: int, problem: Problem | None) -> AltinnRefused:
    fallback = f"Altinn answered {status} {_phrase(status)}"
    code = _STATUS_CODES.get(status, f"http_{status}")
    if problem is None:
        return AltinnRefused(code, fallback, status=status)
    if status in (401, 404):
        # Keep the port's code; Altinn's (``AM-00001``) stays in ``codes``.
        codes = (problem.code, *(c for c in problem.codes if c != problem.code))
    else:
        code, codes = problem.code, problem.codes
    return AltinnRefused(
        code, problem.summary, status=status, codes=codes, trace_id=problem.trace_id
    )


def from_response(response: httpx.Response, *, now: datetime) -> AltinnError | None:
    """The error an Altinn answer means, or None for a 2xx (which the caller parses)."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    problem = parse_problem(_body(response), status=status)
    if status == 429 or (status >= 500 and (problem is None or problem.code != MULTIPLE_PROBLEMS)):
        message = f"Altinn answered {status} {_phrase(status)}"
        return AltinnUnavailable(message, status=status, retry_after=retry_after(response, now=now))
    if 400 <= status < 600:
        return _refused(status, problem)
    # 1xx/3xx: redirects are not followed (app.py), and nothing else is expected here.
    return AltinnBadResponse(f"Altinn answered {status} {_phrase(status)}", status=status)
