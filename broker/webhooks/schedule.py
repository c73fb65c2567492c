"""What happens after an attempt: the retry schedule and when an endpoint is disabled (pure).

- 2xx: delivered.
- 410 Gone: the receiver says the endpoint is gone for good: the endpoint is disabled at once,
  with that reason, and this and its other waiting events become ``failed``.
- Anything else (3xx, as redirects are never followed; 4xx; 5xx; a timeout; a refused or failed
  connection) is a failed attempt. After the n-th failed attempt the next one is due
  ``delays[n-1]`` seconds later, times a random factor in [1 - jitter, 1 + jitter]; when the
  receiver sent ``Retry-After``, never sooner than that (capped at the longest delay of the
  schedule, so a receiver cannot park an event for a year). After the last delay's attempt
  fails too, the event is ``failed``.
- An endpoint whose attempts have all failed for ``disable_after`` seconds (``failing_since``
  is set at the first failure after a success and cleared by any success) is disabled with the
  reason and its last error; its waiting events become ``failed``.

``failed`` events can be redelivered by hand, with the same ``webhook-id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Decision", "Outcome", "RetryPolicy", "decide"]


@dataclass(frozen=True)
class Outcome:
    """What one attempt got back. ``error`` is None for a delivery (a 2xx)."""

    status_code: int | None
    error: str | None
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def delivered(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    jitter: float = 0.2
    disable_after: float = 5 * 86400

    def __post_init__(self) -> None:
        if not self.delays or min(self.delays) <= 0:
            raise ValueError("the schedule needs positive delays")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay(
        self, failed_attempts: int, *, rand: float, retry_after: float | None
    ) -> float | None:
        """Seconds until the next attempt after ``failed_attempts`` failures, or None when the
        schedule is used up. ``rand`` is uniform in [0, 1)."""
        if failed_attempts > len(self.delays):
            return None
        base = self.delays[failed_attempts - 1]
        delay = base * (1 - self.jitter + 2 * self.jitter * rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, max(self.delays)))
        return delay


@dataclass(frozen=True)
class Decision:
    status: str  # pending, delivered or failed
    next_attempt_at: datetime | None
    failing: bool  # the endpoint is failing (set failing_since if unset); False clears it
    disable_reason: str | None = None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def decide(
    outcome: Outcome,
    *,
    attempts: int,
    failing_since: datetime | None,
    now: datetime,
    policy: RetryPolicy,
    rand: float,
) -> Decision:
    """The event's fate after its ``attempts``-th attempt (this one included) got ``outcome``."""
    if outcome.delivered:
        return Decision("delivered", None, failing=False)
    if outcome.gone:
        return Decision(
            "failed", None, failing=True, disable_reason="the endpoint answered 410 Gone"
        )
    since = failing_since or now
    if (now - since).total_seconds() >= policy.disable_after:
        reason = f"every attempt failed since {_iso(since)}; the last: {outcome.error}"
        return Decision("failed", None, failing=True, disable_reason=reason[:200])
    delay = policy.delay(attempts, rand=rand, retry_after=outcome.retry_after)
    if delay is None:
        return Decision("failed", None, failing=True)
    return Decision("pending", now + timedelta(seconds=delay), failing=True)
