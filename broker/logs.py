"""Structured JSON logs with a redaction pass that nothing bypasses.

Every part of a record (message, each extra field, the traceback) is scrubbed before it is
rendered as one JSON line, so a token that slips into an exception message is caught as surely
as one passed in an ``extra`` field. Scrubbing happens before JSON encoding so that a pattern can
never cut through the encoding and break the line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["REQUEST_ID", "JsonFormatter", "Redactor", "configure_logging"]

REQUEST_ID: ContextVar[str | None] = ContextVar("broker_request_id", default=None)

_REDACTED = "[REDACTED]"
_SENSITIVE_KEYS = (
    "authorization|altinnsamtykke|assertion|client_assertion|access_token|refresh_token|id_token"
    "|consent_token|authorizationcode|authorization_code|client_secret|password|passwd|api_key"
    "|apikey|x-api-key|secret|token|cookie|set-cookie"
)
_SENSITIVE_KEY = re.compile(rf"(?i)^(?:{_SENSITIVE_KEYS})$")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Scheme and credential together, before the key rule could take only the scheme word.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + _REDACTED),
    # key=value, key: value, "key": "value", 'key': 'value' (and \"quoted\" inside a message).
    (
        re.compile(
            r"""(?i)(["']?\b(?:"""
            + _SENSITIVE_KEYS
            + r""")\b["']?\s*[:=]\s*)(\\?"(?:[^"\\]|\\.)*?\\?"|'[^']*'|[^\s,&;}\]"'\\]+)"""
        ),
        r"\1" + _REDACTED,
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), _REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), _REDACTED),
    # Norwegian personal numbers (fødselsnummer, D-number): 11 digits, maybe split 6+5.
    (re.compile(r"(?<![0-9])[0-9]{6}[ -]?[0-9]{5}(?![0-9])"), "[REDACTED-PNR]"),
)


class Redactor:
    """Removes secrets from text: known shapes by pattern, configured secret values literally."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        # Short literals would shred ordinary words; secrets are long.
        self._literals = sorted({s for s in literals if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for literal in self._literals:
            text = text.replace(literal, _REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any) -> Any:
        """Redact a structured value: sensitive keys lose their value, strings are redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {
                k: _REDACTED if _SENSITIVE_KEY.match(str(k)) else self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set):
            return [self.scrub(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.redact(str(value))


# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(self._redactor.scrub(entry), ensure_ascii=False)


def configure_logging(
    level: str, *, redact: Iterable[str] = (), stream: IO[str] | None = None
) -> None:
    """Send every logger (ours, uvicorn's, SQLAlchemy's) through one redacting JSON handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(Redactor(redact)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our access log replaces uvicorn's, which would print full URLs with their query strings.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request URL at INFO; ours carry consent ids, which stay out of logs.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
