"""Who is calling: API keys and Maskinporten bearer tokens, each mapped to one client.

A client (procurement system) authenticates either with an API key
(``Authorization: Bearer ebk_…``) or with a Maskinporten access token carrying the configured
scope. A token is mapped to a client by its ``supplier`` org when the token was issued to a
vendor acting for someone (delegation), else by its ``consumer`` org. Every failure gives the
same answer, so a caller cannot learn which part was wrong.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from broker.clients.keys import ApiKey, hash_key, new_key, parse_key
from broker.consent.model import Caller, Generation
from broker.consent.return_urls import InvalidReturnUrl, normalise
from broker.errors import Unauthenticated, ValidationFailed

__all__ = ["BearerVerifier", "ClientService", "InvalidBearer"]

logger = logging.getLogger("broker.clients")


class InvalidBearer(Exception):
    """The bearer token did not verify; the message is safe to log."""


class BearerVerifier(Protocol):
    async def __call__(self, token: str) -> Mapping[str, Any]:
        """Verified claims, or InvalidBearer."""
        ...


class _Client(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def org_number(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def return_urls(self) -> tuple[str, ...]: ...
    @property
    def generation(self) -> Generation: ...


class _Key(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def client_id(self) -> uuid.UUID: ...
    @property
    def key_hash(self) -> str: ...
    @property
    def revoked(self) -> bool: ...
    @property
    def last_used_at(self) -> datetime | None: ...


class _ClientStore(Protocol):
    async def create(
        self,
        *,
        name: str,
        org_number: str,
        return_urls: tuple[str, ...],
        at: datetime,
        generation: Generation = ...,
    ) -> uuid.UUID: ...

    async def set_generation(
        self, client_id: uuid.UUID | None, generation: Generation, *, at: datetime
    ) -> int: ...

    async def add_key(
        self, client_id: uuid.UUID, *, prefix: str, key_hash: str, label: str | None, at: datetime
    ) -> uuid.UUID: ...

    async def key_by_prefix(self, prefix: str) -> _Key | None: ...

    async def touch_key(self, key_id: uuid.UUID, *, at: datetime) -> None: ...

    async def revoke_key(self, client_id: uuid.UUID, prefix: str, *, at: datetime) -> bool: ...

    async def get(self, client_id: uuid.UUID) -> _Client | None: ...

    async def by_org(self, org_number: str) -> Sequence[_Client]: ...


class _Transaction(Protocol):
    @property
    def clients(self) -> _ClientStore: ...

    async def __aenter__(self) -> _Transaction: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...


_TOUCH_EVERY = timedelta(minutes=1)
_REFUSED = "A valid API key or Maskinporten token is required"
_CACHE_LIMIT = 10_000


class _KeyCache:
    """Verified API keys, remembered for a few seconds so that a relay is not also a database
    transaction for the caller's key. Only successes are kept (a new key works at once), under
    the key's keyed hash (a wrong secret with a known prefix never matches), bounded in size.
    A key or client revoked in this process is forgotten at once; other processes stop
    accepting it when the entry ends (BROKER_AUTH_CACHE_SECONDS, documented)."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self._seconds = seconds
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= self._monotonic():
            del self._entries[key_hash]
            return None
        return entry[1]

    def put(self, key_hash: str, caller: Caller) -> None:
        if self._seconds <= 0:
            return
        now = self._monotonic()
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
        self._entries[key_hash] = (now + self._seconds, caller)

    def forget_client(self, client_id: uuid.UUID) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[1].client_id != client_id}

    def __len__(self) -> int:
        return len(self._entries)


class ClientService:
    def __init__(
        self,
        transactions: Callable[[], _Transaction],
        *,
        pepper: bytes,
        verify_bearer: BearerVerifier | None,
        now: Callable[[], datetime],
        key_cache_seconds: float = 0,
        monotonic: Callable[[], float] = time.monotonic,
        default_generation: Generation = Generation.ALTINN3,
    ) -> None:
        self._transactions = transactions
        self._pepper = pepper
        self._verify_bearer = verify_bearer
        self._now = now
        self._keys = _KeyCache(key_cache_seconds, monotonic)
        self._default_generation = default_generation

    def forget_client(self, client_id: uuid.UUID) -> None:
        """Stop honouring this process's remembered keys of a client (revocation, disabling)."""
        self._keys.forget_client(client_id)

    @property
    def remembered_keys(self) -> int:
        return len(self._keys)

    async def register(
        self,
        *,
        name: str,
        org_number: str,
        return_urls: tuple[str, ...],
        generation: Generation | None = None,
    ) -> uuid.UUID:
        """A new client, on the deployment's Altinn generation unless ``generation`` says."""
        for url in return_urls:
            try:
                normalise(url)
            except InvalidReturnUrl as exc:
                raise ValidationFailed(f"return URL refused: {exc}") from None
        async with self._transactions() as tx:
            client_id = await tx.clients.create(
                name=name,
                org_number=org_number,
                return_urls=return_urls,
                at=self._now(),
                generation=generation or self._default_generation,
            )
            await tx.commit()
        return client_id

    async def set_generation(self, client_id: uuid.UUID | None, generation: Generation) -> int:
        """Which Altinn new consent requests of a client (of every client, with None) go
        through; requests already made keep theirs. Returns how many clients changed."""
        async with self._transactions() as tx:
            changed = await tx.clients.set_generation(client_id, generation, at=self._now())
            await tx.commit()
        return changed

    async def caller(self, client_id: uuid.UUID) -> Caller | None:
        """The client as the consent use cases see it (for operator commands)."""
        async with self._transactions() as tx:
            client = await tx.clients.get(client_id)
        return None if client is None else _caller(client)

    async def ensure(
        self, *, name: str, org_number: str, return_urls: tuple[str, ...]
    ) -> uuid.UUID:
        """The active client with this name and org, registered first if there is none."""
        async with self._transactions() as tx:
            found = [c for c in await tx.clients.by_org(org_number) if c.active and c.name == name]
        if found:
            return found[0].id
        return await self.register(name=name, org_number=org_number, return_urls=return_urls)

    async def issue_key(self, client_id: uuid.UUID, *, label: str | None = None) -> ApiKey:
        key = new_key()
        async with self._transactions() as tx:
            await tx.clients.add_key(
                client_id,
                prefix=key.prefix,
                key_hash=hash_key(key, self._pepper),
                label=label,
                at=self._now(),
            )
            await tx.commit()
        return key

    async def revoke_key(self, client_id: uuid.UUID, api_key: str) -> bool:
        """Revoke one of the client's keys (given whole or by its prefix); False if unknown."""
        parsed = parse_key(api_key)
        prefix = parsed.prefix if parsed is not None else api_key
        async with self._transactions() as tx:
            revoked = await tx.clients.revoke_key(client_id, prefix, at=self._now())
            await tx.commit()
        if revoked:
            self._keys.forget_client(client_id)
        return revoked

    async def authenticate(self, authorization: str | None) -> Caller:
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _refused()
        credential = credential.strip()
        key = parse_key(credential)
        if key is not None:
            return await self._by_key(key)
        return await self._by_token(credential)

    async def _by_key(self, key: ApiKey) -> Caller:
        presented = hash_key(key, self._pepper)
        remembered = self._keys.get(presented)
        if remembered is not None:
            return remembered
        async with self._transactions() as tx:
            stored = await tx.clients.key_by_prefix(key.prefix)
            if stored is None or stored.revoked:
                raise _refused()
            if not hmac.compare_digest(stored.key_hash, presented):
                raise _refused()
            client = await tx.clients.get(stored.client_id)
            if client is None or not client.active:
                raise _refused()
            now = self._now()
            last = stored.last_used_at
            if last is None or now - last >= _TOUCH_EVERY:
                # "Last used" to the minute is enough; a write on every call is not worth it.
                await tx.clients.touch_key(stored.id, at=now)
                await tx.commit()
        caller = _caller(client)
        self._keys.put(presented, caller)
        return caller

    async def _by_token(self, token: str) -> Caller:
        if self._verify_bearer is None:
            raise _refused()
        try:
            claims = await self._verify_bearer(token)
        except InvalidBearer as exc:
            logger.info("bearer token refused: %s", exc)
            raise _refused() from None
        org = _org(claims.get("supplier")) or _org(claims.get("consumer"))
        if org is None:
            raise _refused()
        async with self._transactions() as tx:
            clients = [c for c in await tx.clients.by_org(org) if c.active]
        if len(clients) != 1:
            # None, or ambiguous: refuse rather than guess which tenant is meant.
            raise _refused()
        return _caller(clients[0])


def _org(claim: object) -> str | None:
    if not isinstance(claim, Mapping):
        return None
    value = claim.get("ID")
    if not isinstance(value, str) or not value.startswith("0192:"):
        return None
    return value.removeprefix("0192:")


def _caller(client: _Client) -> Caller:
    return Caller(
        client_id=client.id,
        name=client.name,
        return_urls=client.return_urls,
        generation=client.generation,
    )


def _refused() -> Unauthenticated:
    return Unauthenticated(_REFUSED, headers={"WWW-Authenticate": 'Bearer realm="ebevis-broker"'})
