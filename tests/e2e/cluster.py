"""Broker processes for the multi-process tests: ``uvicorn broker.asgi:app`` on loopback ports,
configured by ``BROKER_*`` variables only (no coverage hooks: children must not write the
parent's coverage data)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from tests.support import free_port

__all__ = ["brokers", "start_broker", "wait_ready"]


async def start_broker(env: Mapping[str, str], port: int) -> asyncio.subprocess.Process:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "COV_CORE_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "broker.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        env={**base, **env},
    )


async def wait_ready(url: str, process: asyncio.subprocess.Process) -> None:
    """Until ``/readyz`` answers 200 (15 s at most)."""
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"{url} exited with {process.returncode}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


@asynccontextmanager
async def brokers(env: Mapping[str, str], count: int) -> AsyncIterator[list[str]]:
    """``count`` broker processes, ready; terminated afterwards."""
    ports = [free_port() for _ in range(count)]
    processes = [await start_broker(env, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            await wait_ready(url, process)
        yield urls
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()
