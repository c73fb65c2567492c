"""The client's webhook use cases: its endpoint, signing secrets, deliveries and redelivery.

A client has at most one endpoint. ``PUT`` registers it (answering once with its first
``whsec_`` secret) or changes its URL and whether it is enabled; the URL is checked against the
SSRF rules (``ssrf.py``) every time. A rotation adds a new secret and lets the old ones sign
for an overlap (both signatures are sent meanwhile). Deliveries are listed newest first; one
can be queued again by hand with its original ``webhook-id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from broker.consent.model import Caller
from broker.consent.ports import DuplicateKey
from broker.errors import Conflict, NotFound, ValidationFailed
from broker.webhooks.ports import Endpoint, WebhookUnit
from broker.webhooks.schemas import (
    DELIVERY_STATUSES,
    FieldError,
    Invalid,
    attempt_json,
    delivery_json,
    endpoint_json,
    parse_endpoint,
    parse_overlap,
    parse_uuid,
)
from broker.webhooks.signing import new_secret
from broker.webhooks.ssrf import UrlPolicy, UrlRefused

__all__ = ["WebhookService"]


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed(
        "The request is not valid; see errors",
        extensions={"errors": [{"field": e.field, "message": e.message} for e in errors]},
    )


class WebhookService:
    def __init__(
        self,
        units: Callable[[], WebhookUnit],
        *,
        url_policy: UrlPolicy,
        secret_overlap: int,
        now: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._wake = wake or (lambda: None)
        self._units = units
        self._policy = url_policy
        self._overlap = secret_overlap
        self._now = now

    async def endpoint(self, caller: Caller) -> dict[str, Any]:
        async with self._units() as uow:
            endpoint = await self._endpoint(uow, caller)
            secrets = await uow.webhooks.secrets(endpoint.id, now=self._now())
        return endpoint_json(endpoint, secrets)

    async def put_endpoint(self, caller: Caller, body: Any) -> tuple[int, dict[str, Any]]:
        try:
            wanted = parse_endpoint(body)
        except Invalid as exc:
            raise _invalid(exc.errors) from None
        try:
            await self._policy.check(wanted.url)
        except UrlRefused as exc:
            raise _invalid([FieldError("url", str(exc))]) from None
        try:
            return await self._put(caller, wanted.url, wanted.enabled)
        except DuplicateKey:
            # Two first PUTs at once: the other registered it; this one is now an update.
            return await self._put(caller, wanted.url, wanted.enabled)

    async def _put(self, caller: Caller, url: str, enabled: bool) -> tuple[int, dict[str, Any]]:
        now = self._now()
        async with self._units() as uow:
            current = await uow.webhooks.endpoint(caller.client_id)
            secret = None
            if current is None:
                created = await uow.webhooks.create_endpoint(
                    caller.client_id, url=url, enabled=enabled, at=now
                )
                secret = new_secret()
                await uow.webhooks.add_secret(created.id, secret, at=now)
            else:
                await uow.webhooks.update_endpoint(current.id, url=url, enabled=enabled, at=now)
            endpoint = await self._endpoint(uow, caller)
            secrets = await uow.webhooks.secrets(endpoint.id, now=now)
            await uow.commit()
        rendered = endpoint_json(endpoint, secrets)
        if secret is None:
            return 200, rendered
        return 201, {**rendered, "secret": secret}

    async def rotate_secret(self, caller: Caller, body: Any) -> dict[str, Any]:
        try:
            overlap = parse_overlap(body, default=self._overlap)
        except Invalid as exc:
            raise _invalid(exc.errors) from None
        now = self._now()
        secret = new_secret()
        async with self._units() as uow:
            endpoint = await self._endpoint(uow, caller)
            until = now + timedelta(seconds=overlap)
            await uow.webhooks.retire_secrets(endpoint.id, at=now, until=until)
            await uow.webhooks.add_secret(endpoint.id, secret, at=now)
            secrets = await uow.webhooks.secrets(endpoint.id, now=now)
            await uow.commit()
        return {**endpoint_json(endpoint, secrets), "secret": secret}

    async def deliveries(
        self,
        caller: Caller,
        *,
        status: str | None,
        consent_request: str | None,
        cursor: str | None,
        limit: str | None,
    ) -> dict[str, Any]:
        errors = []
        if status is not None and status not in DELIVERY_STATUSES:
            errors.append(FieldError("status", f"must be one of {', '.join(DELIVERY_STATUSES)}"))
        size = 50
        if limit is not None:
            if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 100:
                errors.append(FieldError("limit", "must be an integer from 1 to 100"))
            else:
                size = int(limit)
        try:
            request_id = parse_uuid(consent_request, "consent_request")
        except Invalid as exc:
            errors.extend(exc.errors)
            request_id = None
        try:
            before = parse_uuid(cursor, "cursor")
        except Invalid as exc:
            errors.extend(exc.errors)
            before = None
        if errors:
            raise _invalid(errors)
        async with self._units() as uow:
            items = await uow.webhooks.deliveries(
                caller.client_id,
                status=status,
                consent_request_id=request_id,
                before=before,
                limit=size + 1,
            )
        more = len(items) > size
        items = items[:size]
        return {
            "items": [delivery_json(item) for item in items],
            "next_cursor": str(items[-1].id) if more else None,
        }

    async def delivery(self, caller: Caller, event_id: str) -> dict[str, Any]:
        parsed = _event_id(event_id)
        async with self._units() as uow:
            found = await uow.webhooks.delivery(caller.client_id, parsed)
            if found is None:
                raise NotFound("No such webhook delivery")
            attempts = await uow.webhooks.attempts(parsed)
        return {**delivery_json(found), "history": [attempt_json(a) for a in attempts]}

    async def redeliver(self, caller: Caller, event_id: str) -> dict[str, Any]:
        parsed = _event_id(event_id)
        async with self._units() as uow:
            if await uow.webhooks.delivery(caller.client_id, parsed) is None:
                raise NotFound("No such webhook delivery")
            endpoint = await self._endpoint(uow, caller)
            if not endpoint.enabled:
                raise Conflict(
                    "The webhook endpoint is disabled; enable it first (PUT)",
                    code="endpoint_disabled",
                )
            await uow.webhooks.redeliver(caller.client_id, parsed, at=self._now())
            found = await uow.webhooks.delivery(caller.client_id, parsed)
            await uow.commit()
        self._wake()
        assert found is not None
        return delivery_json(found)

    @staticmethod
    async def _endpoint(uow: WebhookUnit, caller: Caller) -> Endpoint:
        endpoint = await uow.webhooks.endpoint(caller.client_id)
        if endpoint is None:
            raise NotFound("No webhook endpoint is registered; register one with PUT")
        return endpoint


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("No such webhook delivery") from None
