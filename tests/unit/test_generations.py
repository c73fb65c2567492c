"""The consent shell picks each request's Altinn generation; what it does when a deployment has
no adapter for one, and how a withdrawal at Altinn fails without losing anything."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.consent.confirm import Confirmer
from broker.consent.model import Caller, ConsentRequest, Generation, Grant, Language, State
from broker.consent.ports import (
    AltinnCreated,
    AltinnRequest,
    AltinnState,
    Gateway,
    UpstreamRefused,
    UpstreamUnavailable,
)
from broker.consent.withdraw import Withdrawals
from broker.errors import BadGateway
from broker.relay.service import RelayService
from broker.relay.signing import BodySigner
from tests.unit.fakes import FakeAltinn, FakeTokens, FakeUnits

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
CODE = uuid.uuid4()


def _request(**changes: Any) -> ConsentRequest:
    request = ConsentRequest(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        requestor_org="310200018",
        subject_org="310100013",
        resource="5616_2",
        reference="r",
        external_reference=None,
        language=Language.NB,
        return_url="https://portal.example/r",
        state=State.CANCELLED,
        state_reason="client",
        generation=Generation.ALTINN2,
        altinn_consent_id=CODE,
        valid_to=NOW + timedelta(days=30),
        idempotency_key=None,
        created_at=NOW,
        updated_at=NOW,
        grant=Grant(NOW, NOW + timedelta(days=30)),
    )
    return replace(request, **changes)


@dataclass
class Altinn2:
    """``AltinnConsents`` whose withdrawal answers as told."""

    answer: bool | Exception = True
    calls: list[tuple[uuid.UUID, bool]] = field(default_factory=list)

    async def create(self, request: AltinnRequest) -> AltinnCreated:
        raise AssertionError("not used")

    async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
        raise AssertionError("not used")

    async def withdraw(self, consent_id: uuid.UUID, *, requestor_org: str, granted: bool) -> bool:
        self.calls.append((consent_id, granted))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _withdrawals(units: FakeUnits, altinn: Altinn2 | None) -> Withdrawals:
    gateways = {} if altinn is None else {Generation.ALTINN2: Gateway(altinn, FakeTokens())}
    return Withdrawals(units, gateways=gateways, now=lambda: NOW)


async def test_a_done_withdrawal_is_marked_and_audited() -> None:
    units, altinn = FakeUnits(), Altinn2()
    request = _request()
    await units.consents.add(request)
    assert await _withdrawals(units, altinn).withdraw(request, actor=("client", "c")) is True
    assert altinn.calls == [(CODE, True)]
    assert units.consents.requests[request.id].altinn_withdrawn_at == NOW
    [record] = units.audit.records
    assert (record.action, record.outcome) == ("altinn.withdraw", "success")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(UpstreamUnavailable("down"), "unavailable"), (UpstreamRefused("http_400"), "http_400")],
)
async def test_a_failed_withdrawal_is_audited_and_left_due(answer: Exception, reason: str) -> None:
    units = FakeUnits()
    request = _request()
    await units.consents.add(request)
    withdrawals = _withdrawals(units, Altinn2(answer))
    assert await withdrawals.withdraw(request, actor=("client", "c")) is False
    assert units.consents.requests[request.id].altinn_withdrawn_at is None
    [record] = units.audit.records
    assert (record.outcome, record.reason) == ("failure", reason)


@pytest.mark.parametrize(
    ("altinn", "consent"),
    [
        (None, _request()),  # no adapter for the generation
        (Altinn2(), _request(altinn_consent_id=None)),  # never sent to Altinn
        (Altinn2(), _request(altinn_withdrawn_at=NOW)),  # told already
        (Altinn2(answer=False), _request()),  # this Altinn has no such call
    ],
)
async def test_nothing_to_tell_is_no_withdrawal(
    altinn: Altinn2 | None, consent: ConsentRequest
) -> None:
    units = FakeUnits()
    await units.consents.add(consent)
    assert await _withdrawals(units, altinn).withdraw(consent, actor=("client", "c")) is False
    assert units.audit.records == []


async def test_confirming_a_generation_without_an_adapter_is_unavailable() -> None:
    units = FakeUnits()
    request = _request(state=State.REDIRECTED, state_reason=None, grant=None)
    confirmer = Confirmer(
        units, gateways={Generation.ALTINN3: Gateway(FakeAltinn(), FakeTokens())}, now=lambda: NOW
    )
    with pytest.raises(UpstreamUnavailable, match="altinn2"):
        await confirmer.confirm(request, actor=("system", "t"), correlation_id=None)


async def test_relaying_a_generation_without_consent_tokens_is_a_configuration_fault() -> None:
    units = FakeUnits()
    request = _request(state=State.GRANTED, state_reason=None)
    await units.consents.add(request)
    relay = RelayService(
        units,
        tokens={},
        source=object(),  # type: ignore[arg-type]
        limiter=object(),  # type: ignore[arg-type]
        signer=BodySigner.generate(),
        now=lambda: NOW,
    )
    caller = Caller(request.client_id, "Portal", ("https://portal.example/r",))
    with pytest.raises(BadGateway) as refused:
        await relay.oppdrag(caller, str(request.id), accept="json", correlation_id=None)
    assert refused.value.instance_code == "upstream_configuration"
