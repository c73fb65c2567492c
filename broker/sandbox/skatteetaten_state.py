"""Mutable state of one fake Skatteetaten: fixtures, switches, faults and counters.

A control API drives it through plain methods; the app only reads switches and reports calls.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from broker.sandbox.skatteetaten_bodies import EXAMPLE_FIXTURE, EXAMPLE_ORGNR, OppdragFixture

__all__ = [
    "OUTCOME_OK",
    "UNAUTHENTICATED",
    "CallRecord",
    "Fault",
    "LevertStyle",
    "Quirks",
    "SkatteetatenState",
    "Switches",
    "UnknownUrlStyle",
]

UNAUTHENTICATED = "unauthenticated"  # the consumer key of calls without a verified token
OUTCOME_OK = "OK"


class LevertStyle(StrEnum):
    ALTERNATE = "alternate"  # with microseconds, then without, and so on
    WITH_FRACTION = "with-fraction"
    WITHOUT_FRACTION = "without-fraction"


class UnknownUrlStyle(StrEnum):
    FEIL = "feil"  # 404 with the -003 error body
    GATEWAY = "gateway"  # a plain-text "404 NOT FOUND" from the gateway (§3.1)
    UNKNOWN_INSTANCE = "unknown-instance"  # "Unknown instance. ID=..." (§3.1)


class Fault(StrEnum):
    """What replaces the answer to a call that passed every check (the backend step)."""

    ERROR_001 = "error-001"  # 500 -001
    ERROR_002 = "error-002"  # 500 -002
    DAS_003 = "das-003"  # 500 DAS-003
    DAS_008 = "das-008"  # 403 DAS-008
    BAD_GATEWAY = "bad-gateway"  # 502, HTML page
    UNAVAILABLE = "unavailable"  # 503, HTML page
    SLOW_BODY = "slow-body"  # the 200 body, streamed in small chunks with pauses
    CONNECTION_RESET = "connection-reset"  # headers sent, then the connection drops


@dataclass
class Quirks:
    levert_style: LevertStyle = LevertStyle.ALTERNATE
    extra_unknown_field: bool = True
    reordered_keys: bool = True
    unknown_url_style: UnknownUrlStyle = UnknownUrlStyle.GATEWAY


@dataclass
class Switches:
    latency_seconds: float = 0.0
    slow_chunk_delay_seconds: float = 0.5
    slow_chunk_size: int = 16
    all_orgs_known: bool = False  # the test environment's static mock answers any orgnr (§5)
    quirks: Quirks = field(default_factory=Quirks)


@dataclass(frozen=True)
class CallRecord:
    """One call as the fake saw it; raw tokens are never kept."""

    at: datetime
    consumer: str
    method: str
    path: str
    status: int
    outcome: str  # OUTCOME_OK, an error ``kode``, or a fault/gateway name
    korrelasjonsid: str | None
    consent_id: str | None


class SkatteetatenState:
    def __init__(
        self,
        *,
        known_orgs: Iterable[str] = (EXAMPLE_ORGNR,),
        fixtures: Mapping[str, OppdragFixture] | None = None,
        package_holders: Mapping[str, Iterable[str]] | None = None,
        switches: Switches | None = None,
        max_records: int = 1000,
    ) -> None:
        self._initial_fixtures = {org: EXAMPLE_FIXTURE for org in known_orgs} | dict(fixtures or {})
        self._initial_holders = {p: frozenset(orgs) for p, orgs in (package_holders or {}).items()}
        self._initial_switches = switches or Switches()
        self._max_records = max_records
        self.reset()

    def reset(self) -> None:
        """Back to the constructor's fixtures, grants and switches, with zeroed counters."""
        self.fixtures: dict[str, OppdragFixture] = dict(self._initial_fixtures)
        self._holders = {p: set(orgs) for p, orgs in self._initial_holders.items()}
        self.switches = replace(
            self._initial_switches, quirks=replace(self._initial_switches.quirks)
        )
        self._fault: Fault | None = None
        self._fault_remaining: int | None = None
        self._levert_calls = 0
        self.reset_counters()

    # Fixtures and grants

    def set_fixture(self, orgnr: str, fixture: OppdragFixture = EXAMPLE_FIXTURE) -> None:
        self.fixtures[orgnr] = fixture

    def remove_org(self, orgnr: str) -> None:
        self.fixtures.pop(orgnr, None)

    def fixture_for(self, orgnr: str) -> OppdragFixture | None:
        if orgnr in self.fixtures:
            return self.fixtures[orgnr]
        return EXAMPLE_FIXTURE if self.switches.all_orgs_known else None

    def grant_package(self, orgnr: str, package: str) -> None:
        self._holders.setdefault(package, set()).add(orgnr)

    def withdraw_package(self, orgnr: str, package: str) -> None:
        self._holders.get(package, set()).discard(orgnr)

    def holds_package(self, orgnr: str, package: str) -> bool:
        return orgnr in self._holders.get(package, set())

    def holders(self) -> dict[str, list[str]]:
        """Consumer orgnrs per rettighetspakke."""
        return {package: sorted(orgs) for package, orgs in self._holders.items()}

    # Switches

    def set_quirks(self, quirks: Quirks) -> None:
        self.switches.quirks = replace(quirks)

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self.switches.latency_seconds = seconds

    def set_slow_body(self, *, chunk_size: int, delay_seconds: float) -> None:
        if chunk_size < 1 or delay_seconds < 0:
            raise ValueError("chunk_size must be at least 1 and delay_seconds not negative")
        self.switches.slow_chunk_size = chunk_size
        self.switches.slow_chunk_delay_seconds = delay_seconds

    def set_all_orgs_known(self, value: bool) -> None:
        self.switches.all_orgs_known = value

    # Faults

    def set_fault(self, fault: Fault | None, *, times: int | None = None) -> None:
        """Inject ``fault`` for the next ``times`` passing calls (None: until cleared)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        self._fault, self._fault_remaining = fault, times

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def take_fault(self) -> Fault | None:
        fault = self._fault
        if fault is not None and self._fault_remaining is not None:
            self._fault_remaining -= 1
            if self._fault_remaining == 0:
                self._fault = self._fault_remaining = None
        return fault

    def next_levert_has_fraction(self) -> bool:
        style = self.switches.quirks.levert_style
        if style is not LevertStyle.ALTERNATE:
            return style is LevertStyle.WITH_FRACTION
        self._levert_calls += 1
        return self._levert_calls % 2 == 1

    # Counters

    def reset_counters(self) -> None:
        self._calls: Counter[tuple[str, str]] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._over_limit: Counter[str] = Counter()
        self._records: deque[CallRecord] = deque(maxlen=self._max_records)

    def enter(self, consumer: str, *, limit: int) -> None:
        if self._in_flight[consumer] >= limit:
            self._over_limit[consumer] += 1
        self._in_flight[consumer] += 1
        self._peak[consumer] = max(self._peak[consumer], self._in_flight[consumer])

    def leave(self, consumer: str) -> None:
        self._in_flight[consumer] -= 1

    def record(self, call: CallRecord) -> None:
        self._calls[call.consumer, call.outcome] += 1
        self._records.append(call)

    def calls(self) -> dict[tuple[str, str], int]:
        """Calls per (consumer orgnr, outcome)."""
        return dict(self._calls)

    def calls_by_consumer(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (consumer, _), count in self._calls.items():
            totals[consumer] += count
        return dict(totals)

    def calls_by_outcome(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (_, outcome), count in self._calls.items():
            totals[outcome] += count
        return dict(totals)

    def in_flight(self) -> dict[str, int]:
        return {consumer: n for consumer, n in self._in_flight.items() if n}

    def peak_in_flight(self) -> dict[str, int]:
        return dict(self._peak)

    def over_limit_calls(self) -> dict[str, int]:
        """Calls that started while the consumer already had ``limit`` calls in flight."""
        return dict(self._over_limit)

    def records(self) -> list[CallRecord]:
        return list(self._records)
