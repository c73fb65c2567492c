"""The shared consent register: event ids are UUIDv7 and strictly increasing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.sandbox.consents import ConsentRecord, ConsentRegister, ConsentStatus, org_urn, uuid7

AT = datetime(2026, 11, 28, 10, tzinfo=UTC)


def _record() -> ConsentRecord:
    return ConsentRecord(
        id=uuid.uuid4(),
        from_party=org_urn("310100013"),
        to_party=org_urn("310200018"),
        handled_by=None,
        required_delegator=None,
        valid_to=AT + timedelta(days=1),
        consent_rights=[],
        request_message=None,
        redirect_url="https://broker.example/return",
        portal_view_mode="hide",
        created=AT,
    )


def test_uuid7_carries_version_variant_and_time() -> None:
    value = uuid7(AT)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == int(AT.timestamp() * 1000)


def test_event_ids_increase_within_one_millisecond_and_when_the_clock_goes_back() -> None:
    register = ConsentRegister()
    for _ in range(50):
        record = _record()
        register.add(record, performed_by=None)
        register.set_status(record, ConsentStatus.ACCEPTED, at=AT, performed_by=None)
    earlier = _record()
    register.add(earlier, performed_by=None)
    register.set_status(
        earlier, ConsentStatus.ACCEPTED, at=AT - timedelta(hours=1), performed_by=None
    )
    ids = [event.id.int for event in register.events()]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids) == 102


def test_accepting_records_when_consented() -> None:
    register = ConsentRegister()
    record = _record()
    register.add(record, performed_by="urn:x")
    register.set_status(record, ConsentStatus.ACCEPTED, at=AT, performed_by="urn:y")
    assert record.consented == AT
    assert [e.event_type for e in record.events] == [ConsentStatus.CREATED, ConsentStatus.ACCEPTED]
    assert register.get(record.id) is record
    register.clear()
    assert register.records() == []
    assert register.events() == []


def test_the_broker_key_file_is_private_even_when_it_existed(tmp_path: Path) -> None:
    from broker.sandbox.parties import default_parties
    from broker.sandbox.seed import Seed, write_private_jwk

    path = tmp_path / "key.json"
    path.write_text("old")
    path.chmod(0o644)
    seed = Seed.build(default_parties())
    write_private_jwk(seed.broker_client, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["jwk"]["kid"] == seed.broker_client.kid
