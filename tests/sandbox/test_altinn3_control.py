"""The end-user actions behind the consent page, as the control API calls them on the state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from broker.sandbox.altinn3_state import ConsentActionError
from broker.sandbox.consents import PERSON_URN, ConsentStatus
from tests.sandbox.altinn3_helpers import (
    KARI,
    LISE,
    PER,
    Fake,
    client_fixture,  # noqa: F401 - pytest fixture
    fake_fixture,  # noqa: F401 - pytest fixture
    keys_fixture,  # noqa: F401 - pytest fixture
    new_request,
)

# --- the control API's methods ------------------------------------------------------------------


def _refused(action: Any, *args: Any) -> str:
    with pytest.raises(ConsentActionError) as caught:
        action(*args)
    return caught.value.problem.code


async def test_state_methods_act_as_the_end_user(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    assert _refused(fake.state.approve, consent_id, PER) == "AM-00000"
    assert _refused(fake.state.revoke, consent_id) == "AM-00010"
    record = fake.state.approve(consent_id, KARI)
    assert record.status is ConsentStatus.ACCEPTED
    assert _refused(fake.state.reject, consent_id, KARI) == "AM-00015"
    assert _refused(fake.state.revoke, consent_id, PER) == "AM-00000"
    fake.clock.advance(10)
    fake.state.revoke(consent_id)
    again = fake.state.revoke(consent_id)  # idempotent
    assert again.status is ConsentStatus.REVOKED
    assert record.events[-1].performed_by == PERSON_URN + KARI  # the approver, by default
    assert _refused(fake.state.approve, consent_id, KARI) == "AM-00002"
    assert [e.event_type for e in record.events] == [
        ConsentStatus.CREATED,
        ConsentStatus.ACCEPTED,
        ConsentStatus.REVOKED,
    ]


async def test_revoke_by_a_named_person(fake: Fake, client: httpx.AsyncClient) -> None:
    consent_id = await new_request(fake, client)
    fake.state.approve(consent_id, KARI)
    record = fake.state.revoke(consent_id, LISE)
    assert record.events[-1].performed_by == PERSON_URN + LISE


async def test_delete_expire_and_listing(fake: Fake, client: httpx.AsyncClient) -> None:
    first = await new_request(fake, client)
    fake.clock.advance(1)
    second = await new_request(fake, client)
    assert [str(r.id) for r in fake.state.requests()] == [first, second]
    deleted = fake.state.delete(first)
    fake.state.delete(first)
    assert deleted.status is ConsentStatus.DELETED
    assert [e.event_type for e in deleted.events].count(ConsentStatus.DELETED) == 1
    expired = fake.state.expire(second)
    assert expired.valid_to < fake.clock.now()
    assert expired.status is ConsentStatus.CREATED
    assert _refused(fake.state.approve, second, KARI) == "STD-00000"
    assert _refused(fake.state.delete, "00000000-0000-0000-0000-000000000009") == "AM-00001"
