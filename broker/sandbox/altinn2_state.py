"""The fake Altinn 2 consent register: requests by AuthorizationCode and what can happen to them.

Status model (``altinn-consent.md`` §4.1): ``Unopened`` → ``Opened`` (the person views the
page) → ``Accepted`` | ``Rejected``; it changes at most twice, and ``Accepted`` stays
``Accepted`` after the consent is revoked, discarded or expired: those show only as a refused
token fetch (403). The consumer may withdraw an unanswered request (``DELETE
/api/consentRequests/{code}``) and discard a grant (``DELETE /api/authorization/token/{code}``);
the end user revokes in the portal. The page, the API and the control API all act through here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from broker.sandbox.altinn2_config import ConsentService
from broker.sandbox.clock import Clock
from broker.sandbox.consents import (
    ORG_URN,
    PERSON_URN,
    ConsentRecord,
    ConsentRegister,
    ConsentStatus,
)
from broker.sandbox.parties import PartyRegistry

__all__ = [
    "A2Request",
    "A2Resource",
    "A2Status",
    "Altinn2ActionError",
    "Altinn2State",
    "party_urn",
]


class A2Status(StrEnum):
    UNOPENED = "Unopened"
    OPENED = "Opened"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


_OPEN = (A2Status.UNOPENED, A2Status.OPENED)


class Altinn2ActionError(Exception):
    """A refused action; ``status`` is the HTTP status the API would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class A2Resource:
    service: ConsentService
    metadata: dict[str, str]


@dataclass
class A2Request:
    code: uuid.UUID  # the AuthorizationCode, Altinn's own GUID
    covered_by: str  # the consumer (orgnr)
    offered_by: str  # who consents (orgnr or fnr)
    offered_by_name: str
    handled_by: str | None  # the vendor, if any
    required_delegator: str | None
    valid_to: datetime  # aware
    redirect_url: str
    resources: list[A2Resource]
    request_message: dict[str, str] | None
    portal_view_mode: str  # Show or Hide
    created: datetime
    status: A2Status = A2Status.UNOPENED
    last_changed: datetime | None = None
    delegated: datetime | None = None  # when the consent was given
    answered_by: str | None = None  # fnr
    withdrawn: bool = False  # the consumer deleted the unanswered request
    discarded: bool = False  # the consumer discarded the rights (DELETE token)
    revoked: bool = False  # the end user withdrew the consent in the portal
    used: bool = False  # a one-time consent whose use was logged
    usage: list[tuple[str, datetime]] = field(default_factory=list)

    def services(self) -> list[str]:
        return [r.service.key for r in self.resources]

    def token_refusal(self, now: datetime) -> str | None:
        """Why no token can be issued now, or None (the reasons are for the control API;
        Altinn itself answers every one with the same 403)."""
        if self.status is not A2Status.ACCEPTED:
            return f"status {self.status.value}"
        if self.valid_to <= now:
            return "expired"
        for flag in ("discarded", "revoked", "used"):
            if getattr(self, flag):
                return flag
        return None


def party_urn(party: str) -> str:
    return (PERSON_URN if len(party) == 11 else ORG_URN) + party


class Altinn2State:
    def __init__(self, *, parties: PartyRegistry, clock: Clock, register: ConsentRegister) -> None:
        self.parties = parties
        self.clock = clock
        self.register = register  # the Altinn 3 register, for migrated consents
        self._requests: dict[uuid.UUID, A2Request] = {}
        self.tokens_issued = 0
        self._faults: list[int] = []  # statuses for the next API calls, oldest first

    def fail_next(self, status: int, *, count: int = 1) -> None:
        """The next ``count`` API calls (not the page, not the keys) answer ``status``."""
        self._faults.extend([status] * count)

    def take_fault(self) -> int | None:
        return self._faults.pop(0) if self._faults else None

    def add(self, request: A2Request) -> None:
        self._requests[request.code] = request

    def get(self, code: uuid.UUID | str) -> A2Request | None:
        """The request, or None for an unknown code or one the consumer withdrew."""
        try:
            key = code if isinstance(code, uuid.UUID) else uuid.UUID(code)
        except ValueError:
            return None
        found = self._requests.get(key)
        return None if found is None or found.withdrawn else found

    def requests(self) -> list[A2Request]:
        return sorted(self._requests.values(), key=lambda r: r.created)

    def clear(self) -> None:
        self._requests.clear()
        self._faults.clear()
        self.tokens_issued = 0

    def _known(self, code: uuid.UUID | str) -> A2Request:
        found = self.get(code)
        if found is None:
            raise Altinn2ActionError(404, "no such consent request")
        return found

    def may_answer(self, request: A2Request, fnr: str) -> bool:
        """A seeded person who may act for ``OfferedBy`` (or is it), and the required delegator
        when one is set; Altinn does not check the delegator's rights beyond that (§2.1)."""
        if self.parties.person(fnr) is None:
            return False
        if request.required_delegator is not None and request.required_delegator != fnr:
            return False
        if len(request.offered_by) == 11:
            return request.offered_by == fnr
        return self.parties.may_act_for(fnr, request.offered_by)

    def open(self, code: uuid.UUID | str) -> A2Request:
        """The person views the request: ``Unopened`` → ``Opened``."""
        request = self._known(code)
        if request.status is A2Status.UNOPENED:
            request.status = A2Status.OPENED
            request.last_changed = self.clock.now()
        return request

    def answer(self, code: uuid.UUID | str, fnr: str, *, accept: bool) -> A2Request:
        request = self._known(code)
        if not self.may_answer(request, fnr):
            raise Altinn2ActionError(403, "the person may not answer this request")
        if request.status not in _OPEN:
            raise Altinn2ActionError(409, f"the request is {request.status.value.lower()}")
        now = self.clock.now()
        if request.valid_to <= now:
            raise Altinn2ActionError(409, "the request has expired")
        request.status = A2Status.ACCEPTED if accept else A2Status.REJECTED
        request.last_changed = now
        request.answered_by = fnr
        if accept:
            request.delegated = now
        return request

    def withdraw(self, code: uuid.UUID | str) -> A2Request:
        """``DELETE /api/consentRequests/{code}``: only while unanswered (§2.1, §4.1)."""
        request = self._known(code)
        if request.status not in _OPEN:
            raise Altinn2ActionError(400, "only an unanswered request can be withdrawn")
        request.withdrawn = True
        return request

    def discard(self, code: uuid.UUID | str) -> A2Request:
        """``DELETE /api/authorization/token/{code}``: the consumer gives up the rights."""
        request = self._known(code)
        if request.token_refusal(self.clock.now()) is not None:
            raise Altinn2ActionError(403, "nothing to discard")
        request.discarded = True
        return request

    def revoke(self, code: uuid.UUID | str) -> A2Request:
        """The end user withdraws the consent in the portal ("Se/trekk samtykke", §4.1)."""
        request = self._known(code)
        if request.status is not A2Status.ACCEPTED:
            raise Altinn2ActionError(409, "only an accepted consent can be revoked")
        if any(r.service.one_time for r in request.resources):
            raise Altinn2ActionError(409, "a one-time consent cannot be withdrawn")  # A2-TREKK
        request.revoked = True
        return request

    def expire(self, code: uuid.UUID | str) -> A2Request:
        request = self._known(code)
        now = self.clock.now()
        if request.valid_to >= now:
            request.valid_to = now - timedelta(seconds=1)
        return request

    def log_use(self, request: A2Request, service: ConsentService, at: datetime) -> None:
        request.usage.append((service.key, at))
        if service.one_time:
            request.used = True

    def migrate(self, code: uuid.UUID | str) -> ConsentRecord:
        """Copy an accepted consent into the Altinn 3 register as Digdir's migration did: the
        AuthorizationCode becomes the id, the resource ``{org}_{code}_{edition}``, and the
        metadata keys are lower-cased (``altinn-consent.md`` §3.2, §6.5)."""
        request = self._known(code)
        reason = request.token_refusal(self.clock.now())
        if reason is not None:
            raise Altinn2ActionError(409, f"only a valid accepted consent migrates ({reason})")
        existing = self.register.get(request.code)
        if existing is not None:
            return existing
        record = ConsentRecord(
            id=request.code,
            from_party=party_urn(request.offered_by),
            to_party=ORG_URN + request.covered_by,
            handled_by=None if request.handled_by is None else ORG_URN + request.handled_by,
            required_delegator=None
            if request.required_delegator is None
            else PERSON_URN + request.required_delegator,
            valid_to=request.valid_to,
            consent_rights=[
                {
                    "action": ["consent"],
                    "resource": [
                        {"type": "urn:altinn:resource", "value": r.service.migrated_resource}
                    ],
                    "metadata": {k.lower(): v for k, v in r.metadata.items()},
                }
                for r in request.resources
            ],
            request_message=request.request_message,
            redirect_url=request.redirect_url,
            portal_view_mode=request.portal_view_mode.lower(),
            created=request.created,
        )
        self.register.add(record, performed_by=ORG_URN + request.covered_by)
        answered_by = None if request.answered_by is None else PERSON_URN + request.answered_by
        self.register.set_status(
            record,
            ConsentStatus.ACCEPTED,
            at=request.delegated or request.created,
            performed_by=answered_by,
        )
        return record
