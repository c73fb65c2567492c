"""Relay overhead: the broker's relay against a bare Starlette + httpx pass-through, same run.

Topology (performance.md §5.2/§5.3): the sandbox (fake Maskinporten, Altinn, Skatteetaten) and
this load generator share CPU 0; each system under test (SUT) is its own uvicorn process pinned
to CPU 1 and is the only one loaded at a time. Arms: ``passthrough`` (baseline),
``broker-sqlite`` and, when PostgreSQL is reachable, ``broker-postgres`` and
``broker-postgres-aiohttp`` (BROKER_HTTP_TRANSPORT=aiohttp); each broker arm relays for one
granted consent request made through the real consent flow first.

Per round and arm (arms interleaved, order shuffled with a fixed seed, a warm-up discarded):
closed-loop saturation with N workers for a fixed duration (throughput, SUT CPU per request),
then an open-loop fixed-rate phase (latency from the scheduled send time, so queueing is not
hidden) at 50 % of the lowest saturation throughput seen in the warm-up. Medians over rounds.

    .venv/bin/python -m bench.relay_overhead [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    machine,
    median,
    percentile,
    pin,
    process_cpu_seconds,
    table,
    write_results,
)

NAME = "relay_overhead"
SUT_CPU = 1
LOAD_CPU = 0


@dataclass(frozen=True)
class Plan:
    rounds: int
    workers: int
    saturation_seconds: float
    open_seconds: float
    warmup_seconds: float
    rate_fraction: float = 0.5

    @staticmethod
    def of(smoke: bool) -> Plan:
        if smoke:
            return Plan(
                rounds=1, workers=8, saturation_seconds=1.0, open_seconds=1.0, warmup_seconds=0.5
            )
        return Plan(
            rounds=3, workers=64, saturation_seconds=6.0, open_seconds=6.0, warmup_seconds=2.0
        )


@dataclass
class Arm:
    name: str
    url: str
    pid: int
    headers: dict[str, str]
    saturation: list[dict[str, float]] = field(default_factory=list)
    open_loop: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


# ---- servers -------------------------------------------------------------------------------


def _free_port() -> int:
    from tests.support import free_port

    return free_port()


@contextlib.contextmanager
def _server(kind: str, config: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(  # noqa: S603 - our own module, arguments built here
        [sys.executable, "-m", "bench._serve", kind, json.dumps(config)],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"server for {url} exited with {process.returncode}")
            try:
                await http.get(url + "/")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"server for {url} did not start")


@asynccontextmanager
async def _database(kind: str, directory: Path) -> AsyncIterator[str]:
    from broker.store import migrate
    from broker.store.db import create_engine
    from tests.support import fresh_postgres_database, sqlite_url

    async with AsyncExitStack() as exits:
        if kind == "sqlite":
            url = sqlite_url(directory)
        else:
            url = await exits.enter_async_context(fresh_postgres_database())
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        yield url


async def _granted(settings: dict[str, str], sandbox_url: str) -> tuple[str, str, str]:
    """Run the consent flow once in-process against the live sandbox; return the request id,
    the client's API key and the Altinn consent id."""
    from broker.app import create_app
    from tests.flow import APPROVER, AUTHORITY, PORTAL_RETURN, SUPPLIER
    from tests.support import make_settings

    app = create_app(make_settings(**settings))
    public = settings["public_url"]
    async with app.router.lifespan_context(app):
        clients = app.state.clients
        client_id = await clients.register(
            name="Bench portal", org_number="310300012", return_urls=(PORTAL_RETURN,)
        )
        key = (await clients.issue_key(client_id)).value
        headers = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=public) as api,
            httpx.AsyncClient(base_url=sandbox_url) as sandbox,
        ):
            body = {
                "requestor": AUTHORITY,
                "subject": SUPPLIER,
                "reference": "bench",
                "return_url": PORTAL_RETURN,
            }
            created = (await api.post("/v1/consent-requests", json=body, headers=headers)).json()
            start = await api.get(created["consent_url"])
            altinn_id = httpx.URL(start.headers["location"]).params["id"]
            answer = await sandbox.post(
                f"/control/consents/{altinn_id}/approve", json={"person": APPROVER}
            )
            back = await api.get(answer.json()["redirect"])
            assert back.status_code < 400, back.text
            state = await api.get(f"/v1/consent-requests/{created['id']}", headers=headers)
            assert state.json().get("status") == "granted", state.text
    return str(created["id"]), key, altinn_id


# ---- load ----------------------------------------------------------------------------------


async def _closed_loop(
    http: httpx.AsyncClient, arm: Arm, path: str, workers: int, seconds: float
) -> dict[str, float]:
    phase = Phase()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await http.get(arm.url + path, headers=arm.headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                phase.latencies.append(time.perf_counter() - started)
            else:
                phase.errors += 1

    cpu0, wall0 = process_cpu_seconds(arm.pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    cpu, wall = process_cpu_seconds(arm.pid) - cpu0, time.perf_counter() - wall0
    done = len(phase.latencies)
    return {
        "rps": done / wall,
        "p50_ms": percentile(phase.latencies, 0.5) * 1000,
        "p99_ms": percentile(phase.latencies, 0.99) * 1000,
        "cpu_us_per_req": cpu / max(done, 1) * 1e6,
        "sut_cpu_util": cpu / wall,
        "errors": float(phase.errors),
        "requests": float(done),
    }


async def _open_loop(
    http: httpx.AsyncClient, arm: Arm, path: str, rate: float, seconds: float
) -> dict[str, float]:
    """Requests sent at precomputed times; latency counts from the scheduled time."""
    phase = Phase()
    count = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.05

    async def one(scheduled: float) -> None:
        try:
            response = await http.get(arm.url + path, headers=arm.headers)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok:
            phase.latencies.append(time.perf_counter() - scheduled)
        else:
            phase.errors += 1

    tasks: list[asyncio.Task[None]] = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return {
        "rate": rate,
        "p50_ms": percentile(phase.latencies, 0.5) * 1000,
        "p99_ms": percentile(phase.latencies, 0.99) * 1000,
        "errors": float(phase.errors),
        "requests": float(len(phase.latencies)),
    }


# ---- the run -------------------------------------------------------------------------------


async def run(smoke: bool = False, *, postgres: bool | None = None) -> dict[str, Any]:
    from tests.support import postgres_reachable

    plan = Plan.of(smoke)
    if postgres is None:
        postgres = await postgres_reachable()
    affinity = os.sched_getaffinity(0)
    pin(LOAD_CPU)
    try:
        return await _run(plan, postgres)
    finally:
        os.sched_setaffinity(0, affinity)


async def _run(plan: Plan, postgres: bool) -> dict[str, Any]:
    from tests.flow import AUTHORITY, SUPPLIER
    from tests.support import make_settings

    rng = random.Random(20260101)  # noqa: S311 - a shuffle, not a secret
    sandbox_port = _free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    arms: list[Arm] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp, contextlib.ExitStack() as procs:
        directory = Path(tmp)
        key_file = directory / "broker-client.jwk.json"
        sandbox = procs.enter_context(
            _server(
                "sandbox",
                {
                    "url": sandbox_url,
                    "key_file": str(key_file),
                    "port": sandbox_port,
                    "cpu": LOAD_CPU,
                },
            )
        )
        await _ready(sandbox_url, sandbox)
        async with AsyncExitStack() as exits:
            consent_id = ""
            combos = [("sqlite", "httpx")]
            if postgres:
                combos += [("postgresql", "httpx"), ("postgresql", "aiohttp")]
            for backend, transport in combos:
                db_dir = directory / f"{backend}-{transport}"
                db_dir.mkdir()
                url = await exits.enter_async_context(_database(backend, db_dir))
                port = _free_port()
                settings = {
                    "database_url": url,
                    "public_url": f"http://127.0.0.1:{port}",
                    "maskinporten_url": f"{sandbox_url}/maskinporten",
                    "altinn_url": f"{sandbox_url}/altinn",
                    "skatteetaten_url": f"{sandbox_url}/skatteetaten",
                    "maskinporten_key_file": str(key_file),
                    "reconcile_interval": "0",
                    "http_transport": transport,
                }
                request_id, key, consent_id = await _granted(settings, sandbox_url)
                process = procs.enter_context(
                    _server("broker", {"settings": settings, "port": port, "cpu": SUT_CPU})
                )
                await _ready(settings["public_url"], process)
                name = "broker-" + ("postgres" if backend == "postgresql" else backend)
                arms.append(
                    Arm(
                        name + ("" if transport == "httpx" else f"-{transport}"),
                        settings["public_url"] + f"/v1/consent-requests/{request_id}/oppdrag",
                        process.pid,
                        {"Authorization": f"Bearer {key}", "Accept": "application/json"},
                    )
                )
            if not postgres:
                notes.append("PostgreSQL not reachable: broker-postgres arm skipped")
            mp = make_settings().maskinporten
            port = _free_port()
            base = make_settings(altinn_mode="vendor").consent
            process = procs.enter_context(
                _server(
                    "passthrough",
                    {
                        "sandbox_url": sandbox_url,
                        "key_file": str(key_file),
                        "port": port,
                        "cpu": SUT_CPU,
                        "client_id": mp.client_id,
                        "client_org": mp.org_number,
                        "vendor_mode": base.altinn_mode == "vendor",
                        "consent_id": consent_id,
                        "subject": SUPPLIER,
                        "requestor": AUTHORITY,
                    },
                )
            )
            passthrough_url = f"http://127.0.0.1:{port}"
            await _ready(passthrough_url, process)
            arms.insert(
                0,
                Arm(
                    "passthrough",
                    f"{passthrough_url}/oppdrag/{SUPPLIER}",
                    process.pid,
                    {"Accept": "application/json"},
                ),
            )
            figures = await _measure(arms, plan, rng)
    figures["notes"] = notes
    return figures


async def _measure(arms: list[Arm], plan: Plan, rng: random.Random) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=plan.workers, max_keepalive_connections=plan.workers)
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        warm: dict[str, float] = {}
        for arm in arms:
            result = await _closed_loop(http, arm, "", plan.workers, plan.warmup_seconds)
            if result["requests"] == 0:
                raise RuntimeError(f"{arm.name}: no successful request in the warm-up")
            warm[arm.name] = result["rps"]
        rate = plan.rate_fraction * min(warm.values())
        for _ in range(plan.rounds):
            order = arms[:]
            rng.shuffle(order)
            for arm in order:
                arm.saturation.append(
                    await _closed_loop(http, arm, "", plan.workers, plan.saturation_seconds)
                )
            rng.shuffle(order)
            for arm in order:
                arm.open_loop.append(await _open_loop(http, arm, "", rate, plan.open_seconds))
    return _summarise(arms, plan, rate)


def _summarise(arms: list[Arm], plan: Plan, rate: float) -> dict[str, Any]:
    per_arm: dict[str, dict[str, float]] = {}
    for arm in arms:
        sat = {k: median([r[k] for r in arm.saturation]) for k in arm.saturation[0]}
        opn = {k: median([r[k] for r in arm.open_loop]) for k in arm.open_loop[0]}
        per_arm[arm.name] = {
            "saturation_rps": sat["rps"],
            "saturation_p50_ms": sat["p50_ms"],
            "saturation_p99_ms": sat["p99_ms"],
            "cpu_us_per_req": sat["cpu_us_per_req"],
            "sut_cpu_util": sat["sut_cpu_util"],
            "open_p50_ms": opn["p50_ms"],
            "open_p99_ms": opn["p99_ms"],
            "errors": sum(r["errors"] for r in arm.saturation + arm.open_loop),
        }
    base = per_arm["passthrough"]
    ratios: dict[str, dict[str, float]] = {}
    for name, arm_figures in per_arm.items():
        if name == "passthrough":
            continue
        ratios[name] = {
            "throughput_ratio": arm_figures["saturation_rps"] / base["saturation_rps"],
            "p50_overhead_ms": arm_figures["open_p50_ms"] - base["open_p50_ms"],
            "p99_overhead_ms": arm_figures["open_p99_ms"] - base["open_p99_ms"],
            "cpu_overhead_us_per_req": arm_figures["cpu_us_per_req"] - base["cpu_us_per_req"],
            # Throughput each could reach on a full SUT core, from CPU per request: the fair
            # ratio when the generator, not the SUT, is the bottleneck (SUT cpu well below 1).
            "cpu_capacity_ratio": base["cpu_us_per_req"] / arm_figures["cpu_us_per_req"],
        }
    return {
        "plan": plan.__dict__,
        "open_loop_rate_rps": rate,
        "arms": per_arm,
        "ratios": ratios,
        "targets": {
            "throughput_ratio_min": 0.8,
            "p50_overhead_ms_max": 1.0,
            "p99_overhead_ms_max": 3.0,
        },
        "machine": machine(),
    }


def report(figures: dict[str, Any]) -> str:
    arms = figures["arms"]
    rows = [
        [
            name,
            a["saturation_rps"],
            a["cpu_us_per_req"],
            a["sut_cpu_util"],
            a["open_p50_ms"],
            a["open_p99_ms"],
            int(a["errors"]),
        ]
        for name, a in arms.items()
    ]
    out = [
        table(
            f"relay overhead (open-loop rate {figures['open_loop_rate_rps']:.0f} rps)",
            ["arm", "sat rps", "cpu us/req", "SUT cpu", "p50 ms", "p99 ms", "errors"],
            rows,
        )
    ]
    rows = [
        [
            name,
            r["throughput_ratio"],
            r["p50_overhead_ms"],
            r["p99_overhead_ms"],
            r["cpu_overhead_us_per_req"],
            r["cpu_capacity_ratio"],
        ]
        for name, r in figures["ratios"].items()
    ]
    out.append(
        table(
            "vs passthrough (targets: >= 0.8, <= 1 ms, <= 3 ms)",
            ["arm", "rps ratio", "p50 +ms", "p99 +ms", "cpu +us/req", "cpu cap ratio"],
            rows,
        )
    )
    out.extend(f"note: {n}" for n in figures.get("notes", []))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_overhead")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny sizes")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL arm")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.smoke, postgres=False if args.no_postgres else None))
    print(report(figures))
    print(f"\nwritten: {write_results(NAME, args.smoke, figures)}")


if __name__ == "__main__":
    main()
