"""In-memory fakes of the consent ports, for tests of the shell without a database or network."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from broker.consent.model import ConsentRequest, Grant, HistoryEntry, RevokedBy, State
from broker.consent.ports import (
    AltinnCreated,
    AltinnRequest,
    AltinnState,
    AuditRecord,
    ConsentToken,
    Notice,
    PageCursor,
    StoredResponse,
    UpstreamUnavailable,
)


@dataclass
class FakeStore:
    requests: dict[uuid.UUID, ConsentRequest] = field(default_factory=dict)
    receipts: dict[uuid.UUID, bytes] = field(default_factory=dict)
    claimed: set[uuid.UUID] = field(default_factory=set)

    async def add(self, request: ConsentRequest) -> None:
        self.requests[request.id] = request

    async def get(
        self, request_id: uuid.UUID, *, client_id: uuid.UUID | None
    ) -> ConsentRequest | None:
        found = self.requests.get(request_id)
        return found if found and client_id in (None, found.client_id) else None

    async def by_idempotency_key(self, client_id: uuid.UUID, key: str) -> ConsentRequest | None:
        return None

    async def set_altinn_id(self, request_id: uuid.UUID, altinn_id: uuid.UUID) -> None:
        self.requests[request_id] = replace(self.requests[request_id], altinn_consent_id=altinn_id)

    async def set_altinn_code(self, request_id: uuid.UUID, code: uuid.UUID) -> bool:
        if self.requests[request_id].altinn_consent_id is not None:
            return False
        await self.set_altinn_id(request_id, code)
        return True

    async def has_altinn_code(self, code: uuid.UUID) -> bool:
        return any(r.altinn_consent_id == code for r in self.requests.values())

    async def mark_withdrawn(self, request_id: uuid.UUID, *, at: datetime) -> None:
        self.requests[request_id] = replace(self.requests[request_id], altinn_withdrawn_at=at)

    async def withdrawals_due(self, *, limit: int) -> list[ConsentRequest]:
        return []

    async def move(
        self,
        request_id: uuid.UUID,
        *,
        expected: State,
        to: State,
        reason: str | None,
        at: datetime,
        valid_to: datetime | None = None,
    ) -> bool:
        current = self.requests[request_id]
        if current.state is not expected:
            return False
        self.requests[request_id] = replace(
            current,
            state=to,
            state_reason=reason,
            updated_at=at,
            valid_to=valid_to or current.valid_to,
        )
        return True

    async def touch_redirect(self, request_id: uuid.UUID, *, at: datetime) -> None:
        self.requests[request_id] = replace(self.requests[request_id], redirected_at=at)

    async def claim_return(self, request_id: uuid.UUID, *, at: datetime) -> bool:
        if request_id in self.claimed:
            return False
        self.claimed.add(request_id)
        return True

    async def release_return(self, request_id: uuid.UUID) -> None:
        self.claimed.discard(request_id)

    async def add_grant(self, request: ConsentRequest, grant: Grant, *, receipt: bytes) -> None:
        self.requests[request.id] = replace(self.requests[request.id], grant=grant)
        self.receipts[request.id] = receipt

    async def end_grant(
        self, request_id: uuid.UUID, *, at: datetime, by: RevokedBy | None, reason: str | None
    ) -> None:
        return None

    async def page(
        self,
        client_id: uuid.UUID,
        *,
        state: State | None,
        changed_after: datetime | None,
        after: PageCursor | None,
        limit: int,
    ) -> list[ConsentRequest]:
        return []

    async def open_requests(
        self, *, limit: int, after: PageCursor | None = None
    ) -> list[ConsentRequest]:
        return [r for r in self.requests.values() if r.state in (State.PENDING, State.REDIRECTED)]

    async def by_altinn_id(self, altinn_id: uuid.UUID) -> ConsentRequest | None:
        return next((r for r in self.requests.values() if r.altinn_consent_id == altinn_id), None)

    async def granted_requestors(self) -> list[str]:
        return sorted({r.requestor_org for r in self.requests.values() if r.state is State.GRANTED})

    async def due_grants(self, *, now: datetime, limit: int) -> list[ConsentRequest]:
        due = [r for r in self.requests.values() if r.state is State.GRANTED and r.valid_to <= now]
        return due[:limit]


@dataclass
class FakeAudit:
    records: list[AuditRecord] = field(default_factory=list)

    async def append(self, record: AuditRecord, *, at: datetime) -> None:
        self.records.append(record)

    async def history(self, object_type: str, object_id: str) -> list[HistoryEntry]:
        return []


class FakeIdempotency:
    async def get(self, client_id: uuid.UUID, key: str) -> StoredResponse | None:
        return None

    async def start(
        self,
        client_id: uuid.UUID,
        key: str,
        *,
        fingerprint: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        return None

    async def finish(
        self, client_id: uuid.UUID, key: str, *, status: int, body: Mapping[str, Any]
    ) -> None:
        return None


@dataclass
class FakeOutbox:
    notices: list[Notice] = field(default_factory=list)

    async def add(self, notice: Notice) -> None:
        self.notices.append(notice)


@dataclass
class FakeCursors:
    values: dict[str, str] = field(default_factory=dict)

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def put(self, name: str, value: str, *, at: datetime) -> None:
        self.values[name] = value


@dataclass
class FakeUnits:
    """One shared in-memory 'database'; commits are counted, nothing is ever rolled back."""

    consents: FakeStore = field(default_factory=FakeStore)
    audit: FakeAudit = field(default_factory=FakeAudit)
    idempotency: FakeIdempotency = field(default_factory=FakeIdempotency)
    outbox: FakeOutbox = field(default_factory=FakeOutbox)
    cursors: FakeCursors = field(default_factory=FakeCursors)
    commits: int = 0

    def __call__(self) -> FakeUnits:
        return self

    async def __aenter__(self) -> FakeUnits:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1


@dataclass
class FakeAltinn:
    state: AltinnState | None = None
    unavailable: bool = False
    created: list[AltinnRequest] = field(default_factory=list)

    async def create(self, request: AltinnRequest) -> AltinnCreated:
        self.created.append(request)
        assert request.id is not None
        return AltinnCreated(request.id, f"https://altinn.example/consent?id={request.id}")

    async def status(self, consent_id: uuid.UUID, *, requestor_org: str) -> AltinnState:
        if self.unavailable or self.state is None:
            raise UpstreamUnavailable("down")
        return self.state

    async def withdraw(self, consent_id: uuid.UUID, *, requestor_org: str, granted: bool) -> bool:
        return False


@dataclass
class FakeTokens:
    token: ConsentToken | None = None
    error: Exception | None = None
    calls: int = 0

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        self.calls += 1
        if self.error is not None:
            raise self.error
        assert self.token is not None
        return self.token
