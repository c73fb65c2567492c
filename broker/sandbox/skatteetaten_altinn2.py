"""The fake Skatteetaten's check of an Altinn 2 consent: the ``AltinnSamtykke`` header.

``skatteetaten.md`` §1.3, §4.3 and §6 ("A2 mode"): next to a plain Maskinporten bearer with the
API scope, the header carries an Altinn 2 consent JWT (``altinn-consent.md`` §3.1), signed by
Altinn's key set, with ``iss: altinn.no``, a valid ``nbf``/``exp`` (about 30 s), ``Services``
naming ``5616_2``, ``OfferedBy`` = the path's orgnr, ``CoveredBy`` = the token's consumer
(inferred, as DSOP documents) and ``ValidToDate`` in the future. Every failure is 403 ``-007``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.sandbox.jose import InvalidToken, verify_jwt
from broker.sandbox.skatteetaten_bodies import CONSENT, ErrorCode

__all__ = ["A2Refusal", "Altinn2View", "check_altinn2_consent", "code_hint", "services_of"]

_LEGACY_DATE = "%d.%m.%Y %H:%M:%S"  # older docs write the dates so (§3.1)
_SERVICE = re.compile(r"(\d+)[_,](\d+)")


@dataclass(frozen=True)
class Altinn2View:
    """What the fake needs from the fake Altinn 2: its public keys, and why a consent no longer
    holds (withdrawn, revoked, discarded, expired; None when it holds)."""

    jwks: Callable[[], Mapping[str, Any]]
    refusal: Callable[[str], str | None]


class A2Refusal(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.code: ErrorCode = CONSENT
        self.detail = detail


def services_of(claims: Mapping[str, Any]) -> set[str]:
    """Service keys (``5616_2``) named by ``Services`` (or the older ``ServiceCodes``, written
    ``"5616,2"``): a string or an array, metadata entries (``…=value``) left out."""
    raw = claims.get("Services", claims.get("ServiceCodes"))
    entries = raw if isinstance(raw, list) else [raw]
    found = set()
    for entry in entries:
        if isinstance(entry, str) and "=" not in entry and (m := _SERVICE.fullmatch(entry)):
            found.add(f"{m[1]}_{m[2]}")
    return found


def _instant(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.strptime(value, _LEGACY_DATE).replace(tzinfo=UTC)
        except ValueError:
            return None
    return None


def check_altinn2_consent(
    token: str,
    orgnr: str,
    consumer: str,
    *,
    view: Altinn2View | None,
    issuer: str,
    services: frozenset[str],
    require_covered_by_consumer: bool,
    check_register: bool,
    now: datetime,
    leeway: int,
) -> str:
    """The AuthorizationCode of a valid consent; raises ``A2Refusal`` otherwise."""
    if view is None:
        raise A2Refusal("Altinn 2-samtykke kan ikke kontrolleres.")
    try:
        claims = verify_jwt(token, view.jwks(), now=int(now.timestamp()), leeway=leeway)
    except InvalidToken as exc:
        raise A2Refusal(f"AltinnSamtykke er ugyldig ({exc.reason}).") from exc
    if claims.get("iss") != issuer:
        raise A2Refusal("AltinnSamtykke er ikke utstedt av Altinn.")
    if not services & services_of(claims):
        raise A2Refusal("Samtykket gjelder ikke denne tjenesten.")
    if claims.get("OfferedBy") != orgnr:
        raise A2Refusal("Samtykket er ikke gitt av den forespurte organisasjonen.")
    if require_covered_by_consumer and claims.get("CoveredBy") != consumer:
        raise A2Refusal("Samtykket er ikke gitt til konsumenten.")
    valid_to = _instant(claims.get("ValidToDate"))
    if valid_to is None or valid_to <= now:
        raise A2Refusal("Samtykket er utløpt.")
    code = claims.get("AuthorizationCode")
    if not isinstance(code, str) or not code:
        raise A2Refusal("Samtykket har ingen AuthorizationCode.")
    if check_register and (reason := view.refusal(code)) is not None:
        raise A2Refusal(f"Samtykket gjelder ikke lenger i Altinn ({reason}).")
    return code


def code_hint(token: str | None) -> str | None:
    """The AuthorizationCode an ``AltinnSamtykke`` token names, read without verification, for
    the call log only."""
    parts = token.split(".") if token else []
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    code = claims.get("AuthorizationCode") if isinstance(claims, dict) else None
    return code if isinstance(code, str) else None
