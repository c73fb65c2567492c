"""The operators' use cases on clients (procurement systems): register them, edit their return
URLs, switch them off and on, choose their Altinn generation, issue and revoke API keys, and
manage their webhook endpoint (URL, secret rotation, deliveries, redelivery).

Each change is one transaction with its audit row. Keys and webhook secrets are shown once, in
the answer that makes them. Revoking a key or disabling a client also tells this process's
authentication to forget what it remembered about the client (``forget_client``), so the key
stops working at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker.admin.auth import Actor
from broker.admin.ports import AdminUnit, ClientDetails, KeyInfo
from broker.admin.schemas import parse_return_urls
from broker.clients.keys import hash_key, new_key
from broker.consent.identifiers import is_valid_orgnr
from broker.consent.model import Generation
from broker.consent.return_urls import InvalidReturnUrl, normalise
from broker.errors import Conflict, NotFound, ValidationFailed
from broker.webhooks.ports import Delivery, Endpoint, SecretInfo
from broker.webhooks.schemas import DELIVERY_STATUSES, Invalid, parse_endpoint, parse_overlap
from broker.webhooks.signing import new_secret
from broker.webhooks.ssrf import UrlPolicy, UrlRefused

__all__ = ["ClientAdmin", "ClientView", "Issued"]

OBJECT = "client"


@dataclass(frozen=True)
class ClientView:
    client: ClientDetails
    keys: list[KeyInfo]
    endpoint: Endpoint | None
    secrets: list[SecretInfo]
    deliveries: list[Delivery]


@dataclass(frozen=True)
class Issued:
    """A secret made just now (an API key or a ``whsec_`` secret): shown once, never again."""

    client_id: uuid.UUID
    kind: str  # "api_key" or "webhook_secret"
    value: str
    prefix: str | None = None

    def __repr__(self) -> str:
        return f"Issued(client_id={self.client_id!s}, kind={self.kind!r}, prefix={self.prefix!r})"


def _field_errors(errors: list[tuple[str, str]]) -> ValidationFailed:
    return ValidationFailed(
        "The request is not valid; see errors",
        extensions={"errors": [{"field": f, "message": m} for f, m in errors]},
    )


class ClientAdmin:
    def __init__(
        self,
        units: Callable[[], AdminUnit],
        *,
        pepper: bytes,
        url_policy: UrlPolicy,
        secret_overlap: int,
        now: Callable[[], datetime],
        forget_client: Callable[[uuid.UUID], None],
        wake: Callable[[], None],
    ) -> None:
        self._units = units
        self._pepper = pepper
        self._policy = url_policy
        self._overlap = secret_overlap
        self._now = now
        self._forget = forget_client
        self._wake = wake

    async def view(self, client_id: str, *, status: str | None = None) -> ClientView:
        parsed = _parse_id(client_id)
        async with self._units() as uow:
            client = await _client(uow, parsed)
            keys = await uow.clients.keys(parsed)
            endpoint = await uow.webhooks.endpoint(parsed)
            secrets = await uow.webhooks.secrets(endpoint.id, now=self._now()) if endpoint else []
            deliveries = await uow.webhooks.deliveries(
                parsed,
                status=status if status in DELIVERY_STATUSES else None,
                consent_request_id=None,
                before=None,
                limit=50,
            )
        return ClientView(client, keys, endpoint, secrets, deliveries)

    async def create(
        self,
        actor: Actor,
        *,
        name: str,
        org_number: str,
        return_urls: Any,
        correlation_id: str | None,
    ) -> ClientDetails:
        actor.require_admin()
        errors: list[tuple[str, str]] = []
        name = " ".join(name.split())
        if not 1 <= len(name) <= 200:
            errors.append(("name", "must be 1-200 characters"))
        org_number = org_number.strip()
        if not is_valid_orgnr(org_number):
            errors.append(("org_number", "must be a valid 9-digit organisation number"))
        urls = _urls(return_urls, errors)
        if errors:
            raise _field_errors(errors)
        now = self._now()
        async with self._units() as uow:
            client_id = await uow.clients.create(
                name=name, org_number=org_number, return_urls=urls, at=now
            )
            await uow.audit.append(
                actor.audit(
                    "client.created",
                    OBJECT,
                    str(client_id),
                    client_id=client_id,
                    correlation_id=correlation_id,
                    details={"name": name, "org_number": org_number, "return_urls": list(urls)},
                ),
                at=now,
            )
            created = await _client(uow, client_id)
            await uow.commit()
        return created

    async def set_return_urls(
        self, actor: Actor, client_id: str, return_urls: Any, *, correlation_id: str | None
    ) -> ClientDetails:
        actor.require_admin()
        errors: list[tuple[str, str]] = []
        urls = _urls(return_urls, errors)
        if errors:
            raise _field_errors(errors)
        parsed, now = _parse_id(client_id), self._now()
        async with self._units() as uow:
            before = await _client(uow, parsed)
            await uow.clients.set_return_urls(parsed, urls, at=now)
            await uow.audit.append(
                actor.audit(
                    "client.return_urls_set",
                    OBJECT,
                    str(parsed),
                    client_id=parsed,
                    correlation_id=correlation_id,
                    details={"before": list(before.return_urls), "after": list(urls)},
                ),
                at=now,
            )
            updated = await _client(uow, parsed)
            await uow.commit()
        # The remembered callers carry the old URLs.
        self._forget(parsed)
        return updated

    async def set_active(
        self, actor: Actor, client_id: str, active: bool, *, reason: str, correlation_id: str | None
    ) -> ClientDetails:
        actor.require_admin()
        parsed, now = _parse_id(client_id), self._now()
        async with self._units() as uow:
            await _client(uow, parsed)
            await uow.clients.set_active(parsed, active, at=now)
            await uow.audit.append(
                actor.audit(
                    "client.enabled" if active else "client.disabled",
                    OBJECT,
                    str(parsed),
                    client_id=parsed,
                    reason=reason,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            updated = await _client(uow, parsed)
            await uow.commit()
        self._forget(parsed)
        return updated

    async def set_generation(
        self, actor: Actor, client_id: str, generation: str, *, correlation_id: str | None
    ) -> int:
        """The Altinn generation of a client's (with ``all``, every client's) new consent
        requests; requests already made keep theirs. How many clients changed."""
        actor.require_admin()
        try:
            chosen = Generation(generation)
        except ValueError:
            raise _field_errors([("generation", "altinn3 or altinn2")]) from None
        target = None if client_id == "all" else _parse_id(client_id)
        now = self._now()
        async with self._units() as uow:
            if target is not None:
                await _client(uow, target)
            changed = await uow.clients.set_generation(target, chosen, at=now)
            await uow.audit.append(
                actor.audit(
                    "client.generation_changed",
                    OBJECT,
                    str(target) if target else "all",
                    client_id=target,
                    correlation_id=correlation_id,
                    details={"generation": chosen.value, "clients": changed},
                ),
                at=now,
            )
            await uow.commit()
        return changed

    async def issue_key(
        self,
        actor: Actor,
        client_id: str,
        *,
        label: str | None,
        correlation_id: str | None,
        revoke_others: bool = False,
    ) -> Issued:
        """A new API key; with ``revoke_others`` (a rotation after a leak) every other active
        key of the client stops working in the same transaction."""
        actor.require_admin()
        label = " ".join((label or "").split())[:200] or None
        parsed, now, key = _parse_id(client_id), self._now(), new_key()
        async with self._units() as uow:
            await _client(uow, parsed)
            revoked = []
            if revoke_others:
                for old in await uow.clients.keys(parsed):
                    if old.revoked_at is None and await uow.clients.revoke_key(
                        parsed, old.prefix, at=now
                    ):
                        revoked.append(old.prefix)
            await uow.clients.add_key(
                parsed, prefix=key.prefix, key_hash=hash_key(key, self._pepper), label=label, at=now
            )
            await uow.audit.append(
                actor.audit(
                    "api_key.rotated" if revoke_others else "api_key.issued",
                    "api_key",
                    key.prefix,
                    client_id=parsed,
                    correlation_id=correlation_id,
                    details={"label": label, "revoked": revoked},
                ),
                at=now,
            )
            await uow.commit()
        if revoke_others:
            self._forget(parsed)
        return Issued(parsed, "api_key", key.value, key.prefix)

    async def revoke_key(
        self, actor: Actor, client_id: str, prefix: str, *, correlation_id: str | None
    ) -> None:
        actor.require_admin()
        parsed, now = _parse_id(client_id), self._now()
        async with self._units() as uow:
            await _client(uow, parsed)
            if not await uow.clients.revoke_key(parsed, prefix, at=now):
                raise NotFound("No such active API key for this client")
            await uow.audit.append(
                actor.audit(
                    "api_key.revoked",
                    "api_key",
                    prefix,
                    client_id=parsed,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            await uow.commit()
        self._forget(parsed)

    async def set_webhook(
        self,
        actor: Actor,
        client_id: str,
        *,
        url: str,
        enabled: bool,
        correlation_id: str | None,
    ) -> Issued | None:
        """Register the client's endpoint (returning its first secret) or change it."""
        actor.require_admin()
        try:
            wanted = parse_endpoint({"url": url.strip(), "enabled": enabled})
            await self._policy.check(wanted.url)
        except Invalid as exc:
            raise _field_errors([(e.field, e.message) for e in exc.errors]) from None
        except UrlRefused as exc:
            raise _field_errors([("url", str(exc))]) from None
        parsed, now = _parse_id(client_id), self._now()
        async with self._units() as uow:
            await _client(uow, parsed)
            current = await uow.webhooks.endpoint(parsed)
            secret = None
            if current is None:
                created = await uow.webhooks.create_endpoint(
                    parsed, url=wanted.url, enabled=wanted.enabled, at=now
                )
                secret = new_secret()
                await uow.webhooks.add_secret(created.id, secret, at=now)
            else:
                await uow.webhooks.update_endpoint(
                    current.id, url=wanted.url, enabled=wanted.enabled, at=now
                )
            await uow.audit.append(
                actor.audit(
                    "webhook_endpoint.set",
                    "webhook_endpoint",
                    str(parsed),
                    client_id=parsed,
                    correlation_id=correlation_id,
                    details={
                        "url": wanted.url,
                        "enabled": wanted.enabled,
                        "before": current.url if current else None,
                    },
                ),
                at=now,
            )
            await uow.commit()
        return None if secret is None else Issued(parsed, "webhook_secret", secret)

    async def rotate_webhook_secret(
        self, actor: Actor, client_id: str, *, overlap: Any, correlation_id: str | None
    ) -> Issued:
        actor.require_admin()
        try:
            seconds = parse_overlap(
                {} if overlap in (None, "") else {"overlap_seconds": overlap}, default=self._overlap
            )
        except Invalid as exc:
            raise _field_errors([(e.field, e.message) for e in exc.errors]) from None
        parsed, now, secret = _parse_id(client_id), self._now(), new_secret()
        async with self._units() as uow:
            await _client(uow, parsed)
            endpoint = await uow.webhooks.endpoint(parsed)
            if endpoint is None:
                raise NotFound("The client has no webhook endpoint")
            await uow.webhooks.retire_secrets(
                endpoint.id, at=now, until=now + timedelta(seconds=seconds)
            )
            await uow.webhooks.add_secret(endpoint.id, secret, at=now)
            await uow.audit.append(
                actor.audit(
                    "webhook_secret.rotated",
                    "webhook_endpoint",
                    str(parsed),
                    client_id=parsed,
                    correlation_id=correlation_id,
                    details={"overlap_seconds": seconds},
                ),
                at=now,
            )
            await uow.commit()
        return Issued(parsed, "webhook_secret", secret)

    async def redeliver(
        self, actor: Actor, client_id: str, event_id: str, *, correlation_id: str | None
    ) -> None:
        actor.require_admin()
        parsed, now = _parse_id(client_id), self._now()
        event = _parse_id(event_id, what="webhook delivery")
        async with self._units() as uow:
            if await uow.webhooks.delivery(parsed, event) is None:
                raise NotFound("No such webhook delivery for this client")
            endpoint = await uow.webhooks.endpoint(parsed)
            if endpoint is None or not endpoint.enabled:
                raise Conflict(
                    "The webhook endpoint is disabled; enable it first", code="endpoint_disabled"
                )
            await uow.webhooks.redeliver(parsed, event, at=now)
            await uow.audit.append(
                actor.audit(
                    "webhook.redelivered",
                    "webhook_event",
                    str(event),
                    client_id=parsed,
                    correlation_id=correlation_id,
                ),
                at=now,
            )
            await uow.commit()
        self._wake()


def _urls(value: Any, errors: list[tuple[str, str]]) -> tuple[str, ...]:
    try:
        urls = parse_return_urls(value)
    except ValidationFailed:
        errors.append(("return_urls", "at least one URL is required"))
        return ()
    for url in urls:
        try:
            normalise(url)
        except InvalidReturnUrl as exc:
            errors.append(("return_urls", f"{url[:100]}: {exc}"))
    return urls


def _parse_id(value: str, *, what: str = "client") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No such {what}") from None


async def _client(uow: AdminUnit, client_id: uuid.UUID) -> ClientDetails:
    client = await uow.clients.details(client_id)
    if client is None:
        raise NotFound("No such client")
    return client
