"""Upstream faults: a stale token (401) against the sandbox, and over ``MockTransport`` what the
fake cannot do: timeouts, connection errors, 5xx, 429, Retry-After, garbage and odd statuses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from broker.altinn import (
    WRITE_SCOPE,
    AltinnBadResponse,
    AltinnRefused,
    AltinnUnavailable,
    RetryPolicy,
)
from broker.consent.ports import UpstreamRefused, UpstreamUnavailable
from tests.adapters.altinn_support import (
    AUTHORITY,
    SECRET_TOKEN,
    START,
    StaticTokens,
    Token,
    make_request,
    mock_client,
    problem,
    request_dto,
    sandbox_world,
)
from tests.support import Answer, Sleeps


def _created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": json.loads(request.content)["id"], "viewUri": "v"})


def _unavailable(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, text="<html>busy</html>", headers=headers)


def _no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), str(getattr(exc, "detail", ""))):
        assert SECRET_TOKEN not in text
        assert "Bearer" not in text


# --- 401: the cached token -----------------------------------------------------------------------


async def test_a_stale_cached_token_is_dropped_and_the_call_retried_once() -> None:
    async with sandbox_world() as w:
        w.tokens.spoil(WRITE_SCOPE, AUTHORITY)
        request = make_request()
        created = await w.client().create(request)
    assert created.id == request.id
    assert w.tokens.invalidated == [(WRITE_SCOPE, AUTHORITY)]
    assert w.tokens.fetched == [(WRITE_SCOPE, AUTHORITY)]


async def test_an_expired_cached_token_is_replaced_on_a_read() -> None:
    async with sandbox_world() as w:
        request = make_request()
        await w.client().create(request)
        w.sandbox.clock.advance(3600)  # the cached token is long expired
        state = await w.client().status(request.id, requestor_org=AUTHORITY)
    assert state.id == request.id
    assert w.tokens.invalidated == [(WRITE_SCOPE, AUTHORITY)]
    assert len(w.tokens.fetched) == 2


async def test_a_second_401_is_unauthorized() -> None:
    client, script, tokens = mock_client([httpx.Response(401), httpx.Response(401)])
    with pytest.raises(AltinnRefused) as caught:
        await client.create(make_request())
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)
    assert tokens.invalidated == [(WRITE_SCOPE, AUTHORITY)]
    assert tokens.dropped == [f"{SECRET_TOKEN}0"]  # only the token Altinn refused
    assert [r.headers["authorization"] for r in script.requests] == [
        f"Bearer {SECRET_TOKEN}0",
        f"Bearer {SECRET_TOKEN}1",
    ]
    _no_secret(caught.value)


async def test_a_401_then_a_fault_still_gets_the_full_retry_budget() -> None:
    sleeps = Sleeps()
    answers: list[Answer] = [httpx.Response(401), _unavailable(503), _unavailable(503), _created]
    client, script, _ = mock_client(answers, sleep=sleeps)
    await client.create(make_request())
    assert len(script.requests) == 4
    assert len(sleeps.waits) == 2


async def test_an_empty_403_is_forbidden_and_not_retried() -> None:
    client, script, tokens = mock_client([httpx.Response(403)])
    with pytest.raises(AltinnRefused) as caught:
        await client.create(make_request())
    assert caught.value.code == "forbidden"
    assert (len(script.requests), tokens.invalidated) == (1, [])


# --- transient faults ----------------------------------------------------------------------------


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "fault",
    [
        _timeout,
        _refused_connection,
        lambda r: _unavailable(500),
        lambda r: _unavailable(502),
        lambda r: _unavailable(503),
        lambda r: _unavailable(429),
        lambda r: problem("STD-00002", 500, "Unexpected"),
    ],
)
async def test_transient_faults_are_retried_then_succeed(
    fault: Callable[[httpx.Request], httpx.Response],
) -> None:
    sleeps = Sleeps()
    client, script, _ = mock_client([fault, fault, _created], sleep=sleeps)
    request = make_request()
    created = await client.create(request)
    assert created.id == request.id
    assert len(script.requests) == 3
    # The same body every time: the id is ours, so a replay is the same request.
    assert len({r.content for r in script.requests}) == 1
    assert sleeps.waits == [0.25, 0.5]


@pytest.mark.parametrize("fault", [_timeout, _refused_connection, lambda r: _unavailable(503)])
async def test_transient_faults_end_as_unavailable(
    fault: Callable[[httpx.Request], httpx.Response],
) -> None:
    sleeps = Sleeps()
    client, script, _ = mock_client([fault] * 3, sleep=sleeps)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.create(make_request())
    assert isinstance(caught.value, AltinnUnavailable)
    assert len(script.requests) == 3
    assert len(sleeps.waits) == 2
    _no_secret(caught.value)
    if caught.value.status is None:
        assert isinstance(caught.value.__cause__, httpx.TransportError)


async def test_back_off_is_jittered_and_capped() -> None:
    sleeps = Sleeps()
    retry = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    answers = [_unavailable(503)] * 6
    client, _, _ = mock_client(answers, sleep=sleeps, retry=retry, jitter=lambda: 0.5)
    with pytest.raises(AltinnUnavailable):
        await client.status(uuid.uuid4(), requestor_org=AUTHORITY)
    assert sleeps.waits == [0.5, 1.0, 2.0, 2.5, 2.5]


async def test_retry_after_in_seconds_is_honoured() -> None:
    sleeps = Sleeps()
    answers: list[Answer] = [_unavailable(503, **{"Retry-After": "7"}), _created]
    retry = RetryPolicy(max_retry_after=30.0)
    client, _, _ = mock_client(answers, sleep=sleeps, retry=retry, jitter=lambda: 0.0)
    await client.create(make_request())
    assert sleeps.waits == [7.0]


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    sleeps = Sleeps()
    when = format_datetime(START + timedelta(seconds=12), usegmt=True)
    answers: list[Answer] = [_unavailable(429, **{"Retry-After": when}), _created]
    client, _, _ = mock_client(answers, sleep=sleeps, retry=RetryPolicy(max_retry_after=30.0))
    await client.create(make_request())
    assert sleeps.waits == [12.0]


@pytest.mark.parametrize("value", ["soon", "-3", "", "Wed, 21 Oct 2026 07:28:00 -0000"])
async def test_a_bad_retry_after_falls_back_to_back_off(value: str) -> None:
    sleeps = Sleeps()
    answers: list[Answer] = [_unavailable(503, **{"Retry-After": value}), _created]
    client, _, _ = mock_client(answers, sleep=sleeps)
    await client.create(make_request())
    assert sleeps.waits == [0.25]


async def test_a_retry_after_beyond_the_limit_ends_the_call_at_once() -> None:
    sleeps = Sleeps()
    client, script, _ = mock_client([_unavailable(503, **{"Retry-After": "6"})], sleep=sleeps)
    with pytest.raises(AltinnUnavailable) as caught:
        await client.create(make_request())
    assert (caught.value.status, caught.value.retry_after) == (503, 6.0)
    assert (len(script.requests), sleeps.waits) == (1, [])


async def test_multiple_problems_500_is_a_refusal_not_an_outage() -> None:
    nested = [
        {"code": "AM-00006", "title": "Invalid consent metadata", "status": 400},
        {
            "code": "STD-00000",
            "title": "One or more validation errors occurred.",
            "validationErrors": [
                {"code": "AM.VLD-00022", "title": "The time need to be in the future"}
            ],
        },
    ]
    answer = problem("STD-00001", 500, "Multiple problems occurred.", problems=nested)
    client, script, _ = mock_client([answer])
    with pytest.raises(UpstreamRefused) as caught:
        await client.create(make_request())
    assert isinstance(caught.value, AltinnRefused)
    assert caught.value.code == "STD-00001"
    assert caught.value.codes == ("AM-00006", "AM.VLD-00022")
    assert caught.value.trace_id == "00-abc-def-00"
    assert caught.value.detail == (
        "AM-00006 Invalid consent metadata; AM.VLD-00022 The time need to be in the future"
    )
    assert len(script.requests) == 1


async def test_problem_details_and_extensions_are_not_passed_on() -> None:
    answer = problem(
        "AM-00004",
        400,
        "Unknown person. Could not be found",
        detail="person 01819040180 is unknown",
        fnumber="urn:altinn:person:identifier-no:01819040180",
    )
    client, _, _ = mock_client([answer])
    with pytest.raises(AltinnRefused) as caught:
        await client.create(make_request())
    assert caught.value.detail == "AM-00004 Unknown person. Could not be found"
    assert "01819040180" not in repr(caught.value)


async def test_an_unknown_5xx_is_unavailable() -> None:
    client, _, _ = mock_client([_unavailable(599)] * 3)
    with pytest.raises(AltinnUnavailable, match="599 unknown status"):
        await client.create(make_request())


async def test_an_unexpected_4xx_keeps_its_status_as_code() -> None:
    client, _, _ = mock_client([httpx.Response(415, json={"title": "Unsupported Media Type"})])
    with pytest.raises(AltinnRefused) as caught:
        await client.create(make_request())
    assert (caught.value.code, caught.value.status) == ("http_415", 415)


# --- answers we cannot use ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(201, text="{not json"), "the body is not JSON"),
        (httpx.Response(201, content=b"\xff\xfe\x00"), "the body is not JSON"),
        (httpx.Response(200, json=["a list"]), "consent request is not an object"),
        (httpx.Response(201, json={"viewUri": "v"}), "id is missing"),
        (httpx.Response(201, json={"id": "nope", "viewUri": "v"}), "id is not a GUID"),
        (httpx.Response(302, headers={"Location": "https://elsewhere"}), "302 Found"),
        (httpx.Response(204), "the body is not JSON"),
    ],
)
async def test_unusable_answers_are_upstream_errors_without_retry(
    answer: httpx.Response, reason: str
) -> None:
    client, script, _ = mock_client([answer])
    with pytest.raises(AltinnBadResponse, match=reason) as caught:
        await client.create(make_request())
    assert isinstance(caught.value, UpstreamUnavailable)
    assert len(script.requests) == 1
    _no_secret(caught.value)


async def test_a_missing_view_uri_is_an_upstream_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": json.loads(request.content)["id"]})

    client, _, _ = mock_client([answer])
    with pytest.raises(AltinnBadResponse, match="viewUri is missing"):
        await client.create(make_request())


async def test_a_replay_body_in_altinns_core_shape_is_enough() -> None:
    # On a 200 replay Altinn may serialise its core model, not the DTO (reference §2.2).
    def answer(request: httpx.Request) -> httpx.Response:
        body = request_dto(uuid.UUID(json.loads(request.content)["id"]), Status=3)
        body["ViewUri"] = body.pop("viewUri")
        return httpx.Response(200, json=body)

    client, _, _ = mock_client([answer])
    created = await client.create(make_request())
    assert created.view_uri.startswith("https://am.ui.tt02.altinn.no/")


async def test_token_source_failures_pass_through_untouched() -> None:
    class Failing(StaticTokens):
        async def access_token(self, scope: str, *, consumer_org: str | None = None) -> Token:
            raise UpstreamUnavailable("maskinporten is down")

    client, script, _ = mock_client([], tokens=Failing())
    with pytest.raises(UpstreamUnavailable, match="maskinporten is down"):
        await client.create(make_request())
    assert script.requests == []
