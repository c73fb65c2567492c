"""Altinn's ProblemDetails wire format (``../shared/reference/altinn-consent.md`` §5.1).

One problem is ``{type, title, status, [detail], code, traceId, statusDescription, ...extensions}``
with ``type = urn:altinn:error:<code>``. Validation failures are ``STD-00000`` carrying
``validationErrors``; several problems at once are ``STD-00001`` carrying ``problems`` — and HTTP
500, a quirk of Altinn's descriptor that the config can turn off.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "AM",
    "VLD",
    "Problem",
    "ValidationError",
    "combine",
    "problem_response",
    "validation_problem",
]

PROBLEM_MEDIA_TYPE = "application/problem+json; charset=utf-8"


@dataclass(frozen=True)
class ValidationError:
    code: str
    title: str
    paths: tuple[str, ...] = ()
    detail: str | None = None

    def at(self, path: str, detail: str | None = None) -> ValidationError:
        return ValidationError(self.code, self.title, (path,), detail)

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "title": self.title}
        if self.paths:
            body["paths"] = list(self.paths)
        if self.detail is not None:
            body["detail"] = self.detail
        return body


@dataclass(frozen=True)
class Problem:
    code: str
    status: int
    title: str
    extensions: Mapping[str, str] = field(default_factory=dict)
    validation_errors: tuple[ValidationError, ...] = ()
    problems: tuple[Problem, ...] = ()

    def with_extensions(self, **extensions: str) -> Problem:
        return Problem(self.code, self.status, self.title, dict(extensions))

    def wire(self, trace_id: str, *, status: int | None = None) -> dict[str, Any]:
        shown = self.status if status is None else status
        body: dict[str, Any] = {
            "type": f"urn:altinn:error:{self.code}",
            "title": self.title,
            "status": shown,
            "code": self.code,
            "traceId": trace_id,
            "statusDescription": HTTPStatus(shown).phrase,
        }
        if self.code == "STD-00000":
            body["validationErrors"] = [e.wire() for e in self.validation_errors]
        if self.code == "STD-00001":
            body["problems"] = [p.wire(trace_id) for p in self.problems]
        body.update(self.extensions)
        return body


def _am(number: int, status: HTTPStatus, title: str) -> Problem:
    return Problem(f"AM-{number:05d}", int(status), title)


def _vld(domain: str, number: int, title: str) -> ValidationError:
    return ValidationError(f"{domain}.VLD-{number:05d}", title)


class AM:
    """Access Management problem descriptors (AM-ERR ``Problems.cs``)."""

    NOT_AUTHORIZED = _am(0, HTTPStatus.FORBIDDEN, "Not authorized for consent")
    NOT_FOUND = _am(1, HTTPStatus.NOT_FOUND, "Consent not found")
    CANT_ACCEPT = _am(2, HTTPStatus.BAD_REQUEST, "Consent have wrong status to be consented")
    UNKNOWN_ORG = _am(3, HTTPStatus.BAD_REQUEST, "Unknown organization. Could not be found")
    UNKNOWN_PERSON = _am(4, HTTPStatus.BAD_REQUEST, "Unknown person. Could not be found")
    INVALID_RESOURCE = _am(5, HTTPStatus.BAD_REQUEST, "Invalid consent resource")
    UNKNOWN_METADATA = _am(6, HTTPStatus.BAD_REQUEST, "Invalid consent metadata")
    EMPTY_METADATA = _am(7, HTTPStatus.BAD_REQUEST, "Missing metadata value")
    MISSING_METADATA = _am(8, HTTPStatus.BAD_REQUEST, "Missing metadata")
    MIXED_TEMPLATES = _am(9, HTTPStatus.BAD_REQUEST, "Invalid resource combination")
    CANT_REVOKE = _am(10, HTTPStatus.BAD_REQUEST, "Consent cant be revoked.Wrong status")
    CANT_REJECT = _am(15, HTTPStatus.BAD_REQUEST, "Consent cant be rejected. Wrong status")
    ID_EXISTS = _am(16, HTTPStatus.BAD_REQUEST, "Consent with id already exist")


class VLD:
    """Validation error descriptors (AM-ERR ``ValidationErrors.cs`` and Altinn's STD set)."""

    REQUIRED = _vld("STD", 0, "The field is required.")
    INVALID_VALUE = _vld("STD", 2, "The value provided is invalid.")
    JSON_ERROR = _vld(
        "STD",
        17,
        "The JSON value failed to deserialize. Check the JSON format and ensure that the property "
        "names match the expected model.",
    )
    TIME_NOT_IN_FUTURE = _vld("AM", 22, "The time need to be in the future")
    EMPTY_LIST = _vld("AM", 23, "The list cant be empty")
    INVALID_REDIRECT_URL = _vld("AM", 27, "Redirect URL is not a valid URL")
    # The titles of 51-53 were not captured in the reference; the codes and paths were.
    INVALID_DATE_RANGE = _vld("AM", 51, "createdAfter must be before createdBefore")
    INVALID_EVENT_TYPE = _vld("AM", 52, "Invalid event type")
    INVALID_CONTINUATION_TOKEN = _vld("AM", 53, "Invalid continuation token")


def validation_problem(errors: Sequence[ValidationError]) -> Problem:
    return Problem(
        "STD-00000",
        int(HTTPStatus.BAD_REQUEST),
        "One or more validation errors occurred.",
        validation_errors=tuple(errors),
    )


def combine(problems: Sequence[Problem]) -> Problem | None:
    """Altinn's ``MultipleProblemBuilder``: nothing, the one problem, or ``STD-00001``."""
    if not problems:
        return None
    if len(problems) == 1:
        return problems[0]
    return Problem(
        "STD-00001",
        int(HTTPStatus.INTERNAL_SERVER_ERROR),
        "Multiple problems occurred.",
        problems=tuple(problems),
    )


def problem_response(problem: Problem, *, multiple_as_500: bool = True) -> JSONResponse:
    status = problem.status
    if problem.code == "STD-00001" and not multiple_as_500:
        status = int(HTTPStatus.BAD_REQUEST)
    trace_id = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
    return JSONResponse(
        problem.wire(trace_id, status=status),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )
