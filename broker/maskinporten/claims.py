"""Reading verified Maskinporten claims: parties and the Altinn 3 consent entry.

Parties come in two forms (``maskinporten.md`` §2.1; ``altinn-consent.md`` §3.2): ISO 6523
objects ``{"authority": "iso6523-actorid-upis", "ID": "0192:<orgnr>"}`` for ``consumer``,
``supplier`` and the consent's ``to``, and Altinn URNs
``urn:altinn:organization:identifier-no:<orgnr>`` for the consent's ``from``. Either form is
accepted wherever a party is read, since the two documents disagree on examples.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.consent.ports import ConsentToken
from broker.maskinporten.assertion import CONSENT_TYPE, ORG_URN
from broker.maskinporten.errors import TokenInvalid

__all__ = [
    "ISO6523_AUTHORITY",
    "ExpectedConsent",
    "TokenParties",
    "consent_token_from_claims",
    "iso6523_orgnr",
    "party_orgnr",
    "token_parties",
]

ISO6523_AUTHORITY = "iso6523-actorid-upis"
_NORWEGIAN_ICD = "0192"
_ORGNR = re.compile(r"[0-9]{9}")


def iso6523_orgnr(value: object) -> str | None:
    """The org number of ``{"authority": "iso6523-actorid-upis", "ID": "0192:<orgnr>"}``.

    Sub-units (``0192:<org>:ER//<sub>:1``) and other ICDs give None: Digdir says such IDs may
    come (§2.1), and an identity we do not understand must not be guessed at for access control.
    """
    if not isinstance(value, Mapping) or value.get("authority") != ISO6523_AUTHORITY:
        return None
    identifier = value.get("ID")
    if not isinstance(identifier, str):
        return None
    icd, _, orgnr = identifier.partition(":")
    return orgnr if icd == _NORWEGIAN_ICD and _ORGNR.fullmatch(orgnr) else None


def party_orgnr(value: object) -> str | None:
    """An org number from an ISO 6523 object or an Altinn organisation URN, else None."""
    if isinstance(value, str):
        orgnr = value.removeprefix(ORG_URN)
        return orgnr if orgnr != value and _ORGNR.fullmatch(orgnr) else None
    return iso6523_orgnr(value)


@dataclass(frozen=True)
class TokenParties:
    """Who a Maskinporten token is for: ``consumer`` (authorise on this) and, for a delegated
    token, the ``supplier`` that fetched it on the consumer's behalf."""

    consumer: str
    supplier: str | None


def token_parties(claims: Mapping[str, Any]) -> TokenParties:
    """The consumer and supplier org numbers of verified claims; TokenInvalid if unreadable."""
    consumer = iso6523_orgnr(claims.get("consumer"))
    if consumer is None:
        raise TokenInvalid("missing or unsupported consumer")
    supplier = None
    if claims.get("supplier") is not None:
        supplier = iso6523_orgnr(claims["supplier"])
        if supplier is None:
            raise TokenInvalid("unsupported supplier")
    return TokenParties(consumer, supplier)


@dataclass(frozen=True)
class ExpectedConsent:
    """What a consent token must say: the consent we asked for, between these parties."""

    consent_id: uuid.UUID
    subject_org: str
    requestor_org: str
    consumer_org: str | None  # set in vendor mode: the token's consumer must be the requestor


def consent_token_from_claims(
    token: str, claims: Mapping[str, Any], expected: ExpectedConsent
) -> ConsentToken:
    """Check the consent entry of verified claims against ``expected`` and read it.

    The API owner checks ``id``, ``from`` and ``to`` (``altinn-consent.md`` §3.2); the broker
    checks them too, so a mixed-up token is caught here rather than at Skatteetaten.
    """
    entry = _consent_entry(claims)
    if entry.get("id") != str(expected.consent_id):
        raise TokenInvalid("consent id mismatch")
    if party_orgnr(entry.get("from")) != expected.subject_org:
        raise TokenInvalid("consent subject mismatch")
    if party_orgnr(entry.get("to")) != expected.requestor_org:
        raise TokenInvalid("consent recipient mismatch")
    consumer = expected.consumer_org
    if consumer is not None and token_parties(claims).consumer != consumer:
        raise TokenInvalid("consumer mismatch")
    return ConsentToken(
        token=token,
        consent_id=expected.consent_id,
        subject_org=expected.subject_org,
        requestor_org=expected.requestor_org,
        resources=_resources(entry.get("consentRights")),
        valid_to=_instant(entry.get("validTo")),
        consented_at=_instant(entry.get("consented")),
        expires_at=_expiry(claims.get("exp")),
    )


def _consent_entry(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    details = claims.get("authorization_details")
    entries = [
        entry
        for entry in (details if isinstance(details, list) else [])
        if isinstance(entry, Mapping) and entry.get("type") == CONSENT_TYPE
    ]
    if len(entries) != 1:
        raise TokenInvalid("expected exactly one consent in the token")
    return entries[0]


def _resources(rights: object) -> tuple[str, ...]:
    if not isinstance(rights, list) or not rights:
        raise TokenInvalid("malformed consent rights")
    values: list[str] = []
    for right in rights:
        resources = right.get("resource") if isinstance(right, Mapping) else None
        if not isinstance(resources, list) or not resources:
            raise TokenInvalid("malformed consent rights")
        for resource in resources:
            value = resource.get("value") if isinstance(resource, Mapping) else None
            if not isinstance(value, str) or not value:
                raise TokenInvalid("malformed consent rights")
            values.append(value)
    return tuple(dict.fromkeys(values))


def _expiry(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid("missing exp")
    return datetime.fromtimestamp(value, UTC)


def _instant(value: object) -> datetime:
    # Altinn writes ISO 8601 with an offset and 0-7 fraction digits ("…34.836+00:00").
    if not isinstance(value, str):
        raise TokenInvalid("malformed consent time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TokenInvalid("malformed consent time") from exc
    if moment.tzinfo is None:
        raise TokenInvalid("malformed consent time")
    return moment.astimezone(UTC)
