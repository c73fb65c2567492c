"""The retry schedule and the disabling rules, as docs/webhooks.md documents them (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.settings import Settings
from broker.webhooks.client import parse_retry_after
from broker.webhooks.schedule import Decision, Outcome, RetryPolicy, decide

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
POLICY = RetryPolicy()
FAILED = Outcome(500, "HTTP 500")


def test_the_default_schedule_is_the_documented_one_and_the_settings_default() -> None:
    documented = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert POLICY.delays == documented
    assert Settings.from_env({}).webhooks.retry_schedule == documented
    assert POLICY.max_attempts == 10
    assert POLICY.disable_after == 5 * 86400 == Settings.from_env({}).webhooks.disable_after
    # ≈ 3 days and 3 hours from the first attempt to the last, without jitter.
    assert sum(documented) == 272105


@pytest.mark.parametrize("failed", range(1, 10))
@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999999])
def test_each_wait_is_the_scheduled_one_within_twenty_percent(failed: int, rand: float) -> None:
    base = POLICY.delays[failed - 1]
    delay = POLICY.delay(failed, rand=rand, retry_after=None)
    assert delay is not None
    assert 0.8 * base <= delay < 1.2 * base
    if rand == 0.5:
        assert delay == pytest.approx(base)


def test_the_jitter_spreads_the_waits() -> None:
    waits = {POLICY.delay(1, rand=r / 10, retry_after=None) for r in range(10)}
    assert len(waits) == 10


def test_after_the_last_scheduled_attempt_the_event_fails() -> None:
    assert POLICY.delay(9, rand=0.5, retry_after=None) == 86400
    assert POLICY.delay(10, rand=0.5, retry_after=None) is None
    decision = decide(FAILED, attempts=10, failing_since=NOW, now=NOW, policy=POLICY, rand=0.5)
    assert decision == Decision("failed", None, failing=True)


def test_retry_after_is_honoured_but_capped_at_the_longest_wait() -> None:
    assert POLICY.delay(1, rand=0.5, retry_after=120) == 120  # later than the 5 s step
    assert POLICY.delay(2, rand=0.5, retry_after=120) == 300  # the schedule is later anyway
    assert POLICY.delay(1, rand=0.5, retry_after=10**9) == 86400  # no parking for a year
    throttled = Outcome(429, "HTTP 429", retry_after=600)
    decision = decide(throttled, attempts=1, failing_since=None, now=NOW, policy=POLICY, rand=0)
    assert decision.next_attempt_at == NOW + timedelta(seconds=600)


def test_a_delivery_stops_the_failure_clock() -> None:
    ok = Outcome(204, None)
    decision = decide(ok, attempts=3, failing_since=NOW, now=NOW, policy=POLICY, rand=0.5)
    assert decision == Decision("delivered", None, failing=False)


def test_a_failure_is_retried_and_starts_the_failure_clock() -> None:
    decision = decide(FAILED, attempts=1, failing_since=None, now=NOW, policy=POLICY, rand=0.5)
    assert decision == Decision("pending", NOW + timedelta(seconds=5), failing=True)


def test_410_gone_disables_the_endpoint_at_once() -> None:
    gone = Outcome(410, "HTTP 410: the endpoint is gone")
    decision = decide(gone, attempts=1, failing_since=None, now=NOW, policy=POLICY, rand=0.5)
    assert decision.status == "failed"
    assert decision.disable_reason == "the endpoint answered 410 Gone"


def test_continuous_failure_for_the_period_disables_with_the_reason() -> None:
    since = NOW - timedelta(days=5)
    decision = decide(FAILED, attempts=2, failing_since=since, now=NOW, policy=POLICY, rand=0.5)
    assert decision.status == "failed"
    assert decision.disable_reason == (
        "every attempt failed since 2026-11-23T12:00:00Z; the last: HTTP 500"
    )
    just_before = NOW - timedelta(days=5) + timedelta(seconds=1)
    retried = decide(
        FAILED, attempts=2, failing_since=just_before, now=NOW, policy=POLICY, rand=0.5
    )
    assert retried.status == "pending"
    assert retried.disable_reason is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Sat, 28 Nov 2026 12:01:00 GMT", 60.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_a_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(delays=())
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.0)
