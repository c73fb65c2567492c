"""The checks the fake Skatteetaten runs on a call, each failure a ``Refusal`` with its code.

Token: ``maskinporten.md`` §2.2 (issuer, RS256 signature against the Maskinporten JWKS, expiry,
space-separated scope, ``consumer``); ``skatteetaten.md`` §1.3 (``aud`` unspecified), §6
(401 -004, 403 -005, 400 -006). Consent (Altinn 3): ``skatteetaten.md`` §4.4/§6,
``altinn-consent.md`` §3.2/§6.4 (403 -007).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from broker.sandbox.consents import ORG_URN, ConsentRegister, ConsentStatus
from broker.sandbox.jose import InvalidToken, verify_jwt
from broker.sandbox.orgnr import is_valid_orgnr
from broker.sandbox.skatteetaten_altinn2 import A2Refusal, Altinn2View, check_altinn2_consent
from broker.sandbox.skatteetaten_bodies import (
    AUTHENTICATION,
    AUTHORISATION,
    CONSENT,
    INPUT_VALIDATION,
    UNKNOWN_URL,
    ErrorCode,
    is_uuid,
)
from broker.sandbox.skatteetaten_config import (
    A3_RESOURCES,
    API_SCOPE,
    KNOWN_PACKAGES,
    ConsentMode,
    SkatteetatenConfig,
    UnknownPackage,
)

__all__ = [
    "CONSENT_TYPE",
    "ISO6523",
    "Caller",
    "Refusal",
    "authenticate",
    "check_consent",
    "check_path",
    "consent_id_hint",
    "require_scope",
]

ISO6523 = "iso6523-actorid-upis"
CONSENT_TYPE = "urn:altinn:consent"
_RESOURCE_TYPE = "urn:altinn:resource"
_TOKEN_REASONS = {
    "malformed token": "Tokenet kan ikke leses.",
    "unsupported alg": "Tokenet er ikke signert med RS256.",
    "unknown kid": "Tokenet er signert med en ukjent nøkkel.",
    "bad signature": "Tokenets signatur er ugyldig.",
    "expired": "Tokenet er utløpt.",
    "not yet valid": "Tokenet er ikke gyldig ennå.",
}


class Refusal(Exception):
    """A failed check: the error code plus a precise, varying ``melding`` (§3.1)."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.melding = f"{code.melding} {detail}"


@dataclass(frozen=True)
class Caller:
    consumer: str  # the consumer's organisation number
    consumer_id: str  # the ISO 6523 ``ID`` as in the token, e.g. ``0192:313876144``
    claims: Mapping[str, Any]


def authenticate(
    authorization: list[str], jwks: Mapping[str, Any], *, config: SkatteetatenConfig, now: int
) -> Caller:
    token = _bearer_token(authorization)
    try:
        claims = verify_jwt(token, jwks, now=now, leeway=config.leeway_seconds)
    except InvalidToken as exc:
        raise Refusal(AUTHENTICATION, _TOKEN_REASONS.get(exc.reason, "Ugyldig token.")) from exc
    if claims.get("iss") != config.issuer:
        raise Refusal(AUTHENTICATION, "Tokenet er ikke utstedt av Maskinporten.")
    _check_audience(claims.get("aud"), config.accepted_audiences)
    consumer_id = _consumer_id(claims.get("consumer"))
    return Caller(consumer_id.split(":")[1], consumer_id, claims)


def _bearer_token(authorization: list[str]) -> str:
    if not authorization:
        raise Refusal(AUTHENTICATION, "Authorization-header mangler.")
    if len(authorization) > 1:
        raise Refusal(AUTHENTICATION, "Flere Authorization-headere er sendt.")
    scheme, _, token = authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Refusal(AUTHENTICATION, "Authorization-header må være 'Bearer <token>'.")
    return token


def _check_audience(aud: object, accepted: frozenset[str] | None) -> None:
    if accepted is None or aud is None:
        return
    values = aud if isinstance(aud, list) else [aud]
    if not values or any(value not in accepted for value in values):
        raise Refusal(AUTHENTICATION, "Tokenet har feil audience (aud).")


def _consumer_id(consumer: object) -> str:
    if isinstance(consumer, dict) and consumer.get("authority") == ISO6523:
        value = consumer.get("ID")
        # Sub-units may add more elements after the orgnr (maskinporten.md §2.1).
        parts = value.split(":") if isinstance(value, str) else []
        if len(parts) >= 2 and parts[0] == "0192" and _nine_digits(parts[1]):
            return str(value)
    raise Refusal(AUTHENTICATION, "Tokenet mangler en gyldig consumer.")


def require_scope(caller: Caller) -> None:
    scope = caller.claims.get("scope")
    if not isinstance(scope, str) or API_SCOPE not in scope.split(" "):
        raise Refusal(AUTHORISATION, f"Tokenet mangler scope {API_SCOPE}.")


def check_path(package: str, orgnr: str, *, config: SkatteetatenConfig) -> None:
    if package not in KNOWN_PACKAGES:
        _refuse_unknown_package(package, config.unknown_package)
    valid = is_valid_orgnr(orgnr) if config.check_orgnr_mod11 else _nine_digits(orgnr)
    if not valid:
        raise Refusal(INPUT_VALIDATION, f"Ugyldig organisasjonsnummer: {orgnr!r}.")


def _refuse_unknown_package(package: str, answer: UnknownPackage) -> None:
    detail = f"Rettighetspakken {package!r} er ugyldig."
    if answer is UnknownPackage.INPUT_VALIDATION:
        raise Refusal(INPUT_VALIDATION, detail)
    if answer is UnknownPackage.AUTHORISATION:
        raise Refusal(AUTHORISATION, detail)
    if answer is UnknownPackage.UNKNOWN_URL:
        raise Refusal(UNKNOWN_URL, detail)
    assert_never(answer)


def _nine_digits(value: str) -> bool:
    return len(value) == 9 and value.isascii() and value.isdigit()


def check_consent(
    caller: Caller,
    orgnr: str,
    *,
    config: SkatteetatenConfig,
    register: ConsentRegister,
    now: datetime,
    altinn_samtykke: str | None,
    altinn2: Altinn2View | None = None,
) -> None:
    mode = config.consent_mode
    reject_mixed = config.reject_altinn_samtykke_header
    if mode is ConsentMode.A3_ONLY:
        if altinn_samtykke is not None and reject_mixed:
            raise Refusal(CONSENT, "AltinnSamtykke kan ikke sendes sammen med Altinn 3-samtykke.")
        _check_a3_consent(caller, orgnr, config=config, register=register, now=now)
        return
    if altinn_samtykke is not None and reject_mixed and _has_consent_entry(caller.claims):
        raise Refusal(CONSENT, "AltinnSamtykke kan ikke sendes sammen med Altinn 3-samtykke.")
    if mode is ConsentMode.A2_ONLY or altinn_samtykke is not None:
        if altinn_samtykke is None:
            raise Refusal(CONSENT, "AltinnSamtykke mangler.")
        _check_a2_consent(caller, orgnr, altinn_samtykke, config=config, view=altinn2, now=now)
        return
    if mode is ConsentMode.BOTH:
        _check_a3_consent(caller, orgnr, config=config, register=register, now=now)
        return
    assert_never(mode)


def _check_a2_consent(
    caller: Caller,
    orgnr: str,
    token: str,
    *,
    config: SkatteetatenConfig,
    view: Altinn2View | None,
    now: datetime,
) -> None:
    try:
        check_altinn2_consent(
            token,
            orgnr,
            caller.consumer,
            view=view,
            issuer=config.altinn2_issuer,
            services=config.altinn2_services,
            require_covered_by_consumer=config.require_consent_to_consumer,
            check_register=config.check_consent_register,
            now=now,
            leeway=config.leeway_seconds,
        )
    except A2Refusal as refusal:
        raise Refusal(refusal.code, refusal.detail) from refusal


def _has_consent_entry(claims: Mapping[str, Any]) -> bool:
    details = claims.get("authorization_details")
    return any(
        isinstance(entry, dict) and entry.get("type") == CONSENT_TYPE
        for entry in (details if isinstance(details, list) else [])
    )


def _check_a3_consent(
    caller: Caller,
    orgnr: str,
    *,
    config: SkatteetatenConfig,
    register: ConsentRegister,
    now: datetime,
) -> None:
    entry = _consent_entry(caller.claims)
    if entry.get("from") != ORG_URN + orgnr:
        raise Refusal(CONSENT, "Samtykket er ikke gitt av den forespurte organisasjonen.")
    if config.require_consent_to_consumer and not _is_party(entry.get("to"), caller.consumer_id):
        raise Refusal(CONSENT, "Samtykket er ikke gitt til konsumenten.")
    if _valid_to(entry.get("validTo")) <= now:
        raise Refusal(CONSENT, "Samtykket er utløpt.")
    if not A3_RESOURCES & _resources(entry.get("consentRights")):
        raise Refusal(CONSENT, "Samtykket gjelder ikke denne tjenesten.")
    consent_id = _uuid(entry.get("id"))
    if config.check_consent_register:
        _check_register(register, consent_id, now)


def _consent_entry(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    details = claims.get("authorization_details")
    entries = [
        entry
        for entry in (details if isinstance(details, list) else [])
        if isinstance(entry, dict) and entry.get("type") == CONSENT_TYPE
    ]
    if not entries:
        raise Refusal(CONSENT, "Tokenet inneholder ikke noe samtykke.")
    if len(entries) > 1:
        raise Refusal(CONSENT, "Tokenet inneholder mer enn ett samtykke.")
    return entries[0]


def _is_party(party: object, consumer_id: str) -> bool:
    return (
        isinstance(party, dict)
        and party.get("authority") == ISO6523
        and party.get("ID") == consumer_id
    )


def _valid_to(value: object) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Refusal(CONSENT, "Samtykket har ugyldig validTo.")
    return moment


def _resources(rights: object) -> set[str]:
    found: set[str] = set()
    for right in rights if isinstance(rights, list) else []:
        resources = right.get("resource") if isinstance(right, dict) else None
        for resource in resources if isinstance(resources, list) else []:
            if isinstance(resource, dict) and resource.get("type") == _RESOURCE_TYPE:
                found.add(str(resource.get("value")))
    return found


def _uuid(value: object) -> uuid.UUID:
    if not isinstance(value, str) or not is_uuid(value):
        raise Refusal(CONSENT, "Samtykket har ugyldig id.")
    return uuid.UUID(value)


def _check_register(register: ConsentRegister, consent_id: uuid.UUID, now: datetime) -> None:
    record = register.get(consent_id)
    if record is None:
        raise Refusal(CONSENT, "Samtykket finnes ikke i Altinn.")
    if record.status is not ConsentStatus.ACCEPTED:
        raise Refusal(CONSENT, f"Samtykket har status {record.status}.")
    if record.is_expired(now):
        raise Refusal(CONSENT, "Samtykket er utløpt.")


def consent_id_hint(caller: Caller | None) -> str | None:
    """The consent id a token names, for the call log, whether or not the consent holds."""
    details = caller.claims.get("authorization_details") if caller else None
    for entry in details if isinstance(details, list) else []:
        if isinstance(entry, dict) and entry.get("type") == CONSENT_TYPE:
            consent_id = entry.get("id")
            return consent_id if isinstance(consent_id, str) else None
    return None
