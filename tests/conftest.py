"""Fixtures: ``database_url`` gives each test an empty database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from tests.support import fresh_postgres_database, in_ci, postgres_reachable, sqlite_url

_postgres_passed: list[str] = []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    value = request.param
    assert isinstance(value, str)
    return value


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (no schema) on the test's backend."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if not await postgres_reachable():
        message = "PostgreSQL is not reachable (set EBEVIS_TEST_DATABASE_URL)"
        if in_ci():
            pytest.fail(f"{message}; with CI=true the PostgreSQL tests must run")
        pytest.skip(message)
    async with fresh_postgres_database() as url:
        yield url


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_passed.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    terminalreporter.write_line(f"PostgreSQL-backed tests passed: {len(_postgres_passed)}")
