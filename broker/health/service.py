"""Readiness: the database answers and its schema is at the revision this code expects."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Readiness", "ReadinessService"]

logger = logging.getLogger("broker.health")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]


class ReadinessService:
    def __init__(
        self,
        *,
        current_revisions: Callable[[], Awaitable[set[str]]],
        expected_revisions: frozenset[str],
    ) -> None:
        self._current_revisions = current_revisions
        self._expected = expected_revisions

    async def check(self) -> Readiness:
        try:
            current = await self._current_revisions()
        except Exception as exc:  # any driver error means "not ready", whatever its type
            logger.warning("readiness: database unreachable (%s)", type(exc).__name__)
            return Readiness(False, {"database": "unreachable", "migrations": "unknown"})
        at_head = current == self._expected
        return Readiness(
            at_head,
            {"database": "ok", "migrations": "at_head" if at_head else "behind_or_ahead"},
        )
