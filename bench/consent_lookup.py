"""Consent lookup stays flat: ``SqlConsentStore.get`` with client scope at 10k vs 1M rows.

PostgreSQL only. Two fresh databases in the same run, one per size, filled with
``INSERT ... SELECT generate_series`` (granted requests over 100 clients, each with its grant
row), then ANALYZEd. Lookups of random existing ids, through the relay's unit of work (one
session and transaction per lookup, as in ``RelayService._granted``), alternate between the
two databases in rounds (order flipped every round). The ratio is p99(large) / p99(small);
the statements per lookup are counted with a ``before_cursor_execute`` hook.

    .venv/bin/python -m bench.consent_lookup [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import machine, percentile, table, write_results

NAME = "consent_lookup"
CLIENTS = 100

_FILL_CLIENTS = text(
    "INSERT INTO clients (id, name, org_number, status, altinn_generation, created_at, "
    "updated_at) SELECT gen_random_uuid(), 'bench ' || g, '310300012', 'active', 'altinn3', "
    "now(), now() FROM generate_series(1, :n) g"
)
_FILL_REQUESTS = text(
    "INSERT INTO consent_requests (id, client_id, requestor_org, subject_org, resource, "
    "reference, language, return_url, state, altinn_generation, altinn_consent_id, valid_to, "
    "created_at, updated_at) "
    "SELECT gen_random_uuid(), c.ids[1 + g % cardinality(c.ids)], '310200018', "
    "lpad((310100000 + g % 89999)::text, 9, '0'), 'ske-ebevis', 'case-' || g, 'nb', "
    "'https://portal.example/ebevis/return', 'granted', 'altinn3', gen_random_uuid(), "
    "now() + interval '30 days', now(), now() "
    "FROM generate_series(1, :n) g, (SELECT array_agg(id) AS ids FROM clients) c"
)
_FILL_GRANTS = text(
    "INSERT INTO consent_grants (id, consent_request_id, consented_at, valid_to, created_at) "
    "SELECT gen_random_uuid(), id, now(), valid_to, now() FROM consent_requests"
)


async def _fill(engine: AsyncEngine, rows: int) -> float:
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(_FILL_CLIENTS, {"n": CLIENTS})
        await conn.execute(_FILL_REQUESTS, {"n": rows})
        await conn.execute(_FILL_GRANTS)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE consent_requests"))
        await conn.execute(text("VACUUM ANALYZE consent_grants"))
    return time.perf_counter() - started


async def _sample(engine: AsyncEngine, k: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT id, client_id FROM consent_requests ORDER BY random() LIMIT :k"),
            {"k": k},
        )
        return [(row[0], row[1]) for row in result]


async def run(smoke: bool = False) -> dict[str, Any]:
    from broker.crypto import Cipher
    from broker.store import migrate
    from broker.store.db import create_engine, create_read_sessionmaker
    from broker.store.uow import SqlUnitOfWork
    from tests.support import fresh_postgres_database, postgres_reachable

    if not await postgres_reachable():
        raise RuntimeError("consent_lookup needs PostgreSQL (set EBEVIS_TEST_DATABASE_URL)")
    sizes = (1_000, 10_000) if smoke else (10_000, 1_000_000)
    lookups = 500 if smoke else 5_000
    rounds = 5
    cipher = Cipher.for_dev("bench")
    rng = random.Random(7)  # noqa: S311 - a shuffle, not a secret
    latencies: dict[int, list[float]] = {size: [] for size in sizes}
    statements: dict[int, int] = dict.fromkeys(sizes, 0)
    fill_s: dict[int, float] = {}
    async with AsyncExitStack() as exits:
        engines: dict[int, AsyncEngine] = {}
        for size in sizes:
            url = await exits.enter_async_context(fresh_postgres_database())
            engine = create_engine(url)
            exits.push_async_callback(engine.dispose)
            await migrate.upgrade(engine)
            fill_s[size] = await _fill(engine, size)
            engines[size] = engine

            def count(*_: object, size: int = size) -> None:
                statements[size] += 1

            event.listen(engine.sync_engine, "before_cursor_execute", count)
        samples = {size: await _sample(engines[size], lookups) for size in sizes}
        # The relay's path: a read session (autocommit on PostgreSQL), as in RelayService._granted.
        units = {size: create_read_sessionmaker(engines[size]) for size in sizes}

        async def look(size: int, ids: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
            for request_id, client_id in ids:
                t0 = time.perf_counter()
                async with SqlUnitOfWork(units[size], cipher) as uow:
                    found = await uow.consents.get(request_id, client_id=client_id)
                latencies[size].append(time.perf_counter() - t0)
                assert found is not None

        for size in sizes:  # warm-up: connections, statement caches (discarded)
            await look(size, samples[size][:50])
        statements = dict.fromkeys(sizes, 0)
        for size in sizes:
            latencies[size].clear()
        per_round = lookups // rounds
        for r in range(rounds):
            order = list(sizes) if r % 2 == 0 else list(reversed(sizes))
            for size in order:
                chunk = samples[size][r * per_round : (r + 1) * per_round]
                rng.shuffle(chunk)
                await look(size, chunk)
    small, large = sizes
    p99 = {size: percentile(latencies[size], 0.99) * 1000 for size in sizes}
    return {
        "sizes": list(sizes),
        "lookups_per_size": per_round * rounds,
        "per_size": {
            str(size): {
                "p50_ms": percentile(latencies[size], 0.5) * 1000,
                "p99_ms": p99[size],
                "statements_per_lookup": statements[size] / max(len(latencies[size]), 1),
                "fill_seconds": fill_s[size],
            }
            for size in sizes
        },
        "p99_ratio": p99[large] / p99[small],
        "target_ratio_max": 1.2,
        "met": p99[large] / p99[small] <= 1.2,
        "machine": machine(),
    }


def report(figures: dict[str, Any]) -> str:
    rows = [
        [size, f["p50_ms"], f["p99_ms"], f["statements_per_lookup"], f["fill_seconds"]]
        for size, f in figures["per_size"].items()
    ]
    out = table(
        f"consent lookup, PostgreSQL ({figures['lookups_per_size']} lookups per size)",
        ["rows", "p50 ms", "p99 ms", "stmts/lookup", "fill s"],
        rows,
    )
    return (
        f"{out}\n\np99 ratio large/small: {figures['p99_ratio']:.3f} "
        f"(target <= {figures['target_ratio_max']}, met: {figures['met']})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.consent_lookup")
    parser.add_argument("--smoke", action="store_true", help="1k vs 10k rows, few lookups")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.smoke))
    print(report(figures))
    print(f"\nwritten: {write_results(NAME, args.smoke, figures)}")


if __name__ == "__main__":
    main()
