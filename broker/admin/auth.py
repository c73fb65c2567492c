"""Who is an admin: accounts, password logins with throttling, server-side sessions, API tokens.

- Accounts are made with the CLI (``broker admin create-user``); passwords are scrypt hashes.
- A login is refused, without the password being checked, once the account or the client
  address has ``attempts`` failures within ``window`` seconds. The account's failures are counted
  from the audit trail (so every process sees them); the address's in this process. An unknown
  username costs a hash like a known one, and every refusal reads the same.
- A login opens a new session: a random secret for the browser's cookie, kept here only as its
  SHA-256. It ends at logout, after ``idle`` seconds unused, after ``absolute`` seconds in any
  case, and when its user is disabled or changes password.
- API tokens (``ebadm_<prefix>_<secret>``) act with their user's role, for automation.

Every login, logout and account change leaves an audit row.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broker.admin.passwords import PasswordHasher, WeakPassword, check_strength
from broker.admin.ports import AdminUnit, Role, UserRecord
from broker.consent.ports import AuditRecord, DuplicateKey
from broker.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed

__all__ = [
    "Actor",
    "AdminAuth",
    "LoginPolicy",
    "LoginRefused",
    "SessionCheck",
    "parse_token",
]

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_TOKEN = re.compile(r"ebadm_([a-z2-9]{12})_([A-Za-z0-9_-]{43})")
_PREFIX_CHARS = "abcdefghijkmnpqrstuvwxyz23456789"
_TOUCH_EVERY = timedelta(minutes=1)
_ADDRESSES = 10_000
LOGIN = "admin.login"


@dataclass(frozen=True)
class Actor:
    """An authenticated operator. ``via`` says how: ``web``, ``token:<prefix>`` or ``cli``."""

    user_id: uuid.UUID | None
    username: str
    role: Role
    via: str

    @property
    def may_change(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self) -> None:
        if not self.may_change:
            raise Forbidden("This needs the admin role; auditors may only read")

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str,
        *,
        client_id: uuid.UUID | None = None,
        reason: str | None = None,
        correlation_id: str | None = None,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            actor_type="admin",
            actor_id=self.username,
            action=action,
            object_type=object_type,
            object_id=object_id,
            client_id=client_id,
            outcome=outcome,
            reason=reason,
            correlation_id=correlation_id,
            details={"via": self.via, **(details or {})},
        )

    @classmethod
    def cli(cls, name: str) -> Actor:
        """The operator at the server's console: the CLI needs the database's credentials,
        so it may do everything; the audit trail names the operating-system user."""
        return cls(None, f"cli:{name}", Role.ADMIN, "cli")


@dataclass(frozen=True)
class LoginPolicy:
    attempts: int = 5
    window: int = 900
    idle: int = 1800
    absolute: int = 28800


class LoginRefused(Exception):
    """Wrong username or password, or too many failures (``retry_after`` seconds)."""

    def __init__(self, *, throttled: bool, retry_after: int = 0) -> None:
        super().__init__("throttled" if throttled else "invalid")
        self.throttled = throttled
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionCheck:
    actor: Actor | None
    expired: bool = False  # there was a session, and it has just ended (idle, age, disabled)


class _AddressThrottle:
    """Failed logins per client address in this process, over a sliding window."""

    def __init__(self, attempts: int, window: int) -> None:
        self._attempts = attempts
        self._window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str, now: float) -> int:
        failures = self._failures.get(address)
        if failures is None:
            return 0
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if len(failures) < self._attempts:
            return 0
        return max(1, int(failures[0] + self._window - now) + 1)

    def fail(self, address: str, now: float) -> None:
        if len(self._failures) >= _ADDRESSES and address not in self._failures:
            # Bounded memory under a spray of addresses: forget the quietest half.
            for stale in sorted(self._failures, key=lambda a: self._failures[a][-1])[
                : _ADDRESSES // 2
            ]:
                del self._failures[stale]
        self._failures.setdefault(address, deque()).append(now)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def parse_token(value: str) -> str | None:
    """The prefix of a well-formed admin token, else None."""
    match = _TOKEN.fullmatch(value)
    return None if match is None else match[1]


class AdminAuth:
    def __init__(
        self,
        units: Callable[[], AdminUnit],
        *,
        hasher: PasswordHasher,
        pepper: bytes,
        policy: LoginPolicy,
        now: Callable[[], datetime],
    ) -> None:
        self._units = units
        self._hasher = hasher
        self._pepper = pepper
        self._policy = policy
        self.policy = policy
        self._now = now
        self._addresses = _AddressThrottle(policy.attempts, policy.window)
        self._dummy: str | None = None

    # --- accounts (CLI) ---------------------------------------------------------------------

    async def create_user(
        self, username: str, password: str, *, role: Role, actor: Actor
    ) -> UserRecord:
        name = _username(username)
        _strong(password, name)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._now()
        async with self._units() as uow:
            try:
                user_id = await uow.admins.create_user(
                    username=name, password_hash=hashed, role=role, at=now
                )
            except DuplicateKey:
                raise Conflict(f"The username {name!r} is taken", code="user_exists") from None
            await uow.audit.append(
                actor.audit(
                    "admin_user.created", "admin_user", str(user_id), details={"role": role.value}
                ),
                at=now,
            )
            user = await uow.admins.user_by_name(name)
            await uow.commit()
        assert user is not None
        return user

    async def set_password(self, username: str, password: str, *, actor: Actor) -> None:
        name = _username(username)
        _strong(password, name)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._now()
        async with self._units() as uow:
            user = await _user(uow, name)
            await uow.admins.set_password(user.id, hashed, at=now)
            ended = await uow.admins.end_sessions(user.id, at=now)
            await uow.audit.append(
                actor.audit(
                    "admin_user.password_set", "admin_user", str(user.id), details={"ended": ended}
                ),
                at=now,
            )
            await uow.commit()

    async def set_active(self, username: str, active: bool, *, actor: Actor) -> None:
        now = self._now()
        async with self._units() as uow:
            user = await _user(uow, _username(username))
            await uow.admins.set_active(user.id, active, at=now)
            ended = 0 if active else await uow.admins.end_sessions(user.id, at=now)
            action = "admin_user.enabled" if active else "admin_user.disabled"
            await uow.audit.append(
                actor.audit(action, "admin_user", str(user.id), details={"ended": ended}), at=now
            )
            await uow.commit()

    async def users(self) -> list[UserRecord]:
        async with self._units() as uow:
            return await uow.admins.users()

    # --- web logins -------------------------------------------------------------------------

    async def login(
        self, username: str, password: str, *, address: str, correlation_id: str | None
    ) -> tuple[str, Actor]:
        """A new session's secret (for the cookie) and its operator, or LoginRefused."""
        name = username.strip().lower()
        now = self._now()
        clock = now.timestamp()
        async with self._units() as uow:
            user = await uow.admins.user_by_name(name) if _USERNAME.fullmatch(name) else None
            wait = max(self._addresses.retry_after(address, clock), await self._locked(uow, user))
        if wait:
            await self._record_failure(user, "throttled", address, correlation_id)
            raise LoginRefused(throttled=True, retry_after=wait)
        stored = user.password_hash if user is not None else await self._dummy_hash()
        matches = await asyncio.to_thread(self._hasher.verify, stored, password)
        if user is None or not matches or not user.active:
            reason = "unknown_user" if user is None else "disabled" if matches else "bad_password"
            self._addresses.fail(address, clock)
            await self._record_failure(user, reason, address, correlation_id)
            raise LoginRefused(throttled=False)
        secret = secrets.token_urlsafe(32)
        async with self._units() as uow:
            await uow.admins.open_session(_sha256(secret), user.id, at=now)
            actor = Actor(user.id, user.username, user.role, "web")
            await uow.audit.append(
                actor.audit(
                    LOGIN,
                    "admin_user",
                    str(user.id),
                    correlation_id=correlation_id,
                    details={"address": address},
                ),
                at=now,
            )
            if self._hasher.needs_rehash(user.password_hash):
                rehashed = await asyncio.to_thread(self._hasher.hash, password)
                await uow.admins.set_password(user.id, rehashed, at=now)
            await uow.commit()
        return secret, actor

    async def _locked(self, uow: AdminUnit, user: UserRecord | None) -> int:
        if user is None:
            return 0
        since = self._now() - timedelta(seconds=self._policy.window)
        failures = await uow.audit.count_since(
            action=LOGIN,
            object_type="admin_user",
            object_id=str(user.id),
            outcome="denied",
            since=since,
        )
        return self._policy.window if failures >= self._policy.attempts else 0

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await asyncio.to_thread(self._hasher.dummy)
        return self._dummy

    async def _record_failure(
        self, user: UserRecord | None, reason: str, address: str, correlation_id: str | None
    ) -> None:
        # The typed name of an unknown user is not kept: people type passwords into it. A
        # throttled attempt is a "failure", not a "denied" one: it does not lengthen the lock.
        record = AuditRecord(
            actor_type="admin",
            actor_id=user.username if user else "unknown",
            action=LOGIN,
            object_type="admin_user",
            object_id=str(user.id) if user else "unknown",
            client_id=None,
            outcome="failure" if reason == "throttled" else "denied",
            reason=reason,
            correlation_id=correlation_id,
            details={"via": "web", "address": address},
        )
        async with self._units() as uow:
            await uow.audit.append(record, at=self._now())
            await uow.commit()

    async def session(self, secret: str | None) -> SessionCheck:
        if not secret:
            return SessionCheck(None)
        key, now = _sha256(secret), self._now()
        async with self._units() as uow:
            found = await uow.admins.session(key)
            if found is None or found.ended_at is not None:
                return SessionCheck(None)
            idle = now - found.last_seen_at > timedelta(seconds=self._policy.idle)
            old = now - found.created_at > timedelta(seconds=self._policy.absolute)
            if idle or old or not found.user.active:
                await uow.admins.end_session(key, at=now)
                await uow.commit()
                return SessionCheck(None, expired=True)
            await uow.admins.touch_session(key, at=now)
            await uow.commit()
        user = found.user
        return SessionCheck(Actor(user.id, user.username, user.role, "web"))

    async def logout(self, secret: str, actor: Actor, *, correlation_id: str | None) -> None:
        now = self._now()
        async with self._units() as uow:
            if await uow.admins.end_session(_sha256(secret), at=now):
                await uow.audit.append(
                    actor.audit(
                        "admin.logout",
                        "admin_user",
                        str(actor.user_id),
                        correlation_id=correlation_id,
                    ),
                    at=now,
                )
            await uow.commit()

    # --- API tokens -------------------------------------------------------------------------

    async def issue_token(
        self, username: str, *, label: str | None, days: int | None, actor: Actor
    ) -> str:
        prefix = "".join(secrets.choice(_PREFIX_CHARS) for _ in range(12))
        token = f"ebadm_{prefix}_{secrets.token_urlsafe(32)}"
        now = self._now()
        expires = now + timedelta(days=days) if days else None
        async with self._units() as uow:
            user = await _user(uow, _username(username))
            await uow.admins.add_token(
                user.id,
                prefix=prefix,
                token_hash=self._hash_token(token),
                label=label,
                at=now,
                expires_at=expires,
            )
            await uow.audit.append(
                actor.audit(
                    "admin_token.issued",
                    "admin_token",
                    prefix,
                    details={
                        "user": user.username,
                        "expires_at": expires.isoformat() if expires else None,
                    },
                ),
                at=now,
            )
            await uow.commit()
        return token

    async def revoke_token(self, prefix: str, *, actor: Actor) -> None:
        now = self._now()
        async with self._units() as uow:
            if not await uow.admins.revoke_token(prefix, at=now):
                raise NotFound("No such active admin token")
            await uow.audit.append(
                actor.audit("admin_token.revoked", "admin_token", prefix), at=now
            )
            await uow.commit()

    async def authenticate_token(self, authorization: str | None) -> Actor:
        scheme, _, credential = (authorization or "").partition(" ")
        prefix = parse_token(credential.strip()) if scheme.lower() == "bearer" else None
        if prefix is None:
            raise _unauthenticated()
        now = self._now()
        async with self._units() as uow:
            found = await uow.admins.token_by_prefix(prefix)
            if (
                found is None
                or found.revoked_at is not None
                or (found.expires_at is not None and found.expires_at <= now)
                or not found.user.active
                or not hmac.compare_digest(found.token_hash, self._hash_token(credential.strip()))
            ):
                raise _unauthenticated()
            if found.last_used_at is None or now - found.last_used_at >= _TOUCH_EVERY:
                await uow.admins.touch_token(found.id, at=now)
                await uow.commit()
        user = found.user
        return Actor(user.id, user.username, user.role, f"token:{prefix}")

    def _hash_token(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()


async def _user(uow: AdminUnit, name: str) -> UserRecord:
    user = await uow.admins.user_by_name(name)
    if user is None:
        raise NotFound(f"No admin user {name!r}")
    return user


def _username(value: str) -> str:
    name = value.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ValidationFailed(
            "A username is 2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    return name


def _strong(password: str, username: str) -> None:
    try:
        check_strength(password, username=username)
    except WeakPassword as exc:
        raise ValidationFailed(f"The password {exc}") from None


def _unauthenticated() -> Unauthenticated:
    return Unauthenticated(
        "A valid admin API token is required",
        headers={"WWW-Authenticate": 'Bearer realm="ebevis-broker-admin"'},
    )
