"""Confirmation trusts neither the redirect nor one upstream: every mismatch fails the flow."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from broker.consent.confirm import Confirmer
from broker.consent.model import ConsentRequest, Generation, Language, State
from broker.consent.ports import (
    AltinnState,
    AltinnStatus,
    ConsentToken,
    ConsentUnavailable,
    Gateway,
    UpstreamRefused,
    UpstreamUnavailable,
)
from tests.unit.fakes import FakeAltinn, FakeTokens, FakeUnits

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
VALID_TO = NOW + timedelta(days=30)
RESOURCE = "digdir-oppdragutenlandskevirksomheter-skatteetaten"
ALTINN_ID = uuid.uuid4()
ACTOR = ("person", "browser")


def _request() -> ConsentRequest:
    return ConsentRequest(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        requestor_org="310200018",
        subject_org="310100013",
        resource=RESOURCE,
        reference="r",
        external_reference=None,
        language=Language.NB,
        return_url="https://portal.example/r",
        state=State.REDIRECTED,
        state_reason=None,
        generation=Generation.ALTINN3,
        altinn_consent_id=ALTINN_ID,
        valid_to=VALID_TO,
        idempotency_key=None,
        created_at=NOW,
        updated_at=NOW,
    )


def _state(**changes: object) -> AltinnState:
    state = AltinnState(
        ALTINN_ID, AltinnStatus.ACCEPTED, "310100013", "310200018", (RESOURCE,), VALID_TO, NOW
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def _token(**changes: object) -> ConsentToken:
    token = ConsentToken(
        "eyJ.token",
        ALTINN_ID,
        "310100013",
        "310200018",
        (RESOURCE,),
        VALID_TO,
        NOW,
        NOW + timedelta(minutes=2),
    )
    return replace(token, **changes)  # type: ignore[arg-type]


async def _confirm(altinn: FakeAltinn, tokens: FakeTokens) -> tuple[FakeUnits, State, bool]:
    units = FakeUnits()
    request = _request()
    await units.consents.add(request)
    gateways = {Generation.ALTINN3: Gateway(altinn, tokens)}
    confirmer = Confirmer(units, gateways=gateways, now=lambda: NOW)
    outcome = await confirmer.confirm(request, actor=ACTOR, correlation_id="c1")
    return units, outcome.state, outcome.changed


async def test_confirmed_by_both_is_granted_with_the_token_as_receipt() -> None:
    units, state, changed = await _confirm(FakeAltinn(_state()), FakeTokens(_token()))
    assert (state, changed) == (State.GRANTED, True)
    [stored] = units.consents.requests.values()
    assert stored.grant is not None
    assert stored.grant.valid_to == VALID_TO
    assert units.consents.receipts[stored.id] == b"eyJ.token"
    assert [r.action for r in units.audit.records] == ["granted"]


@pytest.mark.parametrize(
    "token_changes",
    [
        {"consent_id": uuid.uuid4()},
        {"subject_org": "310100021"},
        {"requestor_org": "310200026"},
        {"resources": ("digdir_5616_2",)},
        {"valid_to": VALID_TO + timedelta(days=1)},
    ],
)
async def test_a_token_that_does_not_match_fails_the_flow(token_changes: dict[str, object]) -> None:
    units, state, _ = await _confirm(FakeAltinn(_state()), FakeTokens(_token(**token_changes)))
    assert state is State.FAILED
    [stored] = units.consents.requests.values()
    assert stored.state_reason == "token_mismatch"
    assert stored.grant is None


@pytest.mark.parametrize(
    "state_changes",
    [
        {"id": uuid.uuid4()},
        {"subject_org": "310100021"},
        {"requestor_org": "310200026"},
        {"resources": ("other",)},
    ],
)
async def test_altinn_answering_about_something_else_fails_without_a_token(
    state_changes: dict[str, object],
) -> None:
    tokens = FakeTokens(_token())
    units, state, _ = await _confirm(FakeAltinn(_state(**state_changes)), tokens)
    assert state is State.FAILED
    assert tokens.calls == 0
    assert next(iter(units.consents.requests.values())).state_reason == "altinn_mismatch"


async def test_maskinporten_refusing_the_consent_fails_the_flow() -> None:
    tokens = FakeTokens(error=ConsentUnavailable("AM-00011", "revoked"))
    units, state, _ = await _confirm(FakeAltinn(_state()), tokens)
    assert state is State.FAILED
    assert next(iter(units.consents.requests.values())).state_reason == "consent_not_confirmed"


@pytest.mark.parametrize(
    ("status", "expected", "changed"),
    [
        (AltinnStatus.CREATED, State.REDIRECTED, False),
        (AltinnStatus.REJECTED, State.DENIED, True),
        (AltinnStatus.EXPIRED, State.EXPIRED, True),
        (AltinnStatus.REVOKED, State.FAILED, True),
        (AltinnStatus.DELETED, State.FAILED, True),
    ],
)
async def test_altinn_status_decides_without_a_token(
    status: AltinnStatus, expected: State, changed: bool
) -> None:
    tokens = FakeTokens(_token())
    _, state, did_change = await _confirm(FakeAltinn(_state(status=status)), tokens)
    assert (state, did_change) == (expected, changed)
    assert tokens.calls == 0


async def test_an_accepted_consent_already_past_its_validity_expires() -> None:
    tokens = FakeTokens(_token())
    _, state, _ = await _confirm(FakeAltinn(_state(valid_to=NOW)), tokens)
    assert state is State.EXPIRED
    assert tokens.calls == 0


async def test_altinn_refusing_to_answer_fails_and_unavailable_raises() -> None:
    class Refusing(FakeAltinn):
        async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
            raise UpstreamRefused("not_found")

    _, state, _ = await _confirm(Refusing(), FakeTokens(_token()))
    assert state is State.FAILED
    with pytest.raises(UpstreamUnavailable):
        await _confirm(FakeAltinn(unavailable=True), FakeTokens(_token()))
