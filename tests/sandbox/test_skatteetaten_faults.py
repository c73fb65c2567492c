"""The fake Skatteetaten's latency, injected faults, counters and call records."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from broker.sandbox.skatteetaten import ConnectionReset
from broker.sandbox.skatteetaten_state import (
    Fault,
)
from tests.sandbox.skatteetaten_helpers import (
    KORRELASJONSID,
    SUBJECT,
    XML_NS,
    RecordingSleep,
    Sandbox,
    default_state,
    json_body,
    make_sandbox,
    url,
    xml_children,
    xml_root,
)

OK = "OK"


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def sandbox(sleep: RecordingSleep) -> Sandbox:
    return make_sandbox(sleep=sleep)


# Latency


async def test_latency_goes_through_the_injected_sleep(
    sandbox: Sandbox, sleep: RecordingSleep
) -> None:
    async with sandbox.client() as client:
        await client.get(url(), headers=sandbox.authorised())
        sandbox.state.set_latency(0.25)
        refused = await client.get(url())
        served = await client.get(url(), headers=sandbox.authorised())
    assert (refused.status_code, served.status_code) == (401, 200)
    assert sleep.delays == [0.25, 0.25]


async def test_unknown_urls_have_no_latency(sandbox: Sandbox, sleep: RecordingSleep) -> None:
    sandbox.state.set_latency(3.0)
    async with sandbox.client() as client:
        response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert sleep.delays == []


# Faults

CODED = [
    (Fault.ERROR_001, 500, "OPPDRAGUTENLANDSKEVIRKSOMHETER-001", "Uventet feil på tjenesten."),
    (
        Fault.ERROR_002,
        500,
        "OPPDRAGUTENLANDSKEVIRKSOMHETER-002",
        "Uventet feil i et bakenforliggende system.",
    ),
    (
        Fault.DAS_003,
        500,
        "DAS-003",
        "Informasjonen er midlertidig utilgjengelig. Prøv igjen senere.",
    ),
    (Fault.DAS_008, 403, "DAS-008", "Ikke autorisert for den forespurte ressursen."),
]


@pytest.mark.parametrize(("fault", "status", "kode", "melding"), CODED)
async def test_coded_faults_in_json(
    sandbox: Sandbox, fault: Fault, status: int, kode: str, melding: str
) -> None:
    sandbox.state.set_fault(fault)
    async with sandbox.client() as client:
        response = await client.get(
            url(), headers=sandbox.authorised(Korrelasjonsid=KORRELASJONSID)
        )
    assert response.status_code == status
    assert json_body(response) == {
        "kode": kode,
        "melding": f"{melding} Simulert feil.",
        "korrelasjonsid": KORRELASJONSID,
    }
    assert sandbox.state.calls_by_outcome() == {kode: 1}


@pytest.mark.parametrize(("fault", "status", "kode", "melding"), CODED)
async def test_coded_faults_in_xml(
    sandbox: Sandbox, fault: Fault, status: int, kode: str, melding: str
) -> None:
    sandbox.state.set_fault(fault)
    headers = sandbox.authorised(Accept="application/xml", Korrelasjonsid=KORRELASJONSID)
    async with sandbox.client() as client:
        response = await client.get(url(), headers=headers)
    assert response.status_code == status
    assert xml_children(xml_root(response), "urn:no:skatteetaten:datasamarbeid:feil:v1") == {
        "kode": kode,
        "melding": f"{melding} Simulert feil.",
        "korrelasjonsid": KORRELASJONSID,
    }


@pytest.mark.parametrize(
    ("fault", "status", "title", "outcome"),
    [
        (Fault.BAD_GATEWAY, 502, "502 Bad Gateway", "gateway-502"),
        (Fault.UNAVAILABLE, 503, "503 Service Temporarily Unavailable", "gateway-503"),
    ],
)
async def test_gateway_faults_are_html_pages(
    sandbox: Sandbox, fault: Fault, status: int, title: str, outcome: str
) -> None:
    sandbox.state.set_fault(fault)
    async with sandbox.client() as client:
        response = await client.get(url(), headers=sandbox.authorised())
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == (
        f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    )
    assert sandbox.state.calls_by_outcome() == {outcome: 1}


async def test_a_fault_lasts_until_cleared(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.ERROR_002)
    async with sandbox.client() as client:
        statuses = [(await client.get(url(), headers=sandbox.authorised())).status_code]
        statuses.append((await client.get(url(), headers=sandbox.authorised())).status_code)
        sandbox.state.set_fault(None)
        statuses.append((await client.get(url(), headers=sandbox.authorised())).status_code)
    assert statuses == [500, 500, 200]


async def test_a_counted_fault_clears_itself(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.DAS_003, times=2)
    async with sandbox.client() as client:
        statuses = [
            (await client.get(url(), headers=sandbox.authorised())).status_code for _ in range(3)
        ]
    assert statuses == [500, 500, 200]
    assert sandbox.state.fault is None


async def test_faults_hit_only_calls_that_pass_every_check(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.ERROR_001, times=1)
    async with sandbox.client() as client:
        refused = await client.get(url())
        faulted = await client.get(url(), headers=sandbox.authorised())
    assert (refused.status_code, faulted.status_code) == (401, 500)
    assert json_body(faulted)["kode"] == "OPPDRAGUTENLANDSKEVIRKSOMHETER-001"


def test_fault_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="times must be at least 1"):
        default_state().set_fault(Fault.DAS_003, times=0)


def test_latency_and_slow_body_switches_are_validated() -> None:
    state = default_state()
    with pytest.raises(ValueError, match="latency cannot be negative"):
        state.set_latency(-0.1)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        state.set_slow_body(chunk_size=0, delay_seconds=1)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        state.set_slow_body(chunk_size=4, delay_seconds=-1)
    assert (state.switches.latency_seconds, state.switches.slow_chunk_size) == (0.0, 16)


async def test_slow_body_is_streamed_in_chunks_with_pauses(
    sandbox: Sandbox, sleep: RecordingSleep
) -> None:
    sandbox.state.set_fault(Fault.SLOW_BODY)
    sandbox.state.set_slow_body(chunk_size=10, delay_seconds=0.75)
    async with sandbox.client() as client:
        response = await client.get(url(), headers=sandbox.authorised())
    assert response.status_code == 200
    assert "content-length" not in response.headers
    body = json_body(response)
    assert body["oppdrag"]["antallAktiveArbeidstakere"] == 64
    assert sleep.delays == [0.75] * math.ceil(len(response.content) / 10)
    assert sandbox.state.calls_by_outcome() == {OK: 1}


async def test_slow_body_in_xml(sandbox: Sandbox, sleep: RecordingSleep) -> None:
    sandbox.state.set_fault(Fault.SLOW_BODY)
    async with sandbox.client() as client:
        headers = sandbox.authorised(Accept="application/xml")
        response = await client.get(url(), headers=headers)
    assert xml_root(response).findtext(f"{{{XML_NS}}}forespurteOrganisasjon") == SUBJECT
    assert len(sleep.delays) == math.ceil(len(response.content) / 16)


async def test_connection_reset_over_asgi_transport(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.CONNECTION_RESET)
    async with sandbox.client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="dropped the connection") as caught:
            await client.get(url(), headers=sandbox.authorised())
    assert isinstance(caught.value, ConnectionReset)
    assert sandbox.state.calls_by_outcome() == {"connection-reset": 1}
    assert sandbox.state.in_flight() == {}


@contextlib.asynccontextmanager
async def served(sandbox: Sandbox) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        sandbox.app, http="h11", ws="none", lifespan="off", log_config=None, log_level="critical"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_connection_reset_over_uvicorn(sandbox: Sandbox) -> None:
    sandbox.state.set_fault(Fault.CONNECTION_RESET, times=1)
    async with served(sandbox) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete") as caught:
            await client.get(url(), headers=sandbox.authorised())
        after = await client.get(url(), headers=sandbox.authorised())
    assert not isinstance(caught.value, ConnectionReset)  # the client's own error, not ours
    assert after.status_code == 200
