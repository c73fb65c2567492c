"""The consent state machine: every (state, event) pair, and the diagram against the table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from broker.consent import machine
from broker.consent.machine import (
    FINAL_STATES,
    TRANSITIONS,
    Cancelled,
    ConsentFlow,
    Denied,
    Event,
    Expired,
    Failed,
    Granted,
    InvalidTransition,
    Notify,
    Revoked,
    Started,
    step,
)
from broker.consent.model import RevokedBy, State

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=30)

EVENTS: list[Event] = [
    Started(),
    Granted(consented_at=NOW, valid_to=LATER),
    Denied(),
    Expired(),
    Revoked(by=RevokedBy.ADMIN, reason="complaint"),
    Cancelled(),
    Failed(reason="altinn_rejected"),
]


def _flow(state: State) -> ConsentFlow:
    return ConsentFlow(id="r1", state=state, valid_to=NOW + timedelta(days=10))


def test_every_state_has_a_row_and_every_event_class_is_used() -> None:
    assert set(TRANSITIONS) == set(State)
    used = {event for edges in TRANSITIONS.values() for event in edges}
    assert used == {type(e) for e in EVENTS}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_each_pair_either_moves_as_the_table_says_or_raises(state: State, event: Event) -> None:
    target = TRANSITIONS[state].get(type(event))
    if target is None:
        with pytest.raises(InvalidTransition) as caught:
            step(_flow(state), event, now=NOW)
        assert caught.value.state == state
        return
    flow, effects = step(_flow(state), event, now=NOW)
    assert flow.state == target
    assert flow.changed_at == NOW
    if target == state:
        assert effects == []
    else:
        detail = event.reason if isinstance(event, Revoked) else None
        assert effects == [Notify(target, flow.reason, detail)]


def test_final_states_accept_nothing() -> None:
    assert {
        State.DENIED,
        State.EXPIRED,
        State.REVOKED,
        State.CANCELLED,
        State.FAILED,
    } == FINAL_STATES


def test_a_grant_takes_the_confirmed_validity() -> None:
    flow, effects = step(_flow(State.REDIRECTED), Granted(NOW, LATER), now=NOW)
    assert flow.valid_to == LATER
    assert effects == [Notify(State.GRANTED, None)]


def test_a_grant_that_is_already_over_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        step(_flow(State.REDIRECTED), Granted(NOW - timedelta(days=2), NOW), now=NOW)


def test_revocation_and_failure_carry_their_reason() -> None:
    revoked, notes = step(_flow(State.GRANTED), Revoked(RevokedBy.SKATTEETATEN, "-007"), now=NOW)
    assert revoked.reason == "skatteetaten"
    # Who (the reason) and why (the detail) both reach the webhook.
    assert notes == [Notify(State.REVOKED, "skatteetaten", "-007")]
    failed, effects = step(_flow(State.PENDING), Failed("altinn_unavailable"), now=NOW)
    assert failed.reason == "altinn_unavailable"
    assert effects == [Notify(State.FAILED, "altinn_unavailable")]


def test_restarting_a_redirected_flow_emits_nothing() -> None:
    flow, effects = step(_flow(State.REDIRECTED), Started(), now=NOW)
    assert flow.state == State.REDIRECTED
    assert effects == []


def test_the_docstring_diagram_matches_the_table() -> None:
    doc = machine.__doc__ or ""
    edges = set(re.findall(r"^\s+(\w+)\s+--(\w+)-->\s+(\w+)\s*$", doc, re.MULTILINE))
    table = {
        (state.value, event.__name__, target.value)
        for state, row in TRANSITIONS.items()
        for event, target in row.items()
    }
    assert edges == table
