"""Helpers for the admin tests: operators made as the CLI makes them, and a browser (an httpx
client with its own cookie jar) that reads the CSRF token from each page as a person's browser
would submit it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from broker.admin.auth import Actor
from broker.admin.ports import Role
from broker.app import AdminTools
from broker.store.models import AuditEvent
from tests.flow import Stack

__all__ = [
    "ADMIN_PASSWORD",
    "AdminBrowser",
    "audit_events",
    "csrf_of",
    "make_admin",
    "tools",
]

ADMIN_PASSWORD = "correct horse battery staple"
CONSOLE = Actor.cli("test")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CONFIRM = re.compile(r'name="confirm" value="([^"]+)"')


def tools(s: Stack) -> AdminTools:
    found = s.app.state.admin
    assert isinstance(found, AdminTools)
    return found


async def make_admin(
    s: Stack, username: str = "ola", role: Role = Role.ADMIN, password: str = ADMIN_PASSWORD
) -> str:
    await tools(s).auth.create_user(username, password, role=role, actor=CONSOLE)
    return username


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found[1]


def confirm_of(html: str) -> str:
    found = _CONFIRM.search(html)
    assert found is not None, "no confirmation token on the page"
    return found[1]


class AdminBrowser:
    """One browser: its cookie jar, the CSRF token of the last page it showed."""

    def __init__(self, s: Stack) -> None:
        self.s = s
        self.client = s.browser()
        self.token = ""

    async def __aenter__(self) -> AdminBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found is not None:
            self.token = found[1]
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        form = {"csrf_token": self.token if token is None else token, **(data or {})}
        response = await self.client.post(path, data=form)
        found = _CSRF.search(response.text)
        if found is not None:
            self.token = found[1]
        return response

    async def login(self, username: str = "ola", password: str = ADMIN_PASSWORD) -> httpx.Response:
        await self.get("/admin/login")
        return await self.post("/admin/login", {"username": username, "password": password})

    async def logged_in(self, username: str = "ola") -> AdminBrowser:
        response = await self.login(username)
        assert response.status_code == 303, response.text
        await self.get("/admin/requests")
        return self

    def cookie(self) -> str | None:
        return self.client.cookies.get("ebevis-admin")

    async def revoke(self, request_id: str, reason: str) -> httpx.Response:
        """Both steps: the reason, then the confirmation."""
        await self.get(f"/admin/requests/{request_id}")
        asked = await self.post(f"/admin/requests/{request_id}/revoke", {"reason": reason})
        assert asked.status_code == 200, asked.text
        return await self.post(
            f"/admin/requests/{request_id}/revoke/confirm",
            {"reason": reason, "confirm": confirm_of(asked.text)},
        )


async def audit_events(s: Stack, **where: Any) -> list[AuditEvent]:
    async with s.app.state.resources.sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(await session.scalars(query))


def new_uuid() -> str:
    return str(uuid.uuid4())
