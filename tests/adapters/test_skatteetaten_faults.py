"""Faults: the fake Skatteetaten's injected faults (through the sandbox control API) are retried
and end as unavailable; over ``MockTransport``, Retry-After, httpx timeouts and unusable 200s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from broker.consent.ports import UpstreamUnavailable
from broker.skatteetaten import (
    CircuitBreaker,
    RetryPolicy,
    SkatteetatenBadResponse,
    SkatteetatenUnavailable,
)
from tests.adapters.skatteetaten_support import (
    PREFIX,
    SECRET_TOKEN,
    START,
    SUPPLIER,
    Answer,
    Sleeps,
    assert_no_secret,
    feil,
    mock_client,
    ok_json,
    ske_world,
)

# --- the fake's faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "kode"),
    [
        ("error-001", 500, f"{PREFIX}-001"),
        ("error-002", 500, f"{PREFIX}-002"),
        ("das-003", 500, "DAS-003"),
        ("bad-gateway", 502, None),
        ("unavailable", 503, None),
    ],
)
async def test_server_faults_are_retried_then_unavailable(
    fault: str, status: int, kode: str | None
) -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.fault(fault)
        with pytest.raises(SkatteetatenUnavailable) as caught:
            await w.client().oppdrag(SUPPLIER, token=bearer)
        calls = await w.calls()
    error = caught.value
    assert isinstance(error, UpstreamUnavailable)
    assert (error.status, error.kode, error.timed_out) == (status, kode, False)
    assert len(calls) == 3
    assert w.sleeps.waits == [0.25, 0.5]
    # A new Korrelasjonsid for every attempt; the error names the last one.
    sent = [c["korrelasjonsid"] for c in calls]
    assert sent == w.ids.issued
    assert len(set(sent)) == 3
    assert error.korrelasjonsid == sent[-1]
    assert sent[-1] in str(error)
    assert_no_secret(error, bearer)


async def test_a_transient_fault_then_success() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.fault("das-003", times=2)
        answer = await w.client().oppdrag(SUPPLIER, token=bearer)
        calls = await w.calls()
    assert [c["outcome"] for c in calls] == ["DAS-003", "DAS-003", "OK"]
    assert answer.korrelasjonsid == calls[-1]["korrelasjonsid"]


async def test_a_slow_body_still_arrives_whole() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.quirks(levert_style="with-fraction")
        w.sandbox.skatteetaten.set_slow_body(chunk_size=8, delay_seconds=0.002)
        await w.fault("slow-body", times=1)
        slow = await w.client().oppdrag(SUPPLIER, token=bearer)
        fast = await w.client().oppdrag(SUPPLIER, token=bearer)
        calls = await w.calls()
    assert [c["outcome"] for c in calls] == ["OK", "OK"]
    assert slow.body == fast.body
    assert slow.counts == fast.counts
    assert slow.levert == START


async def test_a_connection_reset_is_retried_then_unavailable() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.fault("connection-reset")
        with pytest.raises(SkatteetatenUnavailable) as caught:
            await w.client().oppdrag(SUPPLIER, token=bearer)
        calls = await w.calls()
    assert len(calls) == 3
    assert (caught.value.status, caught.value.timed_out) == (None, False)
    assert "ConnectionReset" in str(caught.value)  # the type name only
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert_no_secret(caught.value, bearer)


async def test_a_connection_reset_once_is_survived() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.fault("connection-reset", times=1)
        answer = await w.client().oppdrag(SUPPLIER, token=bearer)
    assert answer.forespurt_organisasjon == SUPPLIER


async def test_latency_beyond_the_deadline_is_a_timeout() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.latency(5.0)
        client = w.client(attempt_timeout=0.05, retry=RetryPolicy(attempts=2))
        with pytest.raises(SkatteetatenUnavailable) as caught:
            await client.oppdrag(SUPPLIER, token=bearer)
        assert w.sandbox.skatteetaten.in_flight() == {}  # the fake saw both calls end
    assert caught.value.timed_out is True
    assert caught.value.status is None
    assert caught.value.korrelasjonsid == w.ids.issued[-1]
    assert len(w.ids.issued) == 2
    assert_no_secret(caught.value, bearer)


async def test_latency_within_the_deadline_is_fine() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.latency(0.01)
        answer = await w.client(attempt_timeout=2.0).oppdrag(SUPPLIER, token=bearer)
    assert answer.counts.aktive_arbeidstakere == 64


# --- over MockTransport -------------------------------------------------------------------------


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _pool_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.PoolTimeout("no connection free", request=request)


def _refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _busy(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, text="<html>busy</html>", headers=headers)


@pytest.mark.parametrize(
    ("fault", "timed_out"),
    [(_timeout, True), (_pool_timeout, True), (_refused_connection, False)],
)
async def test_httpx_timeouts_and_connection_errors(
    fault: Callable[[httpx.Request], httpx.Response], timed_out: bool
) -> None:
    client, script = mock_client([fault] * 3)
    with pytest.raises(SkatteetatenUnavailable) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert caught.value.timed_out is timed_out
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert len(script.requests) == 3
    assert_no_secret(caught.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
async def test_unavailable_statuses_are_retried_then_succeed(status: int) -> None:
    sleeps = Sleeps()
    client, script = mock_client([_busy(status), _busy(status), ok_json()], sleeps=sleeps)
    answer = await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert answer.forespurt_organisasjon == SUPPLIER
    assert len(script.requests) == 3
    assert sleeps.waits == [0.25, 0.5]
    assert len({r.headers["korrelasjonsid"] for r in script.requests}) == 3


async def test_retry_after_in_seconds_is_honoured() -> None:
    sleeps = Sleeps()
    answers: list[Answer] = [_busy(503, **{"Retry-After": "3"}), ok_json()]
    client, _ = mock_client(answers, sleeps=sleeps, jitter=lambda: 0.0)
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert sleeps.waits == [3.0]


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    sleeps = Sleeps()
    when = format_datetime(START + timedelta(seconds=4), usegmt=True)
    answer = feil(500, "DAS-003")
    answer.headers["Retry-After"] = when
    client, _ = mock_client([answer, ok_json()], sleeps=sleeps)
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert sleeps.waits == [4.0]


async def test_retry_after_shorter_than_the_back_off_does_not_shorten_it() -> None:
    sleeps = Sleeps()
    answers: list[Answer] = [_busy(429, **{"Retry-After": "0"}), ok_json()]
    client, _ = mock_client(answers, sleeps=sleeps)
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert sleeps.waits == [0.25]


@pytest.mark.parametrize("value", ["soon", "-3", "", "Wed, 21 Oct 2026 07:28:00 -0000", "1.5"])
async def test_a_bad_retry_after_falls_back_to_back_off(value: str) -> None:
    sleeps = Sleeps()
    client, _ = mock_client([_busy(503, **{"Retry-After": value}), ok_json()], sleeps=sleeps)
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert sleeps.waits == [0.25]


async def test_a_retry_after_beyond_the_limit_ends_the_call_at_once() -> None:
    sleeps = Sleeps()
    client, script = mock_client([_busy(503, **{"Retry-After": "60"})], sleeps=sleeps)
    with pytest.raises(SkatteetatenUnavailable) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert (caught.value.status, caught.value.retry_after) == (503, 60.0)
    assert (len(script.requests), sleeps.waits) == (1, [])


async def test_back_off_is_jittered_and_capped() -> None:
    sleeps = Sleeps()
    retry = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    breaker = CircuitBreaker(failure_threshold=10)
    client, _ = mock_client(
        [_busy(503)] * 6, sleeps=sleeps, retry=retry, jitter=lambda: 0.5, breaker=breaker
    )
    with pytest.raises(SkatteetatenUnavailable):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert sleeps.waits == [0.5, 1.0, 2.0, 2.5, 2.5]


async def test_refusals_are_never_retried() -> None:
    client, script = mock_client([feil(403, f"{PREFIX}-007")])
    with pytest.raises(Exception, match="-007"):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert len(script.requests) == 1


# --- answers we cannot use -----------------------------------------------------------------------


def _ok(content: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.Response(200, content=content, headers=headers)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_ok(b"{not json"), "the body is not JSON"),
        (_ok(b"\xff\xfe\x00"), "the body is not JSON"),
        (_ok(b"[1, 2]"), "not a JSON object"),
        (_ok(b"[" * 100_000 + b"]" * 100_000), "the body is not JSON"),
        (_ok(b"<html>hi</html>", "text/html"), "neither JSON nor XML"),
        (_ok(b"", None), "neither JSON nor XML"),
        (_ok(b"<a><b>", "application/xml"), "it is not XML"),
        (
            _ok(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "text/xml"),
            "it declares a DTD",
        ),
        (_ok(json.dumps({"kode": "X", "melding": "m"}).encode()), "neither oppdrag nor"),
        (ok_json(orgnr="310100021"), "about another organisation"),
        (httpx.Response(204), "neither JSON nor XML"),
    ],
)
async def test_unusable_answers_are_bad_responses_without_retry(
    answer: httpx.Response, reason: str
) -> None:
    client, script = mock_client([answer])
    with pytest.raises(SkatteetatenBadResponse, match=reason) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert isinstance(caught.value, UpstreamUnavailable)
    assert caught.value.korrelasjonsid == script.requests[0].headers["korrelasjonsid"]
    assert len(script.requests) == 1
    assert_no_secret(caught.value)


async def test_an_oversized_body_is_refused() -> None:
    big = ok_json(padding="x" * 2000)
    client, _ = mock_client([big], max_body_bytes=1000)
    with pytest.raises(SkatteetatenBadResponse, match="larger than 1000 bytes"):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)


async def test_a_body_that_cannot_be_decoded_is_a_bad_response() -> None:
    garbage = httpx.ByteStream(b"not gzip")
    answer = httpx.Response(200, stream=garbage, headers={"content-encoding": "gzip"})
    client, _ = mock_client([answer])
    with pytest.raises(SkatteetatenBadResponse, match="could not be decoded") as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert caught.value.status == 200


async def test_a_json_body_without_a_content_type_is_sniffed() -> None:
    body = json.dumps({"forespurteOrganisasjon": SUPPLIER, "oppdrag": None}).encode()
    client, _ = mock_client([_ok(body, None)])
    answer = await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert (answer.content_type, answer.body_format, answer.levert) == (
        "application/json",
        "json",
        None,
    )
    assert answer.counts.aktive_arbeidstakere is None


async def test_a_cancelled_call_leaves_nothing_behind() -> None:
    def cancel(request: httpx.Request) -> httpx.Response:
        raise asyncio.CancelledError

    client, script = mock_client([cancel, ok_json()])
    with pytest.raises(asyncio.CancelledError):
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert client.breaker.failures == 0
    assert len(script.requests) == 1  # not retried
    assert (await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)).counts.aktive_arbeidstakere == 64


async def test_retry_logs_name_the_korrelasjonsid_and_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="broker.skatteetaten")
    answer = feil(500, f"{PREFIX}-002", melding=f"feil med {SECRET_TOKEN}")
    client, script = mock_client([answer, ok_json()])
    await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    [record] = caplog.records
    assert script.requests[0].headers["korrelasjonsid"] not in record.getMessage()
    assert answer.json()["korrelasjonsid"] in record.getMessage()  # theirs, from the body
    assert SECRET_TOKEN not in record.getMessage()
    assert "attempt 2" in record.getMessage()
