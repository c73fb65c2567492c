"""What the end user can do to an Altinn 3 consent request, as plain methods.

The consent page and the sandbox control API both call these, so a test can approve, reject,
revoke, delete or expire a request without a browser. Transitions follow
``../shared/reference/altinn-consent.md`` §4.2: accept only from ``Created`` and before
``validTo``; reject only from ``Created``; revoke only from ``Accepted``; a repeat of the same
action returns the request unchanged. A refused action raises :class:`ConsentActionError`
carrying the Altinn problem.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

from broker.sandbox.altinn3_problems import AM, VLD, Problem, validation_problem
from broker.sandbox.altinn3_resources import ConsentResource, default_resources
from broker.sandbox.clock import Clock
from broker.sandbox.consents import (
    ORG_URN,
    PERSON_URN,
    ConsentRecord,
    ConsentRegister,
    ConsentStatus,
)
from broker.sandbox.parties import PartyRegistry

__all__ = ["Altinn3State", "ConsentActionError"]


class ConsentActionError(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.code}: {problem.title}")
        self.problem = problem


def _as_uuid(consent_id: uuid.UUID | str) -> uuid.UUID:
    return consent_id if isinstance(consent_id, uuid.UUID) else uuid.UUID(consent_id)


class Altinn3State:
    """The Altinn 3 side of the shared consent register, plus the parties and resources."""

    def __init__(
        self,
        *,
        register: ConsentRegister,
        parties: PartyRegistry,
        clock: Clock,
        resources: Mapping[str, ConsentResource] | None = None,
    ) -> None:
        self.register = register
        self.parties = parties
        self.clock = clock
        self.resources = default_resources() if resources is None else resources

    def get(self, consent_id: uuid.UUID | str) -> ConsentRecord | None:
        return self.register.get(_as_uuid(consent_id))

    def requests(self) -> list[ConsentRecord]:
        return sorted(self.register.records(), key=lambda r: r.created)

    def may_answer(self, record: ConsentRecord, fnr: str) -> bool:
        """Whether this person may accept or reject: the ``requiredDelegator`` if one is set,
        with rights for ``from`` (or being ``from``), and every requested action delegable."""
        person = PERSON_URN + fnr
        if self.parties.person(fnr) is None:
            return False
        if record.required_delegator is not None and record.required_delegator != person:
            return False
        return self._may_act_for_from(record, fnr) and self._actions_delegable(record)

    def _may_act_for_from(self, record: ConsentRecord, fnr: str) -> bool:
        if record.from_party.startswith(ORG_URN):
            return self.parties.may_act_for(fnr, record.from_party[len(ORG_URN) :])
        return record.from_party == PERSON_URN + fnr

    def _actions_delegable(self, record: ConsentRecord) -> bool:
        for right in record.consent_rights:
            if len(right["resource"]) != 1:
                return False
            resource = self.resources.get(right["resource"][0]["value"])
            if resource is None:
                return False
            if not {a.lower() for a in right["action"]} <= resource.delegable_actions:
                return False
        return True

    def _record(self, consent_id: uuid.UUID | str) -> ConsentRecord:
        record = self.get(consent_id)
        if record is None:
            raise ConsentActionError(AM.NOT_FOUND)
        return record

    def _answerable(self, consent_id: uuid.UUID | str, fnr: str) -> ConsentRecord:
        record = self._record(consent_id)
        if not self.may_answer(record, fnr):
            raise ConsentActionError(AM.NOT_AUTHORIZED)
        return record

    def approve(self, consent_id: uuid.UUID | str, person: str) -> ConsentRecord:
        record = self._answerable(consent_id, person)
        if record.status is ConsentStatus.ACCEPTED:
            return record
        if record.status is not ConsentStatus.CREATED:
            raise ConsentActionError(AM.CANT_ACCEPT)
        now = self.clock.now()
        if record.valid_to < now:
            raise ConsentActionError(validation_problem([VLD.TIME_NOT_IN_FUTURE.at("ValidTo")]))
        self.register.set_status(
            record, ConsentStatus.ACCEPTED, at=now, performed_by=PERSON_URN + person
        )
        return record

    def reject(self, consent_id: uuid.UUID | str, person: str) -> ConsentRecord:
        record = self._answerable(consent_id, person)
        if record.status is ConsentStatus.REJECTED:
            return record
        if record.status is not ConsentStatus.CREATED:
            raise ConsentActionError(AM.CANT_REJECT)
        self.register.set_status(
            record, ConsentStatus.REJECTED, at=self.clock.now(), performed_by=PERSON_URN + person
        )
        return record

    def revoke(self, consent_id: uuid.UUID | str, person: str | None = None) -> ConsentRecord:
        """Withdraw an accepted consent in the portal, by ``person`` or else by its approver."""
        record = self._record(consent_id)
        if person is not None and not self._may_act_for_from(record, person):
            raise ConsentActionError(AM.NOT_AUTHORIZED)
        if record.status is ConsentStatus.REVOKED:
            return record
        if record.status is not ConsentStatus.ACCEPTED:
            raise ConsentActionError(AM.CANT_REVOKE)
        by = PERSON_URN + person if person is not None else self._approver(record)
        self.register.set_status(
            record, ConsentStatus.REVOKED, at=self.clock.now(), performed_by=by
        )
        return record

    @staticmethod
    def _approver(record: ConsentRecord) -> str | None:
        accepted = [e for e in record.events if e.event_type is ConsentStatus.ACCEPTED]
        return accepted[-1].performed_by if accepted else record.from_party

    def delete(self, consent_id: uuid.UUID | str) -> ConsentRecord:
        """A sandbox hook: Altinn has a ``Deleted`` status but no writer of it (§4.2)."""
        record = self._record(consent_id)
        if record.status is not ConsentStatus.DELETED:
            self.register.set_status(
                record, ConsentStatus.DELETED, at=self.clock.now(), performed_by=record.to_party
            )
        return record

    def expire(self, consent_id: uuid.UUID | str) -> ConsentRecord:
        """Move ``validTo`` just behind the clock. Altinn stores no ``Expired`` status (§4.2):
        reads add a synthetic event and token lookups fail with ``AM-00013``."""
        record = self._record(consent_id)
        now = self.clock.now()
        if record.valid_to >= now:
            record.valid_to = now - timedelta(milliseconds=1)
        return record
