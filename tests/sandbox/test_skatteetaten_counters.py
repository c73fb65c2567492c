"""The fake Skatteetaten's counters (per consumer and outcome, in flight, peak), records, reset."""

from __future__ import annotations

import asyncio

import pytest

from broker.sandbox.skatteetaten_bodies import OppdragFixture
from broker.sandbox.skatteetaten_state import (
    UNAUTHENTICATED,
    Fault,
    LevertStyle,
    Quirks,
    SkatteetatenState,
    Switches,
    UnknownUrlStyle,
)
from tests.sandbox.skatteetaten_helpers import (
    CONSUMER,
    KORRELASJONSID,
    OTHER_SUBJECT,
    SUBJECT,
    SUPPLIER,
    Gate,
    Sandbox,
    default_state,
    feil,
    json_body,
    make_sandbox,
    url,
)

OK = "OK"


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


# Counters and records


async def test_calls_are_counted_per_consumer_and_outcome(sandbox: Sandbox) -> None:
    sandbox.state.grant_package(SUPPLIER, "ebevis")
    supplier_token = sandbox.consent_token(sandbox.add_consent(consumer=SUPPLIER))
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.authorised())
        await client.get(url(), headers=sandbox.authorised())
        await client.get(url(OTHER_SUBJECT), headers=sandbox.authorised(OTHER_SUBJECT))
        await client.get(url(), headers=sandbox.headers(supplier_token))
        await client.get(url())
        await client.get("/nope")
    assert sandbox.state.calls() == {
        (CONSUMER, OK): 2,
        (CONSUMER, "OPPDRAGUTENLANDSKEVIRKSOMHETER-008"): 1,
        (SUPPLIER, OK): 1,
        (UNAUTHENTICATED, "OPPDRAGUTENLANDSKEVIRKSOMHETER-004"): 1,
        (UNAUTHENTICATED, "gateway-404"): 1,
    }
    assert sandbox.state.calls_by_consumer() == {CONSUMER: 3, SUPPLIER: 1, UNAUTHENTICATED: 2}
    assert sandbox.state.calls_by_outcome() == {
        OK: 3,
        "OPPDRAGUTENLANDSKEVIRKSOMHETER-008": 1,
        "OPPDRAGUTENLANDSKEVIRKSOMHETER-004": 1,
        "gateway-404": 1,
    }


async def test_a_refused_call_is_counted_for_its_verified_consumer(sandbox: Sandbox) -> None:
    token = sandbox.token(sandbox.plain_claims())
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.headers(token))
    assert sandbox.state.calls() == {(CONSUMER, "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"): 1}


async def test_records_keep_the_call_but_never_the_token(sandbox: Sandbox) -> None:
    record = sandbox.add_consent()
    token = sandbox.consent_token(record)
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.headers(token, Korrelasjonsid=KORRELASJONSID))
        await client.post("/x", headers=sandbox.headers(token))
    first, second = sandbox.state.records()
    assert first.at == sandbox.clock.now()
    assert (first.consumer, first.method, first.path) == (CONSUMER, "GET", url())
    assert (first.status, first.outcome) == (200, OK)
    assert (first.korrelasjonsid, first.consent_id) == (KORRELASJONSID, str(record.id))
    assert (second.consumer, second.method, second.status, second.consent_id) == (
        UNAUTHENTICATED,
        "POST",
        404,
        None,
    )
    assert token not in repr(sandbox.state.records())


async def test_records_are_bounded() -> None:
    sandbox = make_sandbox(state=default_state(max_records=2))
    async with sandbox.client() as client:
        for path in ("/a", "/b", "/c"):
            await client.get(path)
    assert [call.path for call in sandbox.state.records()] == ["/b", "/c"]
    assert sandbox.state.calls_by_outcome() == {"gateway-404": 3}


async def test_peak_concurrency_is_measured_per_consumer_and_never_refused() -> None:
    gate = Gate(expected=9)
    sandbox = make_sandbox(sleep=gate)
    sandbox.state.grant_package(SUPPLIER, "ebevis")
    sandbox.state.set_latency(1.0)
    consumer_headers = [sandbox.authorised() for _ in range(7)]
    supplier_headers = [
        sandbox.headers(sandbox.consent_token(sandbox.add_consent(consumer=SUPPLIER)))
        for _ in range(2)
    ]
    async with sandbox.client() as client:
        calls = [client.get(url(), headers=h) for h in consumer_headers + supplier_headers]
        responses = await asyncio.wait_for(asyncio.gather(*calls), timeout=5)
    assert [r.status_code for r in responses] == [200] * 9
    assert sandbox.state.peak_in_flight() == {CONSUMER: 7, SUPPLIER: 2}
    assert sandbox.state.over_limit_calls() == {CONSUMER: 2}
    assert sandbox.state.in_flight() == {}


async def test_in_flight_is_visible_while_calls_wait() -> None:
    gate = Gate(expected=3)
    sandbox = make_sandbox(sleep=gate)
    sandbox.state.set_latency(1.0)
    async with sandbox.client() as client:
        first = asyncio.create_task(client.get(url(), headers=sandbox.authorised()))
        second = asyncio.create_task(client.get(url()))
        await asyncio.wait_for(gate.until_waiting(2), timeout=5)
        during = sandbox.state.in_flight()
        gate.opened.set()
        await asyncio.gather(first, second)
    assert during == {CONSUMER: 1, UNAUTHENTICATED: 1}
    assert sandbox.state.in_flight() == {}
    assert sandbox.state.peak_in_flight() == {CONSUMER: 1, UNAUTHENTICATED: 1}


# Reset


async def test_reset_restores_the_initial_state(sandbox: Sandbox) -> None:
    state = sandbox.state
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.authorised())
    state.set_fixture(OTHER_SUBJECT, OppdragFixture(1, 1, 1))
    state.remove_org(SUBJECT)
    state.withdraw_package(CONSUMER, "ebevis")
    state.set_fault(Fault.DAS_003)
    state.set_latency(9.0)
    state.switches.quirks.extra_unknown_field = False
    state.reset()
    assert state.fixtures == {SUBJECT: OppdragFixture()}
    assert state.holds_package(CONSUMER, "ebevis")
    assert state.fault is None
    assert state.switches == Switches()
    assert (state.calls(), state.records(), state.peak_in_flight()) == ({}, [], {})


async def test_reset_counters_keeps_the_switches(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.DAS_003)
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.authorised())
    sandbox.state.reset_counters()
    assert (sandbox.state.calls(), sandbox.state.records()) == ({}, [])
    assert sandbox.state.fault is Fault.DAS_003


def test_reset_does_not_share_switches_with_the_constructor_argument() -> None:
    initial = Switches(latency_seconds=0.5, quirks=Quirks(levert_style=LevertStyle.WITH_FRACTION))
    state = SkatteetatenState(switches=initial)
    state.switches.quirks.unknown_url_style = UnknownUrlStyle.FEIL
    state.reset()
    assert state.switches == initial
    assert initial.quirks.unknown_url_style is UnknownUrlStyle.GATEWAY


def test_quirks_and_grants_through_methods() -> None:
    state = SkatteetatenState(package_holders={"ebevis": [SUPPLIER, CONSUMER]})
    plain = Quirks(extra_unknown_field=False)
    state.set_quirks(plain)
    plain.reordered_keys = False
    state.grant_package(CONSUMER, "arbeidstilsynet")
    state.withdraw_package(SUPPLIER, "ebevis")
    state.withdraw_package(SUPPLIER, "unknown")
    assert state.switches.quirks == Quirks(extra_unknown_field=False)
    assert state.holders() == {"ebevis": [CONSUMER], "arbeidstilsynet": [CONSUMER]}


def test_levert_alternates_from_with_fraction() -> None:
    state = SkatteetatenState()
    assert [state.next_levert_has_fraction() for _ in range(4)] == [True, False, True, False]


def test_default_state_knows_the_example_org_and_grants_nothing() -> None:
    state = SkatteetatenState()
    assert state.fixture_for(SUBJECT) == OppdragFixture(44, 64, 14)
    assert state.fixture_for(OTHER_SUBJECT) is None
    assert not state.holds_package(CONSUMER, "ebevis")


async def test_unauthenticated_calls_to_feil_style_unknown_urls_are_counted(
    sandbox: Sandbox,
) -> None:
    sandbox.state.switches.quirks.unknown_url_style = UnknownUrlStyle.FEIL
    async with sandbox.client() as client:
        response = await client.get("/v1", headers={"Korrelasjonsid": KORRELASJONSID})
    assert json_body(response) == feil(
        "003", "Ukjent url benyttet. Sjekk adressen.", KORRELASJONSID
    )
    assert sandbox.state.calls() == {(UNAUTHENTICATED, "OPPDRAGUTENLANDSKEVIRKSOMHETER-003"): 1}
