"""The fake Skatteetaten's token and path rules: 401 -004, 403 -005, 400 -006, each with its
exact body. Consent rules (403 -007) are in test_skatteetaten_consent.py."""

from __future__ import annotations

import pytest

from broker.sandbox.skatteetaten_config import SkatteetatenConfig, UnknownPackage
from broker.sandbox.skatteetaten_state import UnknownUrlStyle
from tests.sandbox.skatteetaten_helpers import (
    CONSUMER,
    ISSUER,
    KORRELASJONSID,
    SUBJECT,
    Sandbox,
    call,
    expect,
    foreign_keys,
    json_body,
    make_sandbox,
    unsigned,
    url,
)

AUTHN = "Feil i forbindelse med autentisering."
AUTHZ = "Feil i forbindelse med autorisering."
INPUT = "Feil i forbindelse med validering av inputdata."


@pytest.fixture
def sandbox() -> Sandbox:
    return make_sandbox()


async def test_a_valid_consent_token_gets_200(sandbox: Sandbox) -> None:
    status, body = await call(sandbox, sandbox.authorised())
    assert status == 200
    assert body["forespurteOrganisasjon"] == SUBJECT


# 401 -004: authentication


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authorization-header mangler."),
        ("Basic dXNlcjpwYXNz", "Authorization-header må være 'Bearer <token>'."),
        ("Bearer", "Authorization-header må være 'Bearer <token>'."),
        ("Bearer   ", "Authorization-header må være 'Bearer <token>'."),
        ("Bearer a b", "Authorization-header må være 'Bearer <token>'."),
        ("Bearer abc", "Tokenet kan ikke leses."),
        ("Bearer a.b.c", "Tokenet kan ikke leses."),
    ],
)
async def test_missing_or_malformed_authorization_is_401(
    sandbox: Sandbox, authorization: str | None, detail: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert await call(sandbox, headers) == (401, expect("004", f"{AUTHN} {detail}"))


async def test_lowercase_bearer_scheme_is_accepted(sandbox: Sandbox) -> None:
    token = sandbox.consent_token(sandbox.add_consent())
    status, _ = await call(sandbox, {"Authorization": f"bearer {token}"})
    assert status == 200


async def test_two_authorization_headers_are_401(sandbox: Sandbox) -> None:
    token = sandbox.consent_token(sandbox.add_consent())
    async with sandbox.client() as client:
        response = await client.get(
            url(),
            headers=[
                ("Authorization", f"Bearer {token}"),
                ("Authorization", f"Bearer {token}"),
                ("Korrelasjonsid", KORRELASJONSID),
            ],
        )
    assert response.status_code == 401
    assert json_body(response) == expect("004", f"{AUTHN} Flere Authorization-headere er sendt.")


async def test_token_signed_by_an_unknown_key_is_401(sandbox: Sandbox) -> None:
    token = sandbox.token(sandbox.consent_claims(sandbox.add_consent()), keys=foreign_keys())
    detail = "Tokenet er signert med en ukjent nøkkel."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


async def test_token_with_a_known_kid_but_a_bad_signature_is_401(sandbox: Sandbox) -> None:
    claims = sandbox.consent_claims(sandbox.add_consent())
    token = foreign_keys().sign(claims, headers={"kid": sandbox.keys.primary_kid})
    detail = "Tokenets signatur er ugyldig."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


async def test_tampered_claims_break_the_signature(sandbox: Sandbox) -> None:
    header, _, signature = sandbox.consent_token(sandbox.add_consent()).split(".")
    forged = unsigned({}, sandbox.consent_claims(sandbox.add_consent(), scope="x")).split(".")[1]
    token = f"{header}.{forged}.{signature}"
    detail = "Tokenets signatur er ugyldig."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512"])
async def test_other_algorithms_are_401(sandbox: Sandbox, alg: str) -> None:
    header = {"alg": alg, "kid": sandbox.keys.primary_kid}
    token = unsigned(header, sandbox.consent_claims(sandbox.add_consent()))
    detail = "Tokenet er ikke signert med RS256."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


async def test_expired_token_is_401(sandbox: Sandbox) -> None:
    headers = sandbox.authorised()
    sandbox.clock.advance(120)
    assert await call(sandbox, headers) == (401, expect("004", f"{AUTHN} Tokenet er utløpt."))


async def test_leeway_is_configurable() -> None:
    sandbox = make_sandbox(config=SkatteetatenConfig(issuer=ISSUER, leeway_seconds=10))
    headers = sandbox.authorised()
    sandbox.clock.advance(125)
    status, _ = await call(sandbox, headers)
    assert status == 200


async def test_token_not_yet_valid_is_401(sandbox: Sandbox) -> None:
    record = sandbox.add_consent()
    token = sandbox.consent_token(record, nbf=sandbox.clock.timestamp() + 30)
    detail = "Tokenet er ikke gyldig ennå."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


@pytest.mark.parametrize(
    "issuer", ["https://maskinporten.no/", "https://test.maskinporten.no", None]
)
async def test_other_issuer_is_401(sandbox: Sandbox, issuer: str | None) -> None:
    token = sandbox.consent_token(sandbox.add_consent(), iss=issuer)
    detail = "Tokenet er ikke utstedt av Maskinporten."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


@pytest.mark.parametrize("aud", ["https://api.skatteetaten.no", ["unspecified", "x"], []])
async def test_an_audience_other_than_unspecified_is_401(sandbox: Sandbox, aud: object) -> None:
    token = sandbox.consent_token(sandbox.add_consent(), aud=aud)
    detail = "Tokenet har feil audience (aud)."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


@pytest.mark.parametrize("aud", ["unspecified", ["unspecified"], None])
async def test_unspecified_or_absent_audience_is_accepted(sandbox: Sandbox, aud: object) -> None:
    claims = sandbox.consent_claims(sandbox.add_consent())
    if aud is None:
        del claims["aud"]
    else:
        claims["aud"] = aud
    status, _ = await call(sandbox, sandbox.headers(sandbox.token(claims)))
    assert status == 200


async def test_audience_check_can_be_switched_off() -> None:
    sandbox = make_sandbox(config=SkatteetatenConfig(issuer=ISSUER, accepted_audiences=None))
    token = sandbox.consent_token(sandbox.add_consent(), aud="https://api.skatteetaten.no")
    status, _ = await call(sandbox, sandbox.headers(token))
    assert status == 200


@pytest.mark.parametrize(
    "consumer",
    [
        None,
        "0192:313876144",
        {"authority": "other", "ID": "0192:313876144"},
        {"authority": "iso6523-actorid-upis", "ID": "9908:313876144"},
        {"authority": "iso6523-actorid-upis", "ID": "0192:31387614"},
        {"authority": "iso6523-actorid-upis", "ID": 313876144},
        {"authority": "iso6523-actorid-upis"},
    ],
)
async def test_missing_or_malformed_consumer_is_401(sandbox: Sandbox, consumer: object) -> None:
    token = sandbox.consent_token(sandbox.add_consent(), consumer=consumer)
    detail = "Tokenet mangler en gyldig consumer."
    assert await call(sandbox, sandbox.headers(token)) == (401, expect("004", f"{AUTHN} {detail}"))


async def test_a_consumer_sub_unit_identifies_the_org(sandbox: Sandbox) -> None:
    consumer = {"authority": "iso6523-actorid-upis", "ID": f"0192:{CONSUMER}:ER//987464291:1"}
    token = sandbox.token(sandbox.plain_claims(consumer=consumer))
    status, _ = await call(sandbox, sandbox.headers(token), url(package="arbeidstilsynet"))
    assert status == 200


async def test_authentication_comes_before_path_validation(sandbox: Sandbox) -> None:
    status, body = await call(sandbox, {}, url("12345"))
    assert (status, body["kode"]) == (401, "OPPDRAGUTENLANDSKEVIRKSOMHETER-004")


# 403 -005: authorisation


@pytest.mark.parametrize(
    "scope",
    [
        None,
        "",
        "altinn:consentrequests.read",
        "skatteetaten:oppdragutenlandskevirksomheter.read",
        "skatteetaten:oppdragutenlandskevirksomheter,altinn:x",
        ["skatteetaten:oppdragutenlandskevirksomheter"],
    ],
)
async def test_missing_scope_is_403_005(sandbox: Sandbox, scope: object) -> None:
    token = sandbox.consent_token(sandbox.add_consent(), scope=scope)
    detail = "Tokenet mangler scope skatteetaten:oppdragutenlandskevirksomheter."
    assert await call(sandbox, sandbox.headers(token)) == (403, expect("005", f"{AUTHZ} {detail}"))


async def test_scope_is_one_of_several(sandbox: Sandbox) -> None:
    scope = "altinn:consentrequests.read skatteetaten:oppdragutenlandskevirksomheter"
    status, _ = await call(
        sandbox, sandbox.headers(sandbox.consent_token(sandbox.add_consent(), scope=scope))
    )
    assert status == 200


async def test_consumer_without_the_rettighetspakke_is_403_005(sandbox: Sandbox) -> None:
    sandbox.state.withdraw_package(CONSUMER, "ebevis")
    detail = "Konsumenten har ikke rettighetspakken 'ebevis'."
    assert await call(sandbox, sandbox.authorised()) == (403, expect("005", f"{AUTHZ} {detail}"))
    sandbox.state.grant_package(CONSUMER, "ebevis")
    status, _ = await call(sandbox, sandbox.authorised())
    assert status == 200


# 400 -006: input validation


@pytest.mark.parametrize("orgnr", ["97476107", "9747610760", "97476107x", "123456789", "٩٧٤٧٦١٠٧٦"])
async def test_invalid_orgnr_is_400_006(sandbox: Sandbox, orgnr: str) -> None:
    detail = f"Ugyldig organisasjonsnummer: {orgnr!r}."
    status, body = await call(sandbox, sandbox.authorised(), url(orgnr))
    assert (status, body) == (400, expect("006", f"{INPUT} {detail}"))


async def test_mod11_check_can_be_switched_off() -> None:
    sandbox = make_sandbox(config=SkatteetatenConfig(issuer=ISSUER, check_orgnr_mod11=False))
    sandbox.state.set_fixture("123456789")
    token = sandbox.token(sandbox.plain_claims())
    status, body = await call(sandbox, sandbox.headers(token), url("123456789", "arbeidstilsynet"))
    assert (status, body["forespurteOrganisasjon"]) == (200, "123456789")
    status, _ = await call(sandbox, sandbox.headers(token), url("12345678", "arbeidstilsynet"))
    assert status == 400


async def test_unknown_rettighetspakke_is_400_006_by_default(sandbox: Sandbox) -> None:
    detail = "Rettighetspakken 'skatteplikt' er ugyldig."
    status, body = await call(sandbox, sandbox.authorised(), url(package="skatteplikt"))
    assert (status, body) == (400, expect("006", f"{INPUT} {detail}"))


async def test_unknown_rettighetspakke_as_403_005() -> None:
    config = SkatteetatenConfig(issuer=ISSUER, unknown_package=UnknownPackage.AUTHORISATION)
    sandbox = make_sandbox(config=config)
    detail = "Rettighetspakken 'skatteplikt' er ugyldig."
    status, body = await call(sandbox, sandbox.authorised(), url(package="skatteplikt"))
    assert (status, body) == (403, expect("005", f"{AUTHZ} {detail}"))


async def test_unknown_rettighetspakke_as_unknown_url() -> None:
    config = SkatteetatenConfig(issuer=ISSUER, unknown_package=UnknownPackage.UNKNOWN_URL)
    sandbox = make_sandbox(config=config)
    async with sandbox.client() as client:
        gateway = await client.get(url(package="x"), headers=sandbox.authorised())
        sandbox.state.switches.quirks.unknown_url_style = UnknownUrlStyle.FEIL
        coded = await client.get(url(package="x"), headers=sandbox.authorised())
    assert (gateway.status_code, gateway.text) == (404, "404 NOT FOUND")
    assert coded.status_code == 404
    assert json_body(coded)["kode"] == "OPPDRAGUTENLANDSKEVIRKSOMHETER-003"


# arbeidstilsynet: statutory, no consent


async def test_arbeidstilsynet_needs_no_consent(sandbox: Sandbox) -> None:
    token = sandbox.token(sandbox.plain_claims())
    status, _ = await call(sandbox, sandbox.headers(token), url(package="arbeidstilsynet"))
    assert status == 200


async def test_arbeidstilsynet_still_needs_the_package(sandbox: Sandbox) -> None:
    sandbox.state.withdraw_package(CONSUMER, "arbeidstilsynet")
    token = sandbox.token(sandbox.plain_claims())
    detail = "Konsumenten har ikke rettighetspakken 'arbeidstilsynet'."
    status, body = await call(sandbox, sandbox.headers(token), url(package="arbeidstilsynet"))
    assert (status, body) == (403, expect("005", f"{AUTHZ} {detail}"))
