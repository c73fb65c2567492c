"""Token stampede and token calls per key, against the sandbox's Maskinporten (in-process).

A granted consent is made through the real flow (``tests.flow.stack``, SQLite in a temp dir);
then the broker's ``MaskinportenClient`` is called directly, counting token requests at the
sandbox's Maskinporten (its counters):

1. Stampede: N concurrent ``consent_token`` calls on a cold cache for one key -> must be 1
   request. Baseline in the same run: the same calls with the cache disabled (a new client per
   call) -> N requests.
2. Steady: M calls spread evenly over a simulated 5 minutes, advancing the shared sandbox clock
   -> at most ceil(run / (lifetime - margin)) requests. Baseline: the same without the cache.

    .venv/bin/python -m bench.token_stampede [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine, table, write_results

NAME = "token_stampede"


def _requests(sandbox: Any) -> int:
    return sum(sandbox.maskinporten.token_requests().values())


async def run(smoke: bool = False) -> dict[str, Any]:
    from broker.maskinporten.client import MaskinportenClient
    from broker.maskinporten.keys import load_client_key
    from broker.sandbox import app as sandbox_app
    from broker.store.consents import SqlConsentStore
    from tests.flow import AUTHORITY, SANDBOX, SUPPLIER, stack
    from tests.support import sqlite_url

    stampede_n = 50 if smoke else 500
    steady_n = 300 if smoke else 10_000
    baseline_n = 100 if smoke else 1_000
    run_seconds = 300.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tmp:
        directory = Path(tmp)
        async with stack(sqlite_url(directory), directory) as s:
            created, _ = await s.run_flow("approve")
            async with s.app.state.resources.sessions() as session:
                request = await SqlConsentStore(session, s.app.state.cipher).get(
                    uuid.UUID(created["id"]), client_id=None
                )
            assert request is not None
            assert request.altinn_consent_id is not None
            consent_id = request.altinn_consent_id
            settings = s.app.state.settings
            key = load_client_key(directory / "broker-client.jwk.json")
            clock = s.sandbox.clock
            lifetime = float(s.sandbox.maskinporten_config.token_lifetime)
            margin = min(max(0.2 * lifetime, 10.0), lifetime / 2)  # the client's defaults
            transport = httpx.ASGITransport(app=sandbox_app.create_app(s.sandbox))
            async with httpx.AsyncClient(transport=transport) as http:

                def client() -> MaskinportenClient:
                    return MaskinportenClient(
                        http,
                        issuer=f"{SANDBOX}/maskinporten/",
                        client_id=settings.maskinporten.client_id,
                        key=key,
                        clock=clock.now,
                        vendor_mode=settings.consent.altinn_mode == "vendor",
                        client_org=settings.maskinporten.org_number,
                    )

                async def call(mp: MaskinportenClient) -> None:
                    token = await mp.consent_token(
                        consent_id=consent_id, subject_org=SUPPLIER, requestor_org=AUTHORITY
                    )
                    assert token.token

                async def counted(work: Callable[[], Any]) -> tuple[int, float]:
                    before, t0 = _requests(s.sandbox), time.perf_counter()
                    await work()
                    return _requests(s.sandbox) - before, time.perf_counter() - t0

                # 1. Stampede on a cold cache, then the same calls with no cache at all.
                shared = client()

                async def stampede() -> None:
                    await asyncio.gather(*(call(shared) for _ in range(stampede_n)))

                async def stampede_uncached() -> None:
                    await asyncio.gather(*(call(client()) for _ in range(stampede_n)))

                stampede_requests, stampede_s = await counted(stampede)
                uncached_requests, _ = await counted(stampede_uncached)

                # 2. Steady calls over a simulated 5 minutes on the shared sandbox clock.
                async def steady(n: int, cached: bool) -> None:
                    mp = client()
                    step = run_seconds / n
                    for _ in range(n):
                        clock.advance(step)
                        await call(mp if cached else client())

                steady_requests, steady_s = await counted(lambda: steady(steady_n, True))
                baseline_requests, _ = await counted(lambda: steady(baseline_n, False))
    bound = math.ceil(run_seconds / (lifetime - margin))
    baseline_per = baseline_requests / baseline_n * steady_n
    return {
        "stampede": {
            "concurrent_calls": stampede_n,
            "token_requests": stampede_requests,
            "token_requests_without_cache": uncached_requests,
            "ratio_vs_uncached": stampede_requests / max(uncached_requests, 1),
            "target": 1,
            "met": stampede_requests == 1,
            "seconds": stampede_s,
        },
        "steady": {
            "calls": steady_n,
            "simulated_seconds": run_seconds,
            "token_lifetime_s": lifetime,
            "refresh_margin_s": margin,
            "token_requests": steady_requests,
            "bound": bound,
            "met": steady_requests <= bound,
            "uncached_calls_measured": baseline_n,
            "uncached_token_requests_per_calls": baseline_per,
            "ratio_vs_uncached": steady_requests / max(baseline_per, 1),
            "seconds": steady_s,
        },
        "elapsed_s": time.perf_counter() - started,
        "machine": machine(),
    }


def report(figures: dict[str, Any]) -> str:
    st, sd = figures["stampede"], figures["steady"]
    rows = [
        [
            f"stampede: {st['concurrent_calls']} concurrent cold calls",
            st["token_requests"],
            st["token_requests_without_cache"],
            st["ratio_vs_uncached"],
            "== 1",
            st["met"],
        ],
        [
            f"steady: {sd['calls']} calls / {sd['simulated_seconds']:.0f} s simulated",
            sd["token_requests"],
            round(sd["uncached_token_requests_per_calls"]),
            sd["ratio_vs_uncached"],
            f"<= {sd['bound']}",
            sd["met"],
        ],
    ]
    return table(
        f"token requests for one key (lifetime {sd['token_lifetime_s']:.0f} s, "
        f"margin {sd['refresh_margin_s']:.0f} s)",
        ["case", "requests", "no cache", "ratio", "target", "met"],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.token_stampede")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny sizes")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.smoke))
    print(report(figures))
    print(f"\nwritten: {write_results(NAME, args.smoke, figures)}")


if __name__ == "__main__":
    main()
