"""The fake Skatteetaten's Altinn 2 mode (skatteetaten.md §1.3, §4.3, §6 "A2 mode", "a toggle for
A2 only, A3 only and both"): a plain Maskinporten bearer with the API scope plus an
``AltinnSamtykke`` token from the fake Altinn 2; every way that consent can fail is -007."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from broker.sandbox import skatteetaten, world
from broker.sandbox.clock import Clock
from broker.sandbox.jose import SigningKeys
from broker.sandbox.skatteetaten_config import ConsentMode, SkatteetatenConfig
from tests.sandbox.altinn2_helpers import A2, altinn2
from tests.sandbox.sandbox_helpers import AUTHORITY, BASE, START, SUPPLIER, token

SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
URL = f"/skatteetaten/v1/ebevis/utenlandskevirksomheter/{SUPPLIER}/oppdrag/antall"
CONSENT = "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"


def _sandbox(mode: ConsentMode) -> world.Sandbox:
    config = world.SandboxConfig(
        base_url=BASE, broker_key_file=None, events_safety_lag_seconds=0, consent_mode=mode
    )
    return world.build(config, Clock(START))


async def _call(a2: A2, samtykke: str | None, *, bearer: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {bearer or await token(a2.http, a2.sandbox, SCOPE)}"}
    if samtykke is not None:
        headers["AltinnSamtykke"] = samtykke
    response = await a2.http.get(URL, headers=headers)
    body = response.json()
    return response.status_code, str(body.get("kode") or body.get("forespurteOrganisasjon"))


async def _samtykke(a2: A2, code: str) -> str:
    response = await a2.fetch_token(code)
    assert response.status_code == 200, response.text
    value = response.json()
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize("mode", [ConsentMode.A2_ONLY, ConsentMode.BOTH])
async def test_an_altinn_2_consent_gives_the_data(mode: ConsentMode) -> None:
    async with altinn2(_sandbox(mode)) as a2:
        code = await a2.accepted()
        assert await _call(a2, await _samtykke(a2, code)) == (200, SUPPLIER)
        calls = a2.sandbox.skatteetaten.records()
        assert calls[-1].consent_id == code
        assert calls[-1].outcome == "OK"


async def test_a3_only_refuses_an_altinn_2_consent() -> None:
    async with altinn2(_sandbox(ConsentMode.A3_ONLY)) as a2:
        code = await a2.accepted()
        assert await _call(a2, await _samtykke(a2, code)) == (403, CONSENT)


async def test_a2_only_refuses_a_call_without_altinn_samtykke() -> None:
    async with altinn2(_sandbox(ConsentMode.A2_ONLY)) as a2:
        assert await _call(a2, None) == (403, CONSENT)
        records = a2.sandbox.skatteetaten.records()
        assert records[-1].outcome == CONSENT


async def test_both_refuses_an_altinn_3_token_next_to_altinn_samtykke() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        a2.sandbox.altinn2.migrate(code)
        consent_token = await token(
            a2.http,
            a2.sandbox,
            SCOPE,
            consent=(uuid.UUID(code), f"urn:altinn:organization:identifier-no:{SUPPLIER}"),
        )
        samtykke = await _samtykke(a2, code)
        assert await _call(a2, samtykke, bearer=consent_token) == (403, CONSENT)
        # Each alone is fine: the migrated consent through Altinn 3, and the Altinn 2 one.
        assert await _call(a2, None, bearer=consent_token) == (200, SUPPLIER)
        assert await _call(a2, samtykke) == (200, SUPPLIER)


def _claims(a2: A2, code: str, **changes: Any) -> dict[str, Any]:
    now = a2.sandbox.clock.timestamp()
    claims: dict[str, Any] = {
        "Services": "5616_2",
        "AuthorizationCode": code,
        "OfferedBy": SUPPLIER,
        "CoveredBy": AUTHORITY,
        "DelegatedDate": now,
        "ValidToDate": now + 86400,
        "nbf": now,
        "iat": now,
        "exp": now + 30,
        "iss": "altinn.no",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "https://www.altinn.no/"},
        {"Services": "5616_3"},
        {"Services": ["5616_2_requestor=x"]},  # only a metadata entry
        {"Services": None},
        {"OfferedBy": "310100021"},
        {"CoveredBy": "310200026"},
        {"ValidToDate": None},
        {"ValidToDate": "yesterday"},
        {"AuthorizationCode": None},
        {"exp": None},
    ],
    ids=lambda changes: ",".join(changes),
)
async def test_each_broken_claim_is_refused(changes: dict[str, Any]) -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        forged = a2.sandbox.altinn2_keys.sign(_claims(a2, code, **changes))
        assert await _call(a2, forged) == (403, CONSENT)


async def test_the_past_valid_to_date_is_refused() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        now = a2.sandbox.clock.timestamp()
        signed = a2.sandbox.altinn2_keys.sign(_claims(a2, code, ValidToDate=now))
        assert await _call(a2, signed) == (403, CONSENT)


async def test_the_older_claim_spellings_are_understood() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        later = (START + timedelta(days=2)).strftime("%d.%m.%Y %H:%M:%S")
        legacy = _claims(a2, code, Services=None, ServiceCodes="5616,2", ValidToDate=later)
        assert await _call(a2, a2.sandbox.altinn2_keys.sign(legacy)) == (200, SUPPLIER)


async def test_a_token_signed_by_another_key_or_expired_is_refused() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        foreign = SigningKeys.generate(1, prefix="altinn").sign(_claims(a2, code))
        assert await _call(a2, foreign) == (403, CONSENT)
        samtykke = await _samtykke(a2, code)
        a2.sandbox.clock.advance(31)
        bearer = await token(a2.http, a2.sandbox, SCOPE)
        assert await _call(a2, samtykke, bearer=bearer) == (403, CONSENT)


@pytest.mark.parametrize("end", ["revoke", "expire", "discard"])
async def test_a_consent_ended_at_altinn_is_refused_with_a_token_minted_before(end: str) -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        samtykke = await _samtykke(a2, code)
        if end == "discard":
            a2.sandbox.altinn2.discard(code)
        else:
            assert (await a2.control(code, end)).status_code == 200
        assert await _call(a2, samtykke) == (403, CONSENT)


def _skatteetaten(sandbox: world.Sandbox, *, wired: bool = True, **config: Any) -> Starlette:
    """The Skatteetaten fake composed by hand, with other switches than the sandbox's."""
    return skatteetaten.create_app(
        SkatteetatenConfig(
            issuer=sandbox.maskinporten_config.issuer, consent_mode=ConsentMode.BOTH, **config
        ),
        sandbox.clock,
        state=sandbox.skatteetaten,
        register=sandbox.register,
        jwks=sandbox.keys.public_jwks,
        altinn2=sandbox.altinn2_view() if wired else None,
    )


async def _direct(a2: A2, app: Starlette, samtykke: str) -> httpx.Response:
    bearer = await token(a2.http, a2.sandbox, SCOPE)
    headers = {"Authorization": f"Bearer {bearer}", "AltinnSamtykke": samtykke}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        return await http.get(URL.removeprefix("/skatteetaten"), headers=headers)


async def test_the_register_check_is_a_switch() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        samtykke = await _samtykke(a2, code)
        a2.sandbox.altinn2.revoke(code)
        lax = _skatteetaten(a2.sandbox, check_consent_register=False)
        assert (await _direct(a2, lax, samtykke)).status_code == 200
        strict = _skatteetaten(a2.sandbox)
        assert (await _direct(a2, strict, samtykke)).status_code == 403


async def test_without_altinn_2_wiring_the_header_cannot_be_checked() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        samtykke = await _samtykke(a2, code)
        response = await _direct(a2, _skatteetaten(a2.sandbox, wired=False), samtykke)
        assert response.status_code == 403
        assert response.json()["kode"] == CONSENT


async def test_covered_by_need_not_be_the_consumer_when_that_check_is_off() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        code = await a2.accepted()
        other = a2.sandbox.altinn2_keys.sign(_claims(a2, code, CoveredBy="310200026"))
        lax = _skatteetaten(a2.sandbox, require_consent_to_consumer=False)
        assert (await _direct(a2, lax, other)).status_code == 200


async def test_the_call_log_names_no_code_for_an_unreadable_header() -> None:
    async with altinn2(_sandbox(ConsentMode.BOTH)) as a2:
        assert await _call(a2, "not.a-jwt") == (403, CONSENT)
        assert a2.sandbox.skatteetaten.records()[-1].consent_id is None
