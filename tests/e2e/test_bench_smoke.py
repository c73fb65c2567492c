"""The benchmarks run in smoke mode and report their ratio fields. Speed is never asserted here:
it is measured by the benchmarks themselves and recorded in docs/benchmarks.md."""

from __future__ import annotations

import pytest

from bench import consent_lookup, relay_overhead, token_stampede, webhook_delivery
from tests.support import in_ci, postgres_reachable

pytestmark = pytest.mark.slow


async def test_relay_overhead_smoke_reports_ratios() -> None:
    figures = await relay_overhead.run(smoke=True, postgres=False)
    ratios = figures["ratios"]["broker-sqlite"]
    for name in ("throughput_ratio", "p50_overhead_ms", "p99_overhead_ms"):
        assert isinstance(ratios[name], float)
    assert figures["arms"]["passthrough"]["errors"] == 0
    assert figures["arms"]["broker-sqlite"]["errors"] == 0
    assert relay_overhead.report(figures)


async def test_token_stampede_smoke_reports_counts() -> None:
    figures = await token_stampede.run(smoke=True)
    assert isinstance(figures["stampede"]["ratio_vs_uncached"], float)
    assert isinstance(figures["steady"]["ratio_vs_uncached"], float)
    assert figures["stampede"]["token_requests"] >= 1
    assert token_stampede.report(figures)


@pytest.mark.postgres
async def test_consent_lookup_smoke_reports_the_ratio() -> None:
    if not await postgres_reachable():
        if in_ci():
            pytest.fail("PostgreSQL is not reachable; with CI=true it must be")
        pytest.skip("PostgreSQL is not reachable (set EBEVIS_TEST_DATABASE_URL)")
    figures = await consent_lookup.run(smoke=True)
    assert isinstance(figures["p99_ratio"], float)
    assert consent_lookup.report(figures)


async def test_webhook_delivery_smoke_reports_rates_ratios_and_latencies() -> None:
    figures = await webhook_delivery.run(smoke=True, postgres=False)
    worker = figures["arms"]["worker-sqlite"]
    assert figures["arms"]["baseline"]["errors"] == 0
    assert isinstance(figures["ratios"]["worker-sqlite"], float)
    assert worker["throughput"]["deliveries_per_s"] > 0
    assert worker["throughput"]["duplicates"] == 0
    for label in ("same_process", "other_process"):
        latency = worker[f"latency_{label}"]
        assert latency["delivered"] == latency["events"] - latency["enqueue_failures"]
        assert latency["duplicates"] == 0
        assert isinstance(latency["p99_ms"], float)
    assert webhook_delivery.report(figures)
