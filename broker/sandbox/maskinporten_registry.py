"""What the fake Maskinporten knows and remembers: clients, scopes, Altinn delegations, used
jti's, counters and injected faults (``shared/reference/maskinporten.md`` §6.2, §6.5).

All of it lives in one ``MaskinportenState`` passed into ``create_app``, so that tests and a
control API can register parties, read counters and reset between runs.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from broker.sandbox.orgnr import is_valid_orgnr

__all__ = [
    "ClientRegistration",
    "Delegation",
    "Fault",
    "IssuedKey",
    "MaskinportenState",
    "ScopeRule",
]


@dataclass(frozen=True)
class ClientRegistration:
    """A Maskinporten client: its owner's org number, public keys by ``kid`` and its scopes."""

    client_id: str
    orgnr: str
    keys: Mapping[str, Mapping[str, Any]]  # kid -> public RSA JWK
    scopes: frozenset[str]
    access_token_lifetime: int | None = None  # None: the server default
    # When each key was posted; a key expires a year later (MP-121). Absent: never expires.
    keys_posted: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class ScopeRule:
    """An API owner's scope (§6.2). A scope with no rule is open to all and delegable."""

    name: str
    delegation_source: str | None = None  # None: the scope cannot be delegated in Altinn
    consumers: frozenset[str] | None = None  # orgs the owner granted; None: accessible for all
    at_max_age: int = 0  # 0: no cap on the token lifetime
    maskinporten_allowed: bool = True  # False: allowed integration types exclude maskinporten


@dataclass(frozen=True)
class Delegation:
    """An Altinn API delegation: ``consumer`` lets ``supplier`` use ``scope`` on its behalf."""

    consumer: str
    supplier: str
    scope: str


@dataclass(frozen=True)
class Fault:
    """A canned failure for the next token request (503, 429, ...)."""

    status: int
    error: str
    description: str
    retry_after: int | None = None


IssuedKey = tuple[str, str, str | None]  # (client id, scope, consumer_org)


class MaskinportenState:
    """Registrations, replay memory, counters and faults of one fake Maskinporten."""

    def __init__(self) -> None:
        self._clients: dict[str, ClientRegistration] = {}
        self._public_keys: dict[str, dict[str, RSAKey]] = {}
        self._scopes: dict[str, ScopeRule] = {}
        self._delegations: set[Delegation] = set()
        self._jtis: dict[tuple[str, str], int] = {}
        self._requests: Counter[tuple[str, str]] = Counter()
        self._issued: Counter[IssuedKey] = Counter()
        self._failures: Counter[str] = Counter()
        self._faults: deque[Fault] = deque()

    # Registrations

    def register_client(self, client: ClientRegistration) -> None:
        """Add or replace a client; raises ValueError on a bad org number, key or shared kid."""
        if not is_valid_orgnr(client.orgnr):
            raise ValueError(f"invalid org number {client.orgnr!r}")
        self._check_kids_unique(client)
        self._public_keys[client.client_id] = {
            kid: _import_public_key(kid, jwk) for kid, jwk in client.keys.items()
        }
        self._clients[client.client_id] = client

    def remove_client(self, client_id: str) -> None:
        self._clients.pop(client_id, None)
        self._public_keys.pop(client_id, None)

    def client(self, client_id: str) -> ClientRegistration | None:
        return self._clients.get(client_id)

    def clients(self) -> list[ClientRegistration]:
        return list(self._clients.values())

    def public_key(self, client_id: str, kid: str) -> RSAKey | None:
        return self._public_keys.get(client_id, {}).get(kid)

    def register_scope(self, rule: ScopeRule) -> None:
        self._scopes[rule.name] = rule

    def scope_rule(self, name: str) -> ScopeRule | None:
        return self._scopes.get(name)

    def add_delegation(self, delegation: Delegation) -> None:
        self._delegations.add(delegation)

    def remove_delegation(self, delegation: Delegation) -> None:
        self._delegations.discard(delegation)

    def has_delegation(self, delegation: Delegation) -> bool:
        return delegation in self._delegations

    def delegations(self) -> list[Delegation]:
        return sorted(self._delegations, key=lambda d: (d.consumer, d.supplier, d.scope))

    # Replay memory

    def remember_jti(self, client_id: str, jti: str, *, expires: int, now: int) -> bool:
        """Record a grant's jti until it expires; False when it was seen before (replay)."""
        self._jtis = {key: exp for key, exp in self._jtis.items() if exp >= now}
        if (client_id, jti) in self._jtis:
            return False
        self._jtis[(client_id, jti)] = expires
        return True

    # Counters

    def count_request(self, client_id: str, kid: str) -> None:
        self._requests[(client_id, kid)] += 1

    def count_issued(self, key: IssuedKey) -> None:
        self._issued[key] += 1

    def count_failure(self, error: str) -> None:
        self._failures[error] += 1

    def token_requests(self) -> dict[tuple[str, str], int]:
        """Token requests per (client id, kid), failed ones included."""
        return dict(self._requests)

    def tokens_issued(self) -> dict[IssuedKey, int]:
        """Tokens issued per (client id, scope, consumer_org)."""
        return dict(self._issued)

    def failures(self) -> dict[str, int]:
        """Rejected token requests per OAuth ``error`` code."""
        return dict(self._failures)

    # Faults

    def fail_next(self, fault: Fault, *, count: int = 1) -> None:
        self._faults.extend([fault] * count)

    def take_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else None

    # Resets

    def reset(self) -> None:
        """Forget jti's, counters and pending faults; keep the registrations."""
        self._jtis.clear()
        self._requests.clear()
        self._issued.clear()
        self._failures.clear()
        self._faults.clear()

    def clear(self) -> None:
        """Everything, registrations included."""
        self.reset()
        self._clients.clear()
        self._public_keys.clear()
        self._scopes.clear()
        self._delegations.clear()

    def _check_kids_unique(self, client: ClientRegistration) -> None:
        # A kid is unique across all Maskinporten customers (§1.3, [ADMIN]).
        for other in self._clients.values():
            if other.client_id != client.client_id and set(other.keys) & set(client.keys):
                raise ValueError(f"kid already registered on client {other.client_id!r}")


def _import_public_key(kid: str, jwk: Mapping[str, Any]) -> RSAKey:
    if jwk.get("kid") != kid or jwk.get("kty") != "RSA" or "d" in jwk:
        raise ValueError(f"key {kid!r} must be a public RSA JWK with that kid")
    try:
        return RSAKey.import_key(cast(Any, dict(jwk)))
    except (JoseError, ValueError) as exc:
        raise ValueError(f"key {kid!r} is not a valid RSA JWK") from exc
