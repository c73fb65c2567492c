"""Each refusal the fake Skatteetaten gives maps to its class with ``kode`` and ``korrelasjonsid``;
over ``MockTransport``, the bodies the fake does not write (XML quirks, gateway pages, odd
statuses). No refusal is retried, and no exception text holds the token."""

from __future__ import annotations

import uuid

import httpx
import pytest

from broker.consent.ports import UpstreamRefused, UpstreamUnavailable
from broker.skatteetaten import (
    ConsentRejected,
    Misconfigured,
    OurDefect,
    SkatteetatenRefused,
    SkatteetatenUnavailable,
    SubjectNotFound,
    TokenRejected,
)
from tests.adapters.skatteetaten_support import (
    OTHER_SUPPLIER,
    PREFIX,
    SECRET_TOKEN,
    SUPPLIER,
    World,
    assert_no_secret,
    feil,
    mock_client,
    ske_world,
)


async def _refusal(
    w: World, token: str, *, orgnr: str = SUPPLIER, **kwargs: object
) -> SkatteetatenRefused:
    accept = kwargs.pop("accept", "json")
    before = len(await w.calls())
    with pytest.raises(SkatteetatenRefused) as caught:
        await w.client(**kwargs).oppdrag(orgnr, token=token, accept=accept)  # type: ignore[arg-type]
    assert isinstance(caught.value, UpstreamRefused)
    assert len(await w.calls()) == before + 1  # never retried
    assert w.sleeps.waits == []
    assert caught.value.korrelasjonsid == w.ids.issued[-1]  # the fake echoes ours
    assert_no_secret(caught.value, token)
    return caught.value


def _is(error: SkatteetatenRefused, kind: type[SkatteetatenRefused], number: str) -> None:
    assert type(error) is kind
    assert error.kode == error.code == f"{PREFIX}-{number}"
    assert error.korrelasjonsid is not None
    assert error.korrelasjonsid in error.detail
    assert error.melding  # Skatteetaten's varying text, kept apart from ours


async def test_revoked_consent_is_consent_rejected() -> None:
    async with ske_world() as w:
        consent_id = await w.consent()
        bearer = await w.consent_token(consent_id)
        revoked = await w.http.post(f"/control/consents/{consent_id}/revoke", json={})
        assert revoked.status_code == 200
        error = await _refusal(w, bearer)
    _is(error, ConsentRejected, "007")
    assert error.status == 403


async def test_consent_of_another_organisation_is_consent_rejected_in_xml_too() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        as_json = await _refusal(w, bearer, orgnr=OTHER_SUPPLIER)
        as_xml = await _refusal(w, bearer, orgnr=OTHER_SUPPLIER, accept="xml")
    _is(as_json, ConsentRejected, "007")
    _is(as_xml, ConsentRejected, "007")
    assert as_json.korrelasjonsid != as_xml.korrelasjonsid


async def test_unknown_organisation_is_subject_not_found() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        w.sandbox.skatteetaten.remove_org(SUPPLIER)
        error = await _refusal(w, bearer, accept="xml")
    _is(error, SubjectNotFound, "008")
    assert error.status == 404


async def test_an_unreadable_or_expired_token_is_token_rejected() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        garbage = await _refusal(w, SECRET_TOKEN)
        w.sandbox.clock.advance(3600)
        expired = await _refusal(w, bearer)
    for error in (garbage, expired):
        _is(error, TokenRejected, "004")
        assert isinstance(error, Misconfigured)
        assert error.status == 401


async def test_a_token_without_the_api_scope_is_misconfigured() -> None:
    async with ske_world() as w:
        bearer = await w.plain_token("altinn:consentrequests.write")
        error = await _refusal(w, bearer)
    _is(error, Misconfigured, "005")
    assert error.status == 403


async def test_a_consumer_without_the_rettighetspakke_is_misconfigured() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        for holder in w.sandbox.seed.authorities:
            w.sandbox.skatteetaten.withdraw_package(holder, "ebevis")
        error = await _refusal(w, bearer)
    _is(error, Misconfigured, "005")


async def test_a_bad_orgnr_or_rettighetspakke_is_our_defect() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        bad_checksum = await _refusal(w, bearer, orgnr="123456789")
        bad_package = await _refusal(w, bearer, rettighetspakke="ukjent")
    _is(bad_checksum, OurDefect, "006")
    _is(bad_package, OurDefect, "006")
    assert bad_checksum.status == 400


async def test_an_unsupported_format_is_our_defect() -> None:
    async def spoil_accept(request: httpx.Request) -> None:
        request.headers["Accept"] = "text/csv"

    async with ske_world(event_hooks={"request": [spoil_accept]}) as w:
        bearer = await w.consent_token()
        error = await _refusal(w, bearer)
    _is(error, OurDefect, "009")
    assert error.status == 406


async def test_a_wrong_base_url_is_misconfigured_with_or_without_a_feil_body() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        async with w.http_at("/skatteetaten/v9") as wrong:
            gateway = await _refusal(w, bearer, http=wrong)  # the default: a plain "404 NOT FOUND"
            await w.quirks(unknown_url_style="feil")
            coded = await _refusal(w, bearer, http=wrong)
    assert type(gateway) is Misconfigured
    assert (gateway.kode, gateway.code, gateway.status) == (None, "http_404", 404)
    assert gateway.melding is None
    _is(coded, Misconfigured, "003")


async def test_das_008_is_misconfigured() -> None:
    async with ske_world() as w:
        bearer = await w.consent_token()
        await w.fault("das-008", times=1)
        error = await _refusal(w, bearer)
    assert type(error) is Misconfigured
    assert (error.kode, error.status) == ("DAS-008", 403)


# --- bodies the fake does not write ----------------------------------------------------------


def _xml_feil(kode: str, korrelasjonsid: str, status: int = 403) -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feil xmlns="urn:no:skatteetaten:datasamarbeid:feil:v1">'
        f"<melding>Samtykke mangler.</melding><korrelasjonsid>{korrelasjonsid}</korrelasjonsid>"
        f"<kode>{kode}</kode><nytt>ignored</nytt></feil>"
    )
    return httpx.Response(status, text=body, headers={"content-type": "application/xml"})


async def test_their_korrelasjonsid_wins_over_ours() -> None:
    theirs = str(uuid.uuid4())
    client, script = mock_client([_xml_feil(f"{PREFIX}-007", theirs)])
    with pytest.raises(ConsentRejected) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN, accept="xml")
    assert caught.value.korrelasjonsid == theirs
    assert script.requests[0].headers["korrelasjonsid"] != theirs
    assert caught.value.melding == "Samtykke mangler."


async def test_a_korrelasjonsid_response_header_is_used_when_the_body_has_none() -> None:
    header = str(uuid.uuid4())
    answer = httpx.Response(404, text="404 NOT FOUND", headers={"Korrelasjonsid": header})
    client, _ = mock_client([answer])
    with pytest.raises(Misconfigured) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert caught.value.korrelasjonsid == header


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (httpx.Response(401), TokenRejected, "http_401"),
        (feil(401, f"{PREFIX}-005"), TokenRejected, f"{PREFIX}-005"),  # the status decides
        (feil(403, f"{PREFIX}-004"), TokenRejected, f"{PREFIX}-004"),
        (httpx.Response(403, text="<html>Forbidden</html>"), Misconfigured, "http_403"),
        (feil(404, "DAS-002"), Misconfigured, "DAS-002"),
        (feil(404, f"{PREFIX.lower()}-008"), SubjectNotFound, f"{PREFIX.lower()}-008"),
        (httpx.Response(410), SubjectNotFound, "http_410"),
        (httpx.Response(405, text="Method Not Allowed"), OurDefect, "http_405"),
        (feil(400, "NOE-ANNET-001"), OurDefect, "NOE-ANNET-001"),
        (httpx.Response(415, json={"kode": None, "melding": None}), OurDefect, "http_415"),
    ],
)
async def test_refusals_by_status_and_kode(
    answer: httpx.Response, kind: type[SkatteetatenRefused], code: str
) -> None:
    client, script = mock_client([answer])
    with pytest.raises(SkatteetatenRefused) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert type(caught.value) is kind
    assert caught.value.code == code
    theirs = answer.json().get("korrelasjonsid") if answer.content.startswith(b"{") else None
    assert caught.value.korrelasjonsid == (theirs or script.requests[0].headers["korrelasjonsid"])
    assert len(script.requests) == 1
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {"kode": "X\nFORGED", "melding": "m", "korrelasjonsid": "a b"},
        {"kode": "x" * 80, "korrelasjonsid": "<script>"},
    ],
)
async def test_odd_codes_and_ids_are_not_taken_over(body: dict[str, str]) -> None:
    client, script = mock_client([httpx.Response(400, json=body)])
    with pytest.raises(OurDefect) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert (caught.value.kode, caught.value.code) == (None, "http_400")
    assert caught.value.korrelasjonsid == script.requests[0].headers["korrelasjonsid"]


async def test_a_melding_that_quotes_the_token_is_redacted() -> None:
    other_jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQ"
    melding = f"Ugyldig token {SECRET_TOKEN} og {other_jwt}\n\x1b[31m" + "x" * 500
    client, _ = mock_client([feil(401, f"{PREFIX}-004", melding=melding)])
    with pytest.raises(TokenRejected) as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    text = caught.value.melding or ""
    assert text.startswith("Ugyldig token [redacted] og [redacted]")
    assert "\n" not in text
    assert "\x1b" not in text
    assert len(text) == 300
    assert_no_secret(caught.value, other_jwt)


async def test_an_odd_status_is_a_bad_response_not_a_redirect_followed() -> None:
    answer = httpx.Response(302, headers={"Location": "https://elsewhere.test/"})
    client, script = mock_client([answer])
    with pytest.raises(SkatteetatenUnavailable, match="302 Found") as caught:
        await client.oppdrag(SUPPLIER, token=SECRET_TOKEN)
    assert isinstance(caught.value, UpstreamUnavailable)
    assert len(script.requests) == 1
