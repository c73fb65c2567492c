"""The relay's concurrency limiter: per process, and across processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from broker.relay.limiter import (
    DEFAULT_LIMIT,
    ConcurrencyLimiter,
    LocalLimiter,
    PostgresLimiter,
    SlotTimeout,
    limiter_for,
    slot_class,
)
from broker.store.db import create_engine

ROOT = Path(__file__).resolve().parents[2]
KEY = "oppdrag-utenlandske-virksomheter:974761076"

only_postgres = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)]
)

MakeEngine = Callable[[], AsyncEngine]


class Overlap:
    """How many holders are inside their slot, and the most there ever were at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    @asynccontextmanager
    async def inside(self) -> AsyncIterator[None]:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            yield
        finally:
            self.current -= 1


async def crowd(limiters: list[ConcurrencyLimiter], holders: int, hold: float) -> Overlap:
    """``holders`` concurrent tasks, spread over ``limiters``, each holding a slot for ``hold``."""
    overlap = Overlap()

    async def holder(limiter: ConcurrencyLimiter) -> None:
        async with limiter.slot(KEY), overlap.inside():
            await asyncio.sleep(hold)

    async with asyncio.TaskGroup() as group:  # a failing holder fails the test
        for i in range(holders):
            group.create_task(holder(limiters[i % len(limiters)]))
    return overlap


async def take(limiter: ConcurrencyLimiter, key: str = KEY) -> None:
    async with limiter.slot(key):
        pass


@asynccontextmanager
async def holding(limiter: ConcurrencyLimiter, key: str, count: int) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for _ in range(count):
            await stack.enter_async_context(limiter.slot(key))
        yield


async def held_forever(limiter: ConcurrencyLimiter, entered: asyncio.Event) -> None:
    async with limiter.slot(KEY):
        entered.set()
        await asyncio.Event().wait()


# In-process -------------------------------------------------------------------------------------


async def test_local_never_lets_more_than_the_limit_in() -> None:
    limiter = LocalLimiter()

    overlap = await crowd([limiter], holders=50, hold=0.01)

    assert overlap.peak == DEFAULT_LIMIT == 5
    assert limiter.active_keys == 0


async def test_local_keys_are_independent() -> None:
    limiter = LocalLimiter(timeout=0.1)
    async with holding(limiter, "a", 5):
        with pytest.raises(SlotTimeout):
            await take(limiter, "a")
        async with holding(limiter, "b", 5):
            assert limiter.active_keys == 2


async def test_local_times_out_with_a_503_that_says_when_to_retry() -> None:
    limiter = LocalLimiter(limit=1, timeout=0.05)
    loop = asyncio.get_running_loop()
    async with limiter.slot(KEY):
        started = loop.time()
        with pytest.raises(SlotTimeout) as caught:
            await take(limiter)
        assert 0.05 <= loop.time() - started < 0.5

    error = caught.value
    assert (error.status, error.instance_code) == (503, "upstream_busy")
    assert error.headers == {"Retry-After": "2"}
    assert (error.key, error.timeout) == (KEY, 0.05)
    await take(limiter)  # the slot is free again
    assert limiter.active_keys == 0


async def test_local_cancelled_holder_frees_its_slot() -> None:
    limiter = LocalLimiter(limit=1, timeout=1)
    entered = asyncio.Event()
    holder = asyncio.create_task(held_forever(limiter, entered))
    await entered.wait()
    waiter = asyncio.create_task(take(limiter))
    await asyncio.sleep(0.01)
    assert not waiter.done()

    holder.cancel()

    await asyncio.wait_for(waiter, 0.5)
    assert holder.cancelled()
    assert limiter.active_keys == 0


async def test_local_cancelled_waiter_takes_no_slot() -> None:
    limiter = LocalLimiter(limit=1, timeout=1)
    async with limiter.slot(KEY):
        waiter = asyncio.create_task(take(limiter))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with limiter.slot(KEY):
        assert limiter.active_keys == 1
    assert limiter.active_keys == 0


async def test_local_drops_idle_keys() -> None:
    limiter = LocalLimiter()
    async with AsyncExitStack() as stack:
        for number in range(100):
            await stack.enter_async_context(limiter.slot(f"api:{number}"))
        assert limiter.active_keys == 100
    assert limiter.active_keys == 0


async def test_rejects_nonsense_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        LocalLimiter(limit=0)
    with pytest.raises(ValueError, match="timeout"):
        LocalLimiter(timeout=0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    with pytest.raises(ValueError, match="poll"):
        PostgresLimiter(engine, poll=0)
    await engine.dispose()


def test_slot_class_is_a_stable_signed_32_bit_hash() -> None:
    # Pinned: every replica of every version must agree, or a rolling deploy doubles the limit.
    assert slot_class(KEY) == slot_class(KEY) == 1600705649
    assert -(2**31) <= slot_class("x" * 1000) < 2**31
    assert slot_class("api:1") != slot_class("api:2")


async def test_limiter_for_picks_the_backend(database_url: str, backend: str) -> None:
    engine = create_engine(database_url)
    limiter = limiter_for(engine, limit=3, timeout=2)

    expected = PostgresLimiter if backend == "postgresql" else LocalLimiter
    assert type(limiter) is expected
    assert (limiter.limit, limiter.timeout) == (3, 2)
    await engine.dispose()


# On PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[MakeEngine]:
    """Makes engines on the test database (each one stands for a broker process)."""
    made: list[AsyncEngine] = []

    def make() -> AsyncEngine:
        made.append(create_engine(database_url))
        return made[-1]

    yield make
    for engine in made:
        await engine.dispose()


async def slots_held(engine: AsyncEngine, key: str = KEY) -> int:
    """The key's advisory locks granted in this database, whoever holds them."""
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE d.datname = current_database() AND l.locktype = 'advisory'"
        " AND l.objsubid = 2 AND l.granted AND l.classid::bigint = :classid"
    )
    async with engine.connect() as conn:
        count = (await conn.execute(query, {"classid": slot_class(key) & 0xFFFFFFFF})).scalar()
    assert isinstance(count, int)
    return count


def checked_out(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


@only_postgres
async def test_postgres_fifty_holders_across_three_processes(engines: MakeEngine) -> None:
    pools = [engines() for _ in range(3)]
    limiters: list[ConcurrencyLimiter] = [PostgresLimiter(p, timeout=10) for p in pools]

    overlap = await crowd(limiters, holders=50, hold=0.05)

    assert overlap.peak == 5
    assert await slots_held(engines()) == 0
    assert [checked_out(p) for p in pools] == [0, 0, 0]


@asynccontextmanager
async def workers(*argvs: list[str]) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """``tests/adapters/limiter_worker.py`` in separate OS processes, killed if still running."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for argv in argvs:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.adapters.limiter_worker",
                *argv,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(process)
        yield processes
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()


@only_postgres
async def test_postgres_holders_in_three_os_processes(
    engines: MakeEngine, database_url: str
) -> None:
    observer = engines()
    async with observer.begin() as conn:
        await conn.execute(text("CREATE TABLE overlap (current int NOT NULL, peak int NOT NULL)"))
        await conn.execute(text("INSERT INTO overlap VALUES (0, 0)"))

    argv = ["run", database_url, KEY, "17", "0.1"]
    async with workers(argv, argv, argv) as processes:
        assert [await read_line(p) for p in processes] == ["ready"] * 3
        for process in processes:  # start together, so that the processes really compete
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        outputs = [await asyncio.wait_for(p.communicate(), 15) for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0]
    reports = [json.loads(stdout.decode().splitlines()[-1]) for stdout, _ in outputs]
    assert reports == [{"done": 17, "failed": 0}] * 3
    async with observer.connect() as conn:
        current, peak = (await conn.execute(text("SELECT current, peak FROM overlap"))).one()
    assert (current, peak) == (0, 5)
    assert await slots_held(observer) == 0


@only_postgres
async def test_postgres_killed_process_releases_its_slots(
    engines: MakeEngine, database_url: str
) -> None:
    engine = engines()
    async with workers(["hold", database_url, KEY, "5"]) as [process]:
        assert await read_line(process) == "held"
        assert await slots_held(engine) == 5
        with pytest.raises(SlotTimeout):
            await take(PostgresLimiter(engine, timeout=0.2))

        process.send_signal(signal.SIGKILL)
        await process.wait()

    # Its sessions ended with it; all five slots are free without waiting for any timeout.
    async with holding(PostgresLimiter(engine, timeout=5), KEY, 5):
        assert await slots_held(engine) == 5
    assert await slots_held(engine) == 0


@only_postgres
async def test_postgres_times_out_when_every_slot_is_taken(engines: MakeEngine) -> None:
    first, second = engines(), engines()
    here = PostgresLimiter(first, timeout=0.2, poll=0.02)
    elsewhere = PostgresLimiter(second, timeout=0.2, poll=0.02)
    loop = asyncio.get_running_loop()
    async with holding(here, KEY, 5):
        started = loop.time()
        with pytest.raises(SlotTimeout):
            await take(elsewhere)  # polls PostgreSQL until the deadline
        assert 0.2 <= loop.time() - started < 1
        with pytest.raises(SlotTimeout):
            await take(here)  # queues in-process: this process already holds all five
        # Taking free slots must not depend on the short timeout above on a loaded machine.
        patient = PostgresLimiter(second, timeout=30, poll=0.02)
        async with holding(patient, "another-api:974761076", 5):
            assert await slots_held(second, KEY) == 5
    assert checked_out(second) == 0

    async with holding(PostgresLimiter(second, timeout=30, poll=0.02), KEY, 5):
        pass
    assert (await slots_held(first), checked_out(first), checked_out(second)) == (0, 0, 0)


@only_postgres
async def test_postgres_cancelled_holder_and_waiter_free_their_slots(
    engines: MakeEngine,
) -> None:
    first, second = engines(), engines()
    here = PostgresLimiter(first, limit=1, timeout=5, poll=0.01)
    elsewhere = PostgresLimiter(second, limit=1, timeout=5, poll=0.01)
    entered = asyncio.Event()
    holder = asyncio.create_task(held_forever(here, entered))
    await entered.wait()
    waiter = asyncio.create_task(take(elsewhere))
    await asyncio.sleep(0.1)  # it is polling now

    waiter.cancel()
    holder.cancel()
    results = await asyncio.gather(holder, waiter, return_exceptions=True)

    assert [type(result) for result in results] == [asyncio.CancelledError] * 2
    assert (checked_out(first), checked_out(second)) == (0, 0)
    assert await slots_held(first) == 0
    await take(PostgresLimiter(second, limit=1, timeout=0.5))


@only_postgres
async def test_postgres_cancellation_at_any_moment_leaks_no_slot(engines: MakeEngine) -> None:
    pools = [engines(), engines()]
    limiters = [PostgresLimiter(p, timeout=5, poll=0.005) for p in pools]

    async def holder(limiter: PostgresLimiter) -> None:
        async with limiter.slot(KEY):
            await asyncio.sleep(random.uniform(0, 0.02))

    rng = random.Random(5616)
    tasks = [asyncio.create_task(holder(limiters[i % 2])) for i in range(40)]
    for task in rng.sample(tasks, len(tasks)):
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
    assert [checked_out(p) for p in pools] == [0, 0]
    assert await slots_held(pools[0]) == 0
    async with holding(limiters[1], KEY, 5):
        pass


@only_postgres
async def test_postgres_lost_connection_does_not_fail_the_call(
    engines: MakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine, observer = engines(), engines()
    limiter = PostgresLimiter(engine, limit=1, timeout=1)
    terminate = text(
        "SELECT pg_terminate_backend(pid) FROM pg_locks"
        " WHERE locktype = 'advisory' AND classid::bigint = :classid"
    )

    with caplog.at_level(logging.WARNING, logger="broker.relay"):
        # The database drops the holder's session during the call.
        async with limiter.slot(KEY), observer.connect() as conn:
            await conn.execute(terminate, {"classid": slot_class(KEY) & 0xFFFFFFFF})

    assert "could not release a relay slot" in caplog.text
    assert checked_out(engine) == 0
    await take(limiter)  # the dead connection was not put back in the pool
