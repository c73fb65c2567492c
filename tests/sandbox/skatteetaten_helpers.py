"""Helpers for the fake Skatteetaten tests: a wired sandbox, consent records, consent tokens.

Tokens are minted here in the claim shape Maskinporten gives an Altinn 3 consent token
(``altinn-consent.md`` §2.3/§3.2, ``maskinporten.md`` §2.1/§3.2), signed by our own keys.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRecord, ConsentRegister, ConsentStatus, org_urn
from broker.sandbox.jose import SigningKeys
from broker.sandbox.skatteetaten import Sleep, create_app
from broker.sandbox.skatteetaten_config import SkatteetatenConfig
from broker.sandbox.skatteetaten_state import SkatteetatenState

ISSUER = "https://test.maskinporten.no/"
SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
SUBJECT = "974761076"  # the documented example org, known to the fake by default
OTHER_SUBJECT = "313506673"
CONSUMER = "313876144"
SUPPLIER = "310149942"
NEW_RESOURCE = "digdir-oppdragutenlandskevirksomheter-skatteetaten"
MIGRATED_RESOURCE = "digdir_5616_2"
ISO6523 = "iso6523-actorid-upis"
START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)  # 11:00 in Oslo (CET)
KORRELASJONSID = "3f1c0c1e-0b7a-4b7e-9a4e-1f0f7d0e2a11"
BASE_URL = "http://skatteetaten.test"
XML_NS = "urn:no:skatteetaten:datasamarbeid:oppdragutenlandskevirksomheter:v1"
FEIL_NS = "urn:no:skatteetaten:datasamarbeid:feil:v1"
PREFIX = "OPPDRAGUTENLANDSKEVIRKSOMHETER"


def url(orgnr: str = SUBJECT, package: str = "ebevis") -> str:
    return f"/v1/{package}/utenlandskevirksomheter/{orgnr}/oppdrag/antall"


@functools.cache
def maskinporten_keys() -> SigningKeys:
    """RSA generation is slow, so all tests share one key set (read-only: never rotate it)."""
    return SigningKeys.generate(2, prefix="mp")


@functools.cache
def foreign_keys() -> SigningKeys:
    return SigningKeys.generate(1, prefix="mp")


def iso_party(orgnr: str) -> dict[str, str]:
    return {"authority": ISO6523, "ID": f"0192:{orgnr}"}


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class Gate:
    """A sleep that holds every caller until ``expected`` callers wait, so calls overlap."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.waiting = 0
        self.opened = asyncio.Event()
        self._arrivals = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        async with self._arrivals:
            self.waiting += 1
            self._arrivals.notify_all()
        if self.waiting >= self.expected:
            self.opened.set()
        await self.opened.wait()

    async def until_waiting(self, count: int) -> None:
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: self.waiting >= count)


def default_state(**overrides: Any) -> SkatteetatenState:
    holders = {"ebevis": [CONSUMER], "arbeidstilsynet": [CONSUMER]}
    return SkatteetatenState(**{"package_holders": holders, **overrides})


@dataclass
class Sandbox:
    config: SkatteetatenConfig
    clock: Clock
    register: ConsentRegister
    state: SkatteetatenState
    sleep: Sleep
    app: Starlette
    keys: SigningKeys

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client

    def add_consent(
        self,
        *,
        subject: str = SUBJECT,
        consumer: str = CONSUMER,
        resource: str = NEW_RESOURCE,
        valid_for: timedelta = timedelta(days=90),
        status: ConsentStatus = ConsentStatus.ACCEPTED,
    ) -> ConsentRecord:
        now = self.clock.now()
        record = ConsentRecord(
            id=uuid.uuid4(),
            from_party=org_urn(subject),
            to_party=org_urn(consumer),
            handled_by=None,
            required_delegator=None,
            valid_to=now + valid_for,
            consent_rights=[{"action": ["consent"], "resource": [_resource(resource)]}],
            request_message=None,
            redirect_url="https://broker.test/consent/callback",
            portal_view_mode="hide",
            created=now,
        )
        self.register.add(record, performed_by=None)
        if status is not ConsentStatus.CREATED:
            self.register.set_status(record, status, at=now, performed_by=None)
        return record

    def consent_claims(self, record: ConsentRecord, **overrides: Any) -> dict[str, Any]:
        """The claims of a Maskinporten consent token for ``record`` (§3.2 shape)."""
        consumer = record.to_party.rsplit(":", 1)[1]
        detail = {
            "type": "urn:altinn:consent",
            "id": str(record.id),
            "from": record.from_party,
            "to": iso_party(consumer),
            "consented": (record.consented or record.created).isoformat(),
            "validTo": record.valid_to.isoformat(),
            "consentRights": record.consent_rights,
        }
        return self.plain_claims(org=consumer, authorization_details=[detail], **overrides)

    def plain_claims(self, *, org: str = CONSUMER, **overrides: Any) -> dict[str, Any]:
        """Maskinporten access-token claims for consumer ``org`` (§2.1), no consent."""
        now = self.clock.timestamp()
        claims: dict[str, Any] = {
            "scope": SCOPE,
            "consumer": iso_party(org),
            "iss": ISSUER,
            "aud": "unspecified",
            "client_amr": "private_key_jwt",
            "token_type": "Bearer",
            "client_id": "broker-client",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 120,
        }
        return claims | overrides

    def token(self, claims: Mapping[str, Any], keys: SigningKeys | None = None) -> str:
        return (keys or self.keys).sign(claims)

    def consent_token(self, record: ConsentRecord, **overrides: Any) -> str:
        return self.token(self.consent_claims(record, **overrides))

    def headers(self, token: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", **extra}

    def authorised(self, subject: str = SUBJECT, **extra: str) -> dict[str, str]:
        """Headers for a call that passes every check: a fresh accepted consent and its token."""
        return self.headers(self.consent_token(self.add_consent(subject=subject)), **extra)


def _resource(value: str) -> dict[str, str]:
    return {"type": "urn:altinn:resource", "value": value}


def make_sandbox(
    *,
    config: SkatteetatenConfig | None = None,
    state: SkatteetatenState | None = None,
    sleep: Sleep | None = None,
) -> Sandbox:
    config = config or SkatteetatenConfig(issuer=ISSUER)
    clock, register = Clock(START), ConsentRegister()
    state = state or default_state()
    sleep = sleep or RecordingSleep()
    keys = maskinporten_keys()
    app = create_app(
        config, clock, state=state, register=register, jwks=keys.public_jwks, sleep=sleep
    )
    return Sandbox(config, clock, register, state, sleep, app, keys)


def feil(number: str, melding: str, korrelasjonsid: str) -> dict[str, str]:
    """The JSON error body (§3.1) for the API's own code ``number`` (``"007"``)."""
    return {"kode": f"{PREFIX}-{number}", "melding": melding, "korrelasjonsid": korrelasjonsid}


def json_body(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


def xml_root(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"] == "application/xml"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(response.content)  # noqa: S314 - our own fake's output


def xml_children(element: ET.Element, namespace: str) -> dict[str, str | None]:
    prefix = f"{{{namespace}}}"
    assert all(child.tag.startswith(prefix) for child in element)
    return {child.tag.removeprefix(prefix): child.text for child in element}


async def call(
    sandbox: Sandbox, headers: dict[str, str], path: str | None = None
) -> tuple[int, Any]:
    """GET ``path`` (the example org by default) with a fixed Korrelasjonsid: status and JSON."""
    async with sandbox.client() as client:
        response = await client.get(
            path or url(), headers={"Korrelasjonsid": KORRELASJONSID, **headers}
        )
    return response.status_code, json_body(response)


def expect(number: str, melding: str) -> dict[str, str]:
    """The error body ``call`` gets for the API's code ``number``."""
    return feil(number, melding, KORRELASJONSID)


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS-shaped token with a junk signature, for header and tampering tests."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}.c2ln"
