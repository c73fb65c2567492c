"""The circuit breaker on its own (pure, time passed in), then in the client against the sandbox."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from broker.skatteetaten import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    ConsentRejected,
    RetryPolicy,
    SkatteetatenUnavailable,
)
from tests.adapters.skatteetaten_support import (
    PREFIX,
    SECRET_TOKEN,
    START,
    SUPPLIER,
    feil,
    mock_client,
    ok_json,
    ske_world,
)


def _open(breaker: CircuitBreaker, at: float = 0) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow(START + timedelta(seconds=at))
        breaker.failed(START + timedelta(seconds=at))


def test_closed_until_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cool_down=30)
    breaker.failed(START)
    breaker.failed(START)
    breaker.succeeded()  # not consecutive any more
    breaker.failed(START)
    breaker.failed(START)
    assert (breaker.state(START), breaker.failures) == (BreakerState.CLOSED, 2)
    assert breaker.allow(START)
    assert breaker.retry_after(START) == 0.0
    breaker.failed(START)
    assert breaker.state(START) is BreakerState.OPEN
    assert not breaker.allow(START + timedelta(seconds=29.9))
    assert breaker.retry_after(START + timedelta(seconds=10)) == 20.0


def test_half_open_lets_exactly_one_probe_through() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=30)
    _open(breaker)
    later = START + timedelta(seconds=30)
    assert breaker.state(later) is BreakerState.HALF_OPEN
    assert breaker.retry_after(later) == 0.0
    assert breaker.allow(later)  # the probe
    assert not breaker.allow(later)
    assert not breaker.allow(later + timedelta(seconds=5))
    assert breaker.retry_after(later + timedelta(seconds=5)) == 25.0
    breaker.succeeded()
    assert breaker.state(later) is BreakerState.CLOSED
    assert breaker.allow(later)
    assert breaker.failures == 0


def test_a_failed_probe_opens_again_for_a_full_cool_down() -> None:
    breaker = CircuitBreaker(failure_threshold=5, cool_down=30)
    _open(breaker)
    probe_at = START + timedelta(seconds=31)
    assert breaker.allow(probe_at)
    breaker.failed(probe_at)
    assert breaker.state(probe_at + timedelta(seconds=29)) is BreakerState.OPEN
    assert breaker.state(probe_at + timedelta(seconds=30)) is BreakerState.HALF_OPEN


def test_a_released_probe_frees_the_slot_and_a_lost_one_expires() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cool_down=30)
    _open(breaker)
    half = START + timedelta(seconds=30)
    assert breaker.allow(half)
    breaker.released()  # cancelled: no verdict
    assert breaker.allow(half)  # another probe may go
    assert not breaker.allow(half + timedelta(seconds=29))
    assert breaker.allow(half + timedelta(seconds=30))  # the first never reported back


@pytest.mark.parametrize(("threshold", "cool_down"), [(0, 30.0), (1, -1.0)])
def test_nonsense_settings_are_refused(threshold: int, cool_down: float) -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=threshold, cool_down=cool_down)


def test_the_defaults() -> None:
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.cool_down) == (5, 30.0)


# --- in the client ------------------------------------------------------------------------------


async def test_the_breaker_opens_fails_fast_and_half_opens_on_the_sandbox() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        breaker = CircuitBreaker(failure_threshold=3, cool_down=30)
        client = w.client(breaker=breaker)
        await w.fault("unavailable")

        with pytest.raises(SkatteetatenUnavailable) as first:
            await client.oppdrag(SUPPLIER, token=bearer)
        assert not isinstance(first.value, CircuitOpen)
        assert first.value.status == 503
        assert breaker.state(w.sandbox.clock.now()) is BreakerState.OPEN

        with pytest.raises(CircuitOpen) as fast:
            await client.oppdrag(SUPPLIER, token=bearer)
        assert fast.value.retry_after == 30.0
        assert (fast.value.status, fast.value.korrelasjonsid, fast.value.timed_out) == (
            None,
            None,
            False,
        )
        assert len(await w.calls()) == 3  # nothing was sent

        w.sandbox.clock.advance(30)
        with pytest.raises(SkatteetatenUnavailable) as probe:
            await client.oppdrag(SUPPLIER, token=bearer)  # one probe, it fails: open again
        assert not isinstance(probe.value, CircuitOpen)
        assert len(await w.calls()) == 4

        w.sandbox.clock.advance(30)
        await w.fault(None)
        answer = await client.oppdrag(SUPPLIER, token=bearer)
        assert breaker.state(w.sandbox.clock.now()) is BreakerState.CLOSED
        assert len(await w.calls()) == 5
    assert answer.forespurt_organisasjon == SUPPLIER
    assert w.sleeps.waits == [0.25, 0.5]  # the failed probe was not retried into the open breaker


async def test_a_refusal_counts_as_the_host_being_up() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    answers = [httpx.Response(503), feil(403, f"{PREFIX}-007"), httpx.Response(503), ok_json()]
    client, script = mock_client(answers, breaker=breaker, retry=RetryPolicy(attempts=1))
    with pytest.raises(SkatteetatenUnavailable):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    with pytest.raises(ConsentRejected):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert breaker.failures == 0
    with pytest.raises(SkatteetatenUnavailable):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert breaker.state(START) is BreakerState.CLOSED
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert len(script.requests) == 4


async def test_a_client_without_a_breaker_gets_its_own() -> None:
    first, _ = mock_client([], breaker=None)
    second, _ = mock_client([], breaker=None)
    assert first.breaker is not second.breaker
