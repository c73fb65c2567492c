"""Transient failures of the token endpoint: bounded retries with back-off, jitter and
Retry-After, a fresh grant per attempt, and UpstreamUnavailable when they run out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from broker.consent.ports import UpstreamUnavailable
from broker.maskinporten.retry import RetryPolicy, parse_retry_after
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten import Fault, SandboxClient
from tests.adapters.maskinporten_support import Fake, Sleeps, fake_maskinporten
from tests.sandbox.maskinporten_helpers import SCOPE, START, broker_client

UNAVAILABLE = Fault(503, "temporarily_unavailable", "Service unavailable")


@pytest.fixture(scope="module")
def registered() -> SandboxClient:
    return broker_client()


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp-retry")


@pytest.fixture
async def mp(registered: SandboxClient, keys: SigningKeys, tmp_path: Path) -> AsyncIterator[Fake]:
    async with fake_maskinporten(registered, keys, tmp_path) as fake:
        yield fake


async def test_a_503_with_retry_after_is_retried_after_that_long(mp: Fake) -> None:
    mp.state.fail_next(Fault(503, "temporarily_unavailable", "Down", retry_after=7))

    token = await mp.client().access_token(SCOPE)

    assert token.token
    assert mp.sleeps.delays == [7.0]
    assert mp.token_requests() == 2


async def test_a_429_without_retry_after_backs_off_exponentially(mp: Fake) -> None:
    mp.state.fail_next(Fault(429, "too_many_requests", "Slow down"), count=2)

    await mp.client(
        retry=RetryPolicy(attempts=4, sleep=mp.sleeps, jitter=lambda: 0.0)
    ).access_token(SCOPE)

    # Equal jitter with a jitter of 0: half of 0.5 s, then half of 1 s.
    assert mp.sleeps.delays == [0.25, 0.5]
    assert mp.token_requests() == 3


async def test_retries_run_out_with_upstream_unavailable(mp: Fake) -> None:
    mp.state.fail_next(UNAVAILABLE, count=5)

    with pytest.raises(UpstreamUnavailable, match=r"after 3 attempt\(s\): HTTP 503"):
        await mp.client().access_token(SCOPE)

    assert mp.token_requests() == 3
    assert len(mp.sleeps.delays) == 2


async def test_a_retry_after_beyond_the_limit_ends_retries_at_once(mp: Fake) -> None:
    mp.state.fail_next(Fault(503, "temporarily_unavailable", "Maintenance", retry_after=3600))

    with pytest.raises(UpstreamUnavailable, match=r"after 1 attempt\(s\)"):
        await mp.client().access_token(SCOPE)

    assert (mp.token_requests(), mp.sleeps.delays) == (1, [])


async def test_a_retry_after_date_counts_from_the_clock(mp: Fake) -> None:
    when = format_datetime(START + timedelta(seconds=12), usegmt=True)
    mp.traffic.faults.append(httpx.Response(503, headers={"Retry-After": when}))

    await mp.client().access_token(SCOPE)

    assert mp.sleeps.delays == [12.0]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.Response(502, text="Bad gateway"),
        httpx.Response(408),
        httpx.Response(200, text='{"access_token": "tru'),
        httpx.Response(200, json={"access_token": "t"}),
        httpx.Response(200, json={"access_token": "", "expires_in": 120}),
        httpx.Response(200, json={"access_token": "t", "expires_in": True}),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
async def test_transport_errors_and_unreadable_answers_are_retried(
    mp: Fake, failure: Exception | httpx.Response
) -> None:
    mp.traffic.faults.append(failure)

    token = await mp.client().access_token(SCOPE)

    assert token.token
    assert len(mp.traffic.requests) == 2
    assert mp.sleeps.delays == [0.25]


async def test_each_attempt_signs_a_fresh_grant(mp: Fake) -> None:
    mp.traffic.faults.extend([httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])

    await mp.client().access_token(SCOPE)

    grants = mp.traffic.assertions()
    assert len(grants) == 3
    assert len({grant["jti"] for grant in grants}) == 3


async def test_timeouts_that_persist_become_upstream_unavailable(mp: Fake) -> None:
    mp.traffic.faults.extend([httpx.ConnectTimeout("timed out")] * 3)

    with pytest.raises(UpstreamUnavailable, match="ConnectTimeout") as caught:
        await mp.client().access_token(SCOPE)

    cause = caught.value.__cause__
    assert cause is not None
    assert isinstance(cause.__cause__, httpx.ConnectTimeout)


async def test_retries_log_no_grant_or_token(mp: Fake, caplog: pytest.LogCaptureFixture) -> None:
    mp.state.fail_next(UNAVAILABLE)
    caplog.set_level(logging.DEBUG, logger="broker.maskinporten")

    token = await mp.client().access_token(SCOPE)

    (grant_request, _) = [r for r in mp.traffic.requests if r.url.path == "/token"]
    assertion = httpx.QueryParams(grant_request.content.decode())["assertion"]
    assert "retry 1 in 0.25 s" in caplog.text
    assert assertion not in caplog.text
    assert token.token not in caplog.text


# The policy itself


def test_back_off_doubles_up_to_the_cap_and_jitters_within_the_upper_half() -> None:
    low = RetryPolicy(attempts=10, jitter=lambda: 0.0)
    high = RetryPolicy(attempts=10, jitter=lambda: 0.999)

    assert [low.delay(n, None) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    upper = [high.delay(n, None) or 0.0 for n in range(1, 8)]
    assert all(a < b <= 2 * a for a, b in zip([0.25, 0.5, 1, 2, 4, 4, 4], upper, strict=True))


def test_retry_after_is_a_minimum_and_attempts_are_bounded() -> None:
    policy = RetryPolicy(attempts=3, jitter=lambda: 0.0)

    assert policy.delay(1, 0.0) == 0.25
    assert policy.delay(1, 5.0) == 5.0
    assert policy.delay(1, 30.0) == 30.0
    assert policy.delay(1, 30.5) is None
    assert policy.delay(3, None) is None


def test_the_default_policy_sleeps_for_real_with_random_jitter() -> None:
    policy = RetryPolicy()

    assert policy.sleep is asyncio.sleep
    assert (policy.attempts, policy.base_delay, policy.max_delay) == (3, 0.5, 8.0)
    assert policy.max_retry_after == 30.0
    samples = {policy.jitter() for _ in range(20)}
    assert len(samples) > 1
    assert all(0 <= s < 1 for s in samples)


def test_a_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


async def test_sleeps_records_delays_without_waiting() -> None:
    sleeps = Sleeps()

    await sleeps(3600)

    assert sleeps.delays == [3600]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Mon, 02 Mar 2026 09:30:30 GMT", 30.0),
        ("Mon, 02 Mar 2026 09:29:00 GMT", 0.0),
        ("Mon, 02 Mar 2026 09:30:30 -0000", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=START) == seconds
