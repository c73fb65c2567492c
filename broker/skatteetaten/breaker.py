"""A small circuit breaker for one upstream host. Pure: the caller passes the time in.

    CLOSED ──(failure_threshold consecutive failures)──► OPEN
    OPEN ──(cool_down seconds pass)──► HALF_OPEN: one probe may go, every other call fails fast
    HALF_OPEN ──probe succeeds──► CLOSED        HALF_OPEN ──probe fails──► OPEN (cool-down anew)

"Failure" means the host did not answer usefully (the client's ``SkatteetatenUnavailable``);
a refusal (4xx) shows the host is up and counts as a success. A probe that ends without a
verdict (the caller was cancelled) is ``released`` so another may go; one that never reports
back at all is given up after another ``cool_down``. The breaker counts attempts, not calls, so
a call's retries move it too (ASVS 16.5.2, ``security.md`` §4.1).

One breaker per host, shared by every client for that host: the composition root makes it.
It holds no lock; it is meant for one event loop, where its methods do not interleave.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, cool_down: float = 30.0) -> None:
        if failure_threshold < 1 or cool_down < 0:
            raise ValueError("failure_threshold must be at least 1 and cool_down not negative")
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._failures = 0
        self._opened_at: datetime | None = None
        self._probe_since: datetime | None = None

    def state(self, now: datetime) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._elapsed(self._opened_at, now) < self.cool_down:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def failures(self) -> int:
        """Consecutive failures so far."""
        return self._failures

    def allow(self, now: datetime) -> bool:
        """Whether a call may go now. In HALF_OPEN the first caller takes the probe."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        if self._probe_since is not None and self._elapsed(self._probe_since, now) < self.cool_down:
            return False
        self._probe_since = now
        return True

    def retry_after(self, now: datetime) -> float:
        """Seconds until a probe may go (0 when one may go now)."""
        if self._opened_at is None:
            return 0.0
        if self.state(now) is BreakerState.HALF_OPEN:
            if self._probe_since is None:
                return 0.0
            return max(0.0, self.cool_down - self._elapsed(self._probe_since, now))
        return max(0.0, self.cool_down - self._elapsed(self._opened_at, now))

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = self._probe_since = None

    def failed(self, now: datetime) -> None:
        self._failures += 1
        if self._probe_since is not None or self._failures >= self.failure_threshold:
            self._opened_at, self._probe_since = now, None

    def released(self) -> None:
        """A call ended without telling whether the host works (it was cancelled)."""
        self._probe_since = None

    @staticmethod
    def _elapsed(since: datetime, now: datetime) -> float:
        return (now - since).total_seconds()
