"""A separate OS process using ``PostgresLimiter``, for the cluster-wide limiter tests.

python -m tests.adapters.limiter_worker run URL KEY HOLDERS HOLD_SECONDS
    Prints ``ready``, waits for a line on stdin, then runs HOLDERS concurrent holders of one
    slot each; inside its slot a holder bumps ``overlap.current`` (and ``overlap.peak``),
    sleeps HOLD_SECONDS and bumps it back. Prints ``{"done": n, "failed": m}`` at the end.
python -m tests.adapters.limiter_worker hold URL KEY SLOTS
    Takes SLOTS slots, prints ``held`` and waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AsyncExitStack

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.relay.limiter import PostgresLimiter
from broker.store.db import create_engine

ENTER = text("UPDATE overlap SET current = current + 1, peak = GREATEST(peak, current + 1)")
LEAVE = text("UPDATE overlap SET current = current - 1")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def bump(engine: AsyncEngine, statement: TextClause) -> None:
    async with engine.begin() as conn:
        await conn.execute(statement)


async def run(url: str, key: str, holders: int, hold: float) -> None:
    engine = create_engine(url)
    limiter = PostgresLimiter(engine, timeout=30)
    outcomes: list[bool] = []

    async def holder() -> None:
        try:
            async with limiter.slot(key):
                await bump(engine, ENTER)
                await asyncio.sleep(hold)
                await bump(engine, LEAVE)
        except Exception:
            outcomes.append(False)
            raise
        outcomes.append(True)

    try:
        async with engine.connect():  # warm the pool up before the start signal
            pass
        say("ready")
        await asyncio.to_thread(sys.stdin.readline)
        async with asyncio.TaskGroup() as group:
            for _ in range(holders):
                group.create_task(holder())
    finally:
        say(json.dumps({"done": outcomes.count(True), "failed": outcomes.count(False)}))
        await engine.dispose()


async def hold(url: str, key: str, slots: int) -> None:
    engine = create_engine(url)
    limiter = PostgresLimiter(engine, timeout=10)
    async with AsyncExitStack() as stack:
        for _ in range(slots):
            await stack.enter_async_context(limiter.slot(key))
        say("held")
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    match argv:
        case ["run", url, key, holders, seconds]:
            asyncio.run(run(url, key, int(holders), float(seconds)))
        case ["hold", url, key, slots]:
            asyncio.run(hold(url, key, int(slots)))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
