"""Altinn 2's consent API on the wire: the request body out, the request, errors and the consent
token's claims in (``shared/reference/altinn-consent.md`` §2.1, §3.1, §4.1, §5.3).

Reading is tolerant where the sources disagree: property names in any case (the help page shows
camelCase, the OAS PascalCase), ``Services`` as a string or an array (or the older
``ServiceCodes`` written ``"5616,2"``), dates as epoch seconds or the older
``dd.MM.yyyy HH:mm:ss``, errors as ``errorCode``/``errorDescription`` or data.altinn.no's
``ErrorCode``/``ErrorMessage``. What the broker relies on is strict: a missing or malformed
code, party, status or date raises :class:`WireError`. No HTTP here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from broker.altinn.schemas import WireError
from broker.consent.ports import AltinnRequest, AltinnState, AltinnStatus, ConsentToken

__all__ = [
    "OSLO",
    "A2Error",
    "A2Request",
    "ServiceEdition",
    "create_body",
    "parse_errors",
    "parse_request",
    "token_from_claims",
]

OSLO = ZoneInfo("Europe/Oslo")
_ORGNR = re.compile(r"\d{9}")
_SERVICE = re.compile(r"(\d+)[_,](\d+)")
_LEGACY_DATE = "%d.%m.%Y %H:%M:%S"
_STATUSES = {
    "unopened": AltinnStatus.CREATED,
    "opened": AltinnStatus.CREATED,
    "accepted": AltinnStatus.ACCEPTED,
    "rejected": AltinnStatus.REJECTED,
}
_TEXT_LIMIT = 200


@dataclass(frozen=True)
class ServiceEdition:
    """An Altinn 2 service edition, e.g. ``5616_2`` (ServiceCode 5616, ServiceEditionCode 2)."""

    code: str
    edition: int

    @classmethod
    def parse(cls, value: str) -> ServiceEdition:
        match = _SERVICE.fullmatch(value.strip())
        if not match:
            raise ValueError("a service edition is written like 5616_2")
        return cls(match[1], int(match[2]))

    @property
    def key(self) -> str:
        return f"{self.code}_{self.edition}"


@dataclass(frozen=True)
class A2Request:
    """What the broker reads of an Altinn 2 consent request."""

    state: AltinnState
    gui: str | None  # ``_links.gui.href``, present when asked for with HAL


@dataclass(frozen=True)
class A2Error:
    code: str
    description: str


def _valid_to_text(valid_to: datetime) -> str:
    """``ValidTo`` in Norwegian local time with its offset, to the second. A time in the hour
    that occurs twice when summer time ends moves an hour earlier, so that the naive local time
    Altinn 2 answers with reads back unambiguously."""
    if valid_to.utcoffset() is None:
        raise ValueError("valid_to must carry a UTC offset")
    local = valid_to.astimezone(OSLO).replace(microsecond=0)
    naive = local.replace(tzinfo=None)
    if (
        naive.replace(tzinfo=OSLO, fold=0).utcoffset()
        != naive.replace(tzinfo=OSLO, fold=1).utcoffset()
    ):
        local = (local - timedelta(hours=1)).astimezone(OSLO)
    return local.isoformat()


def create_body(
    request: AltinnRequest,
    *,
    service: ServiceEdition,
    subject_name: str,
    requestor_name: str,
    handled_by: str | None,
) -> dict[str, Any]:
    """The ``ConsentRequest`` for ``POST /api/consentRequests`` (§2.1). No ``RequestMessage``:
    Skatteetaten forbids one; the metadata is what data.altinn.no sends for 5616 (§1.3)."""
    body: dict[str, Any] = {
        "CoveredBy": request.requestor_org,
        "OfferedBy": request.subject_org,
        "OfferedByName": subject_name,
        "ValidTo": _valid_to_text(request.valid_to),
        "RedirectUrl": request.redirect_url,
        "RequestResources": [
            {
                "ServiceCode": service.code,
                "ServiceEditionCode": service.edition,
                "Metadata": {"requestor": request.requestor_org, "requestorName": requestor_name},
            }
        ],
        "PortalViewMode": "Hide",
    }
    if handled_by is not None:
        body["HandledBy"] = handled_by
    return body


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireError(f"{name} is not an object")
    return {str(key).lower(): item for key, item in value.items()}


def _orgnr(obj: Mapping[str, Any], key: str, name: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _ORGNR.fullmatch(value):
        raise WireError(f"{name} is not an organisation number")
    return value


def _code(value: Any, name: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise WireError(f"{name} is not a GUID")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WireError(f"{name} is not a GUID") from None


def _local_time(value: Any, name: str) -> datetime:
    """A .NET date-time: with an offset, or naive Norwegian local time."""
    if not isinstance(value, str):
        raise WireError(f"{name} is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"{name} is not a date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=OSLO)
    return moment.astimezone(UTC)


def _services(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise WireError("RequestResources is not a list")
    keys = []
    for i, entry in enumerate(raw):
        resource = _object(entry, f"RequestResources[{i}]")
        code, edition = resource.get("servicecode"), resource.get("serviceeditioncode")
        if not isinstance(code, str | int) or not isinstance(edition, int | str):
            raise WireError(f"RequestResources[{i}] has no service")
        keys.append(f"{code}_{edition}")
    return tuple(keys)


def parse_request(body: Any, *, now: datetime) -> A2Request:
    """``GET``/``POST /api/consentRequests`` answers. ``status`` is EXPIRED once ``ValidTo``
    has passed, whatever ``RequestStatus`` says: Altinn 2 keeps ``Accepted`` (§4.1)."""
    obj = _object(body, "consent request")
    raw_status = str(obj.get("requeststatus", "")).lower()
    status = _STATUSES.get(raw_status)
    if status is None:
        raise WireError("RequestStatus is unknown")
    valid_to = _local_time(obj.get("validto"), "ValidTo")
    if valid_to <= now:
        status = AltinnStatus.EXPIRED
    state = AltinnState(
        id=_code(obj.get("authorizationcode"), "AuthorizationCode"),
        status=status,
        subject_org=_orgnr(obj, "offeredby", "OfferedBy"),
        requestor_org=_orgnr(obj, "coveredby", "CoveredBy"),
        resources=_services(obj.get("requestresources")),
        valid_to=valid_to,
        consented_at=None,
    )
    links = obj.get("_links")
    gui = None
    if isinstance(links, dict) and isinstance(links.get("gui"), dict):
        href = links["gui"].get("href")
        gui = href if isinstance(href, str) and href.startswith(("https://", "http://")) else None
    return A2Request(state, gui)


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text if c.isprintable())[:_TEXT_LIMIT]


def parse_errors(body: Any) -> list[A2Error]:
    """``400 [{"errorCode", "errorDescription"}]`` (or ``ErrorCode``/``ErrorMessage``)."""
    entries = body if isinstance(body, list) else [body]
    errors = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        obj = {str(k).lower(): v for k, v in entry.items()}
        code = obj.get("errorcode")
        if isinstance(code, str | int) and str(code).strip():
            description = obj.get("errordescription", obj.get("errormessage"))
            errors.append(A2Error(_clip(str(code)), _clip(description)))
    return errors


def _services_claim(claims: Mapping[str, Any]) -> tuple[str, ...]:
    raw = claims.get("Services", claims.get("ServiceCodes"))
    entries = raw if isinstance(raw, list) else [raw]
    found = []
    for entry in entries:
        if isinstance(entry, str) and "=" not in entry and (m := _SERVICE.fullmatch(entry)):
            found.append(f"{m[1]}_{m[2]}")
    return tuple(dict.fromkeys(found))


def _instant(claims: Mapping[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            # The older docs' form carries no zone; Altinn 2 is Norwegian local time.
            return datetime.strptime(value, _LEGACY_DATE).replace(tzinfo=OSLO).astimezone(UTC)
        except ValueError:
            pass
    raise WireError(f"{name} is not a date")


def token_from_claims(
    token: str,
    claims: Mapping[str, Any],
    *,
    consent_id: uuid.UUID,
    subject_org: str,
    requestor_org: str,
    service: ServiceEdition,
) -> ConsentToken:
    """A verified consent token's claims, checked against the request: the code, ``OfferedBy``
    (the supplier), ``CoveredBy`` (the contracting authority) and the service (§3.1)."""
    if claims.get("AuthorizationCode") != str(consent_id):
        raise WireError("AuthorizationCode is not the request's")
    if claims.get("OfferedBy") != subject_org:
        raise WireError("OfferedBy is not the request's subject")
    if claims.get("CoveredBy") != requestor_org:
        raise WireError("CoveredBy is not the request's requestor")
    services = _services_claim(claims)
    if service.key not in services:
        raise WireError("Services does not name the service")
    return ConsentToken(
        token=token,
        consent_id=consent_id,
        subject_org=subject_org,
        requestor_org=requestor_org,
        resources=services,
        valid_to=_instant(claims, "ValidToDate"),
        consented_at=_instant(claims, "DelegatedDate"),
        expires_at=_instant(claims, "exp"),
    )
