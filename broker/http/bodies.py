"""Reading a client's JSON body: 415 unless ``application/json``, 400 unless valid JSON."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from broker.errors import BadRequest, UnsupportedMediaType

__all__ = ["json_body"]


async def json_body(request: Request, *, optional: bool = False) -> Any:
    """The parsed body; with ``optional``, None for an empty body without a content type."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if optional and not raw and not content_type:
        return None
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Send the body as application/json")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
