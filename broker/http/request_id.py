"""Accept a well-formed ``X-Request-ID`` or make one; it is echoed and logged everywhere."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["REQUEST_ID_HEADER", "SCOPE_KEY", "choose_request_id", "request_id_of"]

REQUEST_ID_HEADER = "X-Request-ID"
SCOPE_KEY = "broker.request_id"
# Narrow on purpose: the value lands in logs and headers, so nothing that could inject.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def choose_request_id(offered: str | None) -> str:
    if offered is not None and _WELL_FORMED.fullmatch(offered):
        return offered
    return str(uuid.uuid4())


def request_id_of(scope: Mapping[str, Any]) -> str | None:
    value = scope.get(SCOPE_KEY)
    return value if isinstance(value, str) else None
