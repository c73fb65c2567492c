"""Adapter for Skatteetaten's "Oppdrag utenlandske virksomheter" API (rettighetspakke ebevis).

Imports nothing from the rest of the broker but ``broker.consent.ports``, whose exceptions its
errors subclass (``errors.py``). ``SkatteetatenClient`` implements the relay's ``OppdragSource``.
"""

from broker.skatteetaten.breaker import BreakerState, CircuitBreaker
from broker.skatteetaten.client import API_SCOPE, RetryPolicy, SkatteetatenClient
from broker.skatteetaten.errors import (
    CircuitOpen,
    ConsentRejected,
    Misconfigured,
    OurDefect,
    SkatteetatenBadResponse,
    SkatteetatenError,
    SkatteetatenRefused,
    SkatteetatenUnavailable,
    SubjectNotFound,
    TokenRejected,
)
from broker.skatteetaten.schemas import Accept, OppdragAnswer, OppdragCounts

__all__ = [
    "API_SCOPE",
    "Accept",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ConsentRejected",
    "Misconfigured",
    "OppdragAnswer",
    "OppdragCounts",
    "OurDefect",
    "RetryPolicy",
    "SkatteetatenBadResponse",
    "SkatteetatenClient",
    "SkatteetatenError",
    "SkatteetatenRefused",
    "SkatteetatenUnavailable",
    "SubjectNotFound",
    "TokenRejected",
]
