"""The broker's error hierarchy. Each error carries its HTTP status and a stable ``code``.

    BrokerError                      500 internal_error
    ├── BadRequest                   400 bad_request
    │   └── ValidationFailed         422 validation_failed
    ├── Unauthenticated              401 unauthenticated
    ├── Forbidden                    403 forbidden
    ├── NotFound                     404 not_found
    ├── MethodNotAllowed             405 method_not_allowed
    ├── Conflict                     409 conflict
    ├── PayloadTooLarge              413 payload_too_large
    ├── UnsupportedMediaType         415 unsupported_media_type
    ├── NotAcceptable                406 not_acceptable
    ├── BadGateway                   502 bad_gateway
    ├── ServiceUnavailable           503 service_unavailable
    └── GatewayTimeout               504 gateway_timeout

Codes are part of the public API: never rename one, add a new class instead. ``detail`` is shown
to the caller, so it must never carry a token, a secret or a personal number; adapters translate
foreign exceptions into these with ``raise … from exc`` and a detail of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BadGateway",
    "BadRequest",
    "BrokerError",
    "Conflict",
    "Forbidden",
    "GatewayTimeout",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Unauthenticated",
    "UnsupportedMediaType",
    "ValidationFailed",
]


class BrokerError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # A subclass fixes the family (status, title); a specific ``code`` may refine it.
        self.instance_code = code or self.code
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


class BadRequest(BrokerError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class ValidationFailed(BadRequest):
    status = 422
    code = "validation_failed"
    title = "The request is not valid"


class Unauthenticated(BrokerError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(BrokerError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(BrokerError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(BrokerError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(BrokerError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(BrokerError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(BrokerError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class NotAcceptable(BrokerError):
    status = 406
    code = "not_acceptable"
    title = "Not acceptable"


class BadGateway(BrokerError):
    status = 502
    code = "bad_gateway"
    title = "The upstream service refused our request"


class GatewayTimeout(BrokerError):
    status = 504
    code = "gateway_timeout"
    title = "The upstream service did not answer in time"


class ServiceUnavailable(BrokerError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"
