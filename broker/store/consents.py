"""Consent requests and grants in SQL (``consent.ports.ConsentStore``). Never commits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.admin.ports import SearchCursor, SearchFilters
from broker.consent.model import (
    ConsentRequest,
    Generation,
    Grant,
    Language,
    RevokedBy,
    State,
)
from broker.consent.ports import DuplicateKey, PageCursor
from broker.crypto import Cipher
from broker.store.models import ConsentGrant
from broker.store.models import ConsentRequest as Row

__all__ = ["SqlConsentStore", "code_aad", "code_sha256", "receipt_aad"]

_OPEN = (State.PENDING.value, State.REDIRECTED.value)
# Withdrawals the broker itself decided: the client's cancel, an administrator's revocation.
_WITHDRAWN = (State.CANCELLED.value, State.REVOKED.value)
_WITHDRAWN_BY = (RevokedBy.CLIENT.value, RevokedBy.ADMIN.value)


def receipt_aad(grant_id: uuid.UUID, client_id: uuid.UUID) -> str:
    return f"consent_grants.receipt:{grant_id}:{client_id}"


def code_aad(request_id: uuid.UUID, client_id: uuid.UUID) -> str:
    return f"consent_requests.altinn_code:{request_id}:{client_id}"


def code_sha256(code: uuid.UUID) -> str:
    return hashlib.sha256(str(code).encode()).hexdigest()


class SqlConsentStore:
    def __init__(self, session: AsyncSession, cipher: Cipher) -> None:
        self._session = session
        self._cipher = cipher

    async def add(self, request: ConsentRequest) -> None:
        self._session.add(_to_row(request))
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise DuplicateKey("consent request") from exc

    async def get(
        self, request_id: uuid.UUID, *, client_id: uuid.UUID | None
    ) -> ConsentRequest | None:
        query = _with_grant().where(Row.id == request_id)
        if client_id is not None:
            query = query.where(Row.client_id == client_id)
        return await self._one(query)

    async def by_idempotency_key(self, client_id: uuid.UUID, key: str) -> ConsentRequest | None:
        query = _with_grant().where(Row.client_id == client_id, Row.idempotency_key == key)
        return await self._one(query)

    async def set_altinn_id(self, request_id: uuid.UUID, altinn_id: uuid.UUID) -> None:
        await self._session.execute(
            update(Row)
            .where(Row.id == request_id, Row.altinn_consent_id.is_(None))
            .values(altinn_consent_id=altinn_id)
        )

    async def set_altinn_code(self, request_id: uuid.UUID, code: uuid.UUID) -> bool:
        client_id = (
            await self._session.execute(select(Row.client_id).where(Row.id == request_id))
        ).scalar_one_or_none()
        if client_id is None:
            raise ValueError("no such consent request")
        sealed, key_id = self._cipher.encrypt(
            str(code).encode(), aad=code_aad(request_id, client_id)
        )
        try:
            # Compare-and-set: of two starts that raced to Altinn, one code is kept.
            result = await self._session.execute(
                update(Row)
                .where(
                    Row.id == request_id,
                    Row.altinn_code_ciphertext.is_(None),
                    Row.altinn_consent_id.is_(None),
                )
                .values(
                    altinn_code_ciphertext=sealed,
                    altinn_code_key_id=key_id,
                    altinn_code_sha256=code_sha256(code),
                )
            )
        except IntegrityError as exc:
            raise DuplicateKey("altinn code") from exc
        return _changed(result)

    async def has_altinn_code(self, code: uuid.UUID) -> bool:
        query = select(Row.id).where(Row.altinn_code_sha256 == code_sha256(code))
        return (await self._session.execute(query)).first() is not None

    async def mark_withdrawn(self, request_id: uuid.UUID, *, at: datetime) -> None:
        await self._session.execute(
            update(Row)
            .where(Row.id == request_id, Row.altinn_withdrawn_at.is_(None))
            .values(altinn_withdrawn_at=at)
        )

    async def withdrawals_due(self, *, limit: int) -> list[ConsentRequest]:
        query = _with_grant().where(
            Row.altinn_generation == Generation.ALTINN2.value,
            Row.altinn_code_ciphertext.is_not(None),
            Row.altinn_withdrawn_at.is_(None),
            Row.state.in_(_WITHDRAWN),
            Row.state_reason.in_(_WITHDRAWN_BY),
        )
        return await self._after(query, None, limit)

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
        values: dict[str, object] = {"state": to.value, "state_reason": reason, "updated_at": at}
        if valid_to is not None:
            values["valid_to"] = valid_to
        if to is State.REDIRECTED:
            values["redirected_at"] = at
        result = await self._session.execute(
            update(Row).where(Row.id == request_id, Row.state == expected.value).values(**values)
        )
        return _changed(result)

    async def touch_redirect(self, request_id: uuid.UUID, *, at: datetime) -> None:
        await self._session.execute(
            update(Row).where(Row.id == request_id).values(redirected_at=at)
        )

    async def claim_return(self, request_id: uuid.UUID, *, at: datetime) -> bool:
        result = await self._session.execute(
            update(Row)
            .where(Row.id == request_id, Row.state.in_(_OPEN), Row.returned_at.is_(None))
            .values(returned_at=at)
        )
        return _changed(result)

    async def release_return(self, request_id: uuid.UUID) -> None:
        await self._session.execute(
            update(Row).where(Row.id == request_id).values(returned_at=None)
        )

    async def add_grant(self, request: ConsentRequest, grant: Grant, *, receipt: bytes) -> None:
        grant_id = uuid.uuid4()
        sealed, key_id = self._cipher.encrypt(receipt, aad=receipt_aad(grant_id, request.client_id))
        self._session.add(
            ConsentGrant(
                id=grant_id,
                consent_request_id=request.id,
                consented_at=grant.consented_at,
                valid_to=grant.valid_to,
                receipt_ciphertext=sealed,
                receipt_key_id=key_id,
                created_at=grant.consented_at,
            )
        )
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise DuplicateKey("grant") from exc

    async def end_grant(
        self, request_id: uuid.UUID, *, at: datetime, by: RevokedBy | None, reason: str | None
    ) -> None:
        await self._session.execute(
            update(ConsentGrant)
            .where(ConsentGrant.consent_request_id == request_id, ConsentGrant.revoked_at.is_(None))
            .values(revoked_at=at, revoked_by=by.value if by else None, revoked_reason=reason)
        )

    async def receipt(self, request_id: uuid.UUID) -> bytes | None:
        """The decrypted receipt (the consent token kept as proof), for audits and exports."""
        query = (
            select(ConsentGrant, Row.client_id)
            .join(Row, Row.id == ConsentGrant.consent_request_id)
            .where(ConsentGrant.consent_request_id == request_id)
        )
        found = (await self._session.execute(query)).one_or_none()
        if found is None:
            return None
        grant, client_id = found
        if grant.receipt_ciphertext is None:
            return None
        return self._cipher.decrypt(
            grant.receipt_ciphertext,
            key_id=grant.receipt_key_id or "",
            aad=receipt_aad(grant.id, client_id),
        )

    async def page(
        self,
        client_id: uuid.UUID,
        *,
        state: State | None,
        changed_after: datetime | None,
        after: PageCursor | None,
        limit: int,
    ) -> list[ConsentRequest]:
        query = _with_grant().where(Row.client_id == client_id)
        if state is not None:
            query = query.where(Row.state == state.value)
        if changed_after is not None:
            query = query.where(Row.updated_at > changed_after)
        return await self._after(query, after, limit)

    async def open_requests(
        self, *, limit: int, after: PageCursor | None = None
    ) -> list[ConsentRequest]:
        query = _with_grant().where(Row.state.in_(_OPEN))
        return await self._after(query, after, limit)

    async def by_altinn_id(self, altinn_id: uuid.UUID) -> ConsentRequest | None:
        return await self._one(_with_grant().where(Row.altinn_consent_id == altinn_id))

    async def granted_requestors(self) -> list[str]:
        query = (
            select(Row.requestor_org)
            .where(Row.state == State.GRANTED.value)
            .distinct()
            .order_by(Row.requestor_org)
        )
        return list((await self._session.execute(query)).scalars())

    async def due_grants(self, *, now: datetime, limit: int) -> list[ConsentRequest]:
        # ix_consent_requests_state_valid_to serves this.
        query = (
            _with_grant()
            .where(Row.state == State.GRANTED.value, Row.valid_to <= now)
            .order_by(Row.valid_to, Row.id)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        return [self._request(row) for row in rows]

    async def search(
        self, filters: SearchFilters, *, before: SearchCursor | None, limit: int
    ) -> list[ConsentRequest]:
        """The admin search, newest first (ix_consent_requests_created_at), keyset-paged."""
        query = _with_grant()
        if filters.request_id is not None:
            query = query.where(
                or_(Row.id == filters.request_id, Row.altinn_consent_id == filters.request_id)
            )
        for column, value in (
            (Row.subject_org, filters.subject),
            (Row.requestor_org, filters.requestor),
            (Row.client_id, filters.client_id),
            (Row.state, filters.state.value if filters.state else None),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.created_from is not None:
            query = query.where(Row.created_at >= filters.created_from)
        if filters.created_to is not None:
            query = query.where(Row.created_at < filters.created_to)
        if before is not None:
            query = query.where(
                or_(
                    Row.created_at < before.created_at,
                    and_(Row.created_at == before.created_at, Row.id < before.id),
                )
            )
        query = query.order_by(Row.created_at.desc(), Row.id.desc()).limit(limit)
        rows = (await self._session.execute(query)).all()
        return [self._request(row) for row in rows]

    async def _after(
        self, query: Select[*tuple[Any, ...]], after: PageCursor | None, limit: int
    ) -> list[ConsentRequest]:
        """``query``'s rows in (updated_at, id) order, after the cursor (keyset pagination)."""
        if after is not None:
            query = query.where(
                or_(
                    Row.updated_at > after.updated_at,
                    and_(Row.updated_at == after.updated_at, Row.id > after.id),
                )
            )
        query = query.order_by(Row.updated_at, Row.id).limit(limit)
        rows = (await self._session.execute(query)).all()
        return [self._request(row) for row in rows]

    async def _one(self, query: Select[*tuple[Any, ...]]) -> ConsentRequest | None:
        found = (await self._session.execute(query)).one_or_none()
        return None if found is None else self._request(found)

    def _request(self, row: Any) -> ConsentRequest:
        """A request from a row of ``_with_grant``'s columns, its Altinn 2 code decrypted."""
        request = _from_row(row)
        if row.altinn_code_ciphertext is None:
            return request
        # Altinn 2's code is decrypted as the row is read: it is bound to this row (AAD),
        # so a ciphertext copied into another row fails here rather than being used.
        plain = self._cipher.decrypt(
            row.altinn_code_ciphertext,
            key_id=row.altinn_code_key_id or "",
            aad=code_aad(row.id, row.client_id),
        )
        return replace(request, altinn_consent_id=uuid.UUID(plain.decode()))


_REQUEST_COLUMNS = (
    Row.id,
    Row.client_id,
    Row.requestor_org,
    Row.subject_org,
    Row.resource,
    Row.reference,
    Row.external_reference,
    Row.language,
    Row.return_url,
    Row.state,
    Row.state_reason,
    Row.altinn_generation,
    Row.altinn_consent_id,
    Row.valid_to,
    Row.idempotency_key,
    Row.created_at,
    Row.updated_at,
    Row.redirected_at,
    Row.altinn_code_ciphertext,
    Row.altinn_code_key_id,
    Row.altinn_withdrawn_at,
)
_GRANT_COLUMNS = (
    ConsentGrant.id.label("grant_id"),
    ConsentGrant.consented_at.label("grant_consented_at"),
    ConsentGrant.valid_to.label("grant_valid_to"),
    ConsentGrant.revoked_at.label("grant_revoked_at"),
    ConsentGrant.revoked_by.label("grant_revoked_by"),
)


def _with_grant() -> Select[*tuple[Any, ...]]:
    # One round trip: the request and (if any) its grant, as plain columns. Not ORM entities:
    # this is the relay's hot path, and hydrating objects into the session costs more than the
    # query (performance.md §3.1); it also means every read is fresh from the database.
    return select(*_REQUEST_COLUMNS, *_GRANT_COLUMNS).outerjoin(
        ConsentGrant, ConsentGrant.consent_request_id == Row.id
    )


def _changed(result: object) -> bool:
    rowcount = getattr(result, "rowcount", 0)
    return isinstance(rowcount, int) and rowcount == 1


def _grant(row: Any) -> Grant | None:
    if row.grant_id is None:
        return None
    return Grant(
        consented_at=row.grant_consented_at,
        valid_to=row.grant_valid_to,
        revoked_at=row.grant_revoked_at,
        revoked_by=RevokedBy(row.grant_revoked_by) if row.grant_revoked_by else None,
    )


def _to_row(request: ConsentRequest) -> Row:
    return Row(
        id=request.id,
        client_id=request.client_id,
        requestor_org=request.requestor_org,
        subject_org=request.subject_org,
        resource=request.resource,
        reference=request.reference,
        external_reference=request.external_reference,
        language=request.language.value,
        return_url=request.return_url,
        state=request.state.value,
        state_reason=request.state_reason,
        altinn_generation=request.generation.value,
        altinn_consent_id=request.altinn_consent_id,
        valid_to=request.valid_to,
        idempotency_key=request.idempotency_key,
        created_at=request.created_at,
        updated_at=request.updated_at,
    )


def _from_row(row: Any) -> ConsentRequest:
    """A request from a row of ``_with_grant``'s columns (an Altinn 2 code still sealed: see
    ``SqlConsentStore._request``, which every read goes through)."""
    return ConsentRequest(
        id=row.id,
        client_id=row.client_id,
        requestor_org=row.requestor_org,
        subject_org=row.subject_org,
        resource=row.resource,
        reference=row.reference,
        external_reference=row.external_reference,
        language=Language(row.language),
        return_url=row.return_url,
        state=State(row.state),
        state_reason=row.state_reason,
        generation=Generation(row.altinn_generation),
        altinn_consent_id=row.altinn_consent_id,
        valid_to=row.valid_to,
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        updated_at=row.updated_at,
        grant=_grant(row),
        redirected_at=row.redirected_at,
        altinn_withdrawn_at=row.altinn_withdrawn_at,
    )
