"""G10 (security.md §6): URL hygiene. The portal learns the request id and its status, nothing
else; no handle, start token, cookie value, consent token, Maskinporten token or Altinn consent
id reaches a Location to the portal, a page shown to the person, or the logs.

Logs are captured as production writes them (``broker.logs.configure_logging`` at DEBUG, with
the settings' secrets to redact). Lines written by the tests' own httpx clients (the browsers
and the sandbox control calls) are set aside: they are not the broker's.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from broker.logs import configure_logging
from tests.app.security_support import (
    ALTINN_UIS,
    DEV_COOKIE,
    altinn_id_of,
    capture_maskinporten_tokens,
    handle_of,
    pending_return,
    portal_query,
    start_token_of,
)
from tests.flow import BROKER, PORTAL_RETURN, SANDBOX, Stack, stack
from tests.support import sqlite_url

_TEST_CLIENT_LINE = re.compile(
    rf"^HTTP Request: [A-Z]+ ({re.escape(BROKER)}/|{re.escape(SANDBOX)}/control/)"
)


@dataclass
class Seen:
    """Everything the browsers were sent, and every value that must stay out of sight."""

    responses: list[httpx.Response] = field(default_factory=list)
    secrets: dict[str, set[str]] = field(default_factory=dict)

    def secret(self, kind: str, value: str) -> None:
        assert len(value) >= 16, (kind, value)
        self.secrets.setdefault(kind, set()).add(value)

    async def get(self, browser: httpx.AsyncClient, url: str) -> httpx.Response:
        response = await browser.get(url)
        self.responses.append(response)
        return response


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


async def _flows(s: Stack) -> Seen:
    """A granted flow, a denied one, a forged early return, a replay, a foreign browser's
    return and an expired one: the broker's answers and the values they must not show."""
    seen = Seen()
    mp_tokens = capture_maskinporten_tokens(s)
    requests = [await s.create(reference=f"case-{n}") for n in range(4)]
    async with s.browser() as person, s.browser() as stranger:
        backs = []
        for n, request in enumerate(requests):
            seen.secret("start token", start_token_of(request["consent_url"]))
            altinn_id = altinn_id_of(await seen.get(person, request["consent_url"]))
            seen.secret("altinn consent id", altinn_id)
            seen.secret("handle", handle_of(pending_return(s, altinn_id)))
            if n == 2:  # forged Status=OK before any answer
                await seen.get(person, pending_return(s, altinn_id) + "&Status=OK")
            backs.append(await s.answer(altinn_id, "reject" if n == 1 else "approve"))
        seen.secret("cookie", person.cookies[DEV_COOKIE])
        for back in backs[:3]:
            portal_query(await seen.get(person, back))
        await seen.get(person, backs[0])  # replay: 409
        await seen.get(stranger, backs[3])  # another browser: 400
        s.sandbox.clock.advance(1801)
        await seen.get(person, backs[3])  # too late: 400
    for request in requests[:1] + requests[2:3]:
        receipt = await s.receipt(request["id"])
        assert receipt is not None
        seen.secret("consent token", receipt.decode())
    for token in mp_tokens:
        seen.secret("maskinporten access token", token)
    assert {"maskinporten access token", "consent token"} <= set(seen.secrets)
    assert len(seen.secrets["handle"]) == len(seen.secrets["start token"]) == 4
    return seen


def _broker_log_lines(output: str) -> list[str]:
    lines = []
    for raw in output.splitlines():
        entry = json.loads(raw)
        if entry["logger"] == "httpx" and _TEST_CLIENT_LINE.match(entry["message"]):
            continue
        lines.append(raw)
    return lines


def _leaks(text: str, secrets: dict[str, set[str]], *, but: str = "") -> list[str]:
    return [
        kind for kind, values in secrets.items() if kind != but and any(v in text for v in values)
    ]


async def test_g10_the_portal_and_the_person_see_no_identifier_or_token(
    tmp_path: Path, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        seen = await _flows(s)
    to_portal = [
        r for r in seen.responses if r.headers.get("location", "").startswith(PORTAL_RETURN)
    ]
    assert len(to_portal) == 4  # three ends and the forged early return ("pending")
    for response in to_portal:
        portal_query(response)  # exactly consent_request and status, after the registered URL
    for response in seen.responses:
        location = response.headers.get("location", "")
        # The way to Altinn names the Altinn request (Altinn 3's viewUri, Altinn 2's GUI link
        # with the AuthorizationCode); nothing else may.
        allowed = "altinn consent id" if location.startswith(ALTINN_UIS) else ""
        assert _leaks(location, seen.secrets, but=allowed) == [], location
        assert _leaks(response.text, seen.secrets) == [], response.text
        others = {k: v for k, v in response.headers.items() if k not in ("location", "set-cookie")}
        assert _leaks(json.dumps(others), seen.secrets) == [], others
    assert sorted(r.status_code for r in seen.responses) == [303] * 8 + [400, 400, 409]


async def test_g10_no_handle_cookie_start_token_or_token_reaches_the_logs(
    tmp_path: Path, log_output: io.StringIO, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        configure_logging("DEBUG", redact=s.app.state.settings.secret_values(), stream=log_output)
        seen = await _flows(s)
    lines = _broker_log_lines(log_output.getvalue())
    routes = [json.loads(line).get("route") for line in lines]
    assert routes.count("/consent/return") == 7  # the broker's own access lines were captured
    secrets = {k: v for k, v in seen.secrets.items() if k != "altinn consent id"}
    for line in lines:
        assert _leaks(line, secrets) == [], line


async def test_g10_no_altinn_consent_id_reaches_the_logs(
    tmp_path: Path, log_output: io.StringIO, generation: str
) -> None:
    async with stack(sqlite_url(tmp_path), tmp_path, altinn_generation=generation) as s:
        configure_logging("INFO", redact=s.app.state.settings.secret_values(), stream=log_output)
        seen = await _flows(s)
    ids = {"altinn consent id": seen.secrets["altinn consent id"]}
    leaking = [line for line in _broker_log_lines(log_output.getvalue()) if _leaks(line, ids)]
    assert leaking == []
