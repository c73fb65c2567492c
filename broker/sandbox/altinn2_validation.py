"""Binding and field rules of ``POST /api/consentRequests`` (``altinn-consent.md`` §2.1, §5.3).

Failures are Altinn 2's ``400 [{"errorCode", "errorDescription"}]``, one entry per broken
field, all reported at once. Property names bind case-insensitively, as ASP.NET's model binder
does. The codes are the sandbox's own (the reference names only the shape and one example,
``19023``), so a client must treat them as opaque; ``docs/sandbox.md`` lists them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from broker.sandbox.altinn2_config import Altinn2Config, ConsentService
from broker.sandbox.altinn2_state import A2Request, A2Resource
from broker.sandbox.orgnr import is_valid_orgnr
from broker.sandbox.parties import PartyRegistry, is_valid_fnr

__all__ = [
    "BAD_BODY",
    "BAD_COVERED_BY",
    "BAD_REDIRECT",
    "A2Error",
    "bind",
    "parse_datetime",
    "validate_create",
]


@dataclass(frozen=True)
class A2Error:
    code: str
    description: str

    def wire(self) -> dict[str, str]:
        return {"errorCode": self.code, "errorDescription": self.description}


BAD_BODY = "19000"
BAD_COVERED_BY = "19001"
BAD_OFFERED_BY = "19002"
BAD_OFFERED_BY_NAME = "19003"
BAD_VALID_TO = "19004"
BAD_REDIRECT = "19005"
NO_RESOURCES = "19006"
UNKNOWN_SERVICE = "19007"
BAD_METADATA = "19008"
MESSAGE_NOT_ALLOWED = "19009"
BAD_HANDLED_BY = "19010"
BAD_DELEGATOR = "19011"
BAD_VIEW_MODE = "19012"

_MESSAGE_LANGUAGES = frozenset({"no-nb", "no-nn", "en"})
_URL_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def bind(raw: bytes) -> dict[str, Any] | A2Error:
    """The body as a dict with lower-cased property names, or the error for a broken body."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return A2Error(BAD_BODY, "The request body is not valid JSON.")
    if not isinstance(body, dict):
        return A2Error(BAD_BODY, "The request body must be a JSON object.")
    return _lower(body)


def _lower(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()}


def parse_datetime(value: object, zone: ZoneInfo) -> datetime | None:
    """.NET-style date-time: ISO 8601, offset optional (naive means local time)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


@dataclass
class _Check:
    body: dict[str, Any]
    config: Altinn2Config
    parties: PartyRegistry
    now: datetime
    errors: list[A2Error]

    def fail(self, code: str, description: str) -> None:
        self.errors.append(A2Error(code, description))

    def text(self, name: str) -> str | None:
        value = self.body.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None


def validate_create(
    body: dict[str, Any], *, config: Altinn2Config, parties: PartyRegistry, now: datetime
) -> A2Request | list[A2Error]:
    """A new request from a bound body (lower-cased names), or every field error."""
    check = _Check(body, config, parties, now, [])
    covered_by = _covered_by(check)
    offered_by = _offered_by(check)
    handled_by = _org(check, "handledby", BAD_HANDLED_BY, required=False)
    delegator = _delegator(check)
    resources = _resources(check)
    valid_to = _valid_to(check, resources)
    redirect = _redirect(check)
    message = _message(check, resources)
    view_mode = _view_mode(check)
    if check.errors:
        return check.errors
    assert covered_by is not None
    assert offered_by is not None
    assert valid_to is not None
    assert redirect is not None
    assert resources is not None
    return A2Request(
        code=uuid.uuid4(),
        covered_by=covered_by,
        offered_by=offered_by,
        offered_by_name=check.text("offeredbyname") or "",
        handled_by=handled_by,
        required_delegator=delegator,
        valid_to=valid_to,
        redirect_url=redirect,
        resources=resources,
        request_message=message,
        portal_view_mode=view_mode,
        created=now,
        last_changed=now,
    )


def _org(check: _Check, name: str, code: str, *, required: bool) -> str | None:
    value = check.text(name)
    if value is None:
        if required or check.body.get(name) not in (None, ""):
            check.fail(code, f"{name} must be an organisation number.")
        return None
    if not is_valid_orgnr(value):
        check.fail(code, f"{name} is not a valid organisation number.")
        return None
    return value


def _covered_by(check: _Check) -> str | None:
    return _org(check, "coveredby", BAD_COVERED_BY, required=True)


def _offered_by(check: _Check) -> str | None:
    value = check.text("offeredby")
    if value is None or not (is_valid_orgnr(value) or is_valid_fnr(value)):
        check.fail(BAD_OFFERED_BY, "OfferedBy must be an organisation number or a fødselsnummer.")
        return None
    expected = _registered_name(check.parties, value)
    if expected is None:
        check.fail(BAD_OFFERED_BY, "OfferedBy is not a known party.")
        return None
    name = check.text("offeredbyname")
    if name is None:
        check.fail(BAD_OFFERED_BY_NAME, "OfferedByName is required.")
    elif check.config.check_offered_by_name and name.casefold() != expected.casefold():
        check.fail(BAD_OFFERED_BY_NAME, "OfferedByName does not match the registered name.")
    return value


def _registered_name(parties: PartyRegistry, party: str) -> str | None:
    """The organisation's name, or a person's surname (§2.1)."""
    if len(party) == 9:
        org = parties.organisation(party)
        return None if org is None else org.name
    person = parties.person(party)
    return None if person is None else person.name.split()[-1]


def _delegator(check: _Check) -> str | None:
    value = check.text("requireddelegator")
    if value is None:
        return None
    if not is_valid_fnr(value) or check.parties.person(value) is None:
        check.fail(BAD_DELEGATOR, "RequiredDelegator is not a known person.")
        return None
    name = check.text("requireddelegatorname")
    expected = _registered_name(check.parties, value)
    if name is not None and expected is not None and name.casefold() != expected.casefold():
        check.fail(BAD_DELEGATOR, "RequiredDelegatorName does not match the registered name.")
    return value


def _resources(check: _Check) -> list[A2Resource] | None:
    raw = check.body.get("requestresources")
    if not isinstance(raw, list) or not raw:
        check.fail(NO_RESOURCES, "RequestResources must name at least one service.")
        return None
    resources = []
    for index, entry in enumerate(raw):
        resource = _resource(check, index, entry)
        if resource is not None:
            resources.append(resource)
    return resources


def _service(check: _Check, entry: dict[str, Any]) -> ConsentService | None:
    code, edition = entry.get("servicecode"), entry.get("serviceeditioncode")
    key = f"{code}_{edition}" if isinstance(code, str | int) and isinstance(edition, int) else None
    return None if key is None else check.config.services.get(key)


def _resource(check: _Check, index: int, entry: object) -> A2Resource | None:
    if not isinstance(entry, dict):
        check.fail(UNKNOWN_SERVICE, f"RequestResources[{index}] must be an object.")
        return None
    bound = _lower(entry)
    service = _service(check, bound)
    if service is None:
        check.fail(UNKNOWN_SERVICE, f"RequestResources[{index}] is not a known consent service.")
        return None
    metadata = bound.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        check.fail(BAD_METADATA, f"RequestResources[{index}].Metadata must map text to text.")
        return None
    unknown = sorted(set(metadata) - set(service.metadata_keys))
    missing = sorted(set(service.metadata_keys) - set(metadata))
    empty = sorted(k for k, v in metadata.items() if not v.strip())
    for problem, keys in (("unknown", unknown), ("missing", missing), ("empty", empty)):
        if keys:
            check.fail(BAD_METADATA, f"RequestResources[{index}]: {problem} metadata {keys}.")
    return A2Resource(service, dict(metadata))


def _valid_to(check: _Check, resources: list[A2Resource] | None) -> datetime | None:
    value = parse_datetime(check.body.get("validto"), ZoneInfo(check.config.local_timezone))
    if value is None:
        check.fail(BAD_VALID_TO, "ValidTo must be a date and time.")
        return None
    days = min((r.service.max_valid_days for r in resources or ()), default=3 * 366)
    if value <= check.now:
        check.fail(BAD_VALID_TO, "ValidTo must be in the future.")
    elif value > check.now + timedelta(days=days):
        check.fail(BAD_VALID_TO, f"ValidTo may be at most {days} days ahead.")
    return value


def _redirect(check: _Check) -> str | None:
    value = check.text("redirecturl")
    parts = urlsplit(value) if value and not any(c.isspace() for c in value) else None
    scheme = parts.scheme.lower() if parts else ""
    absolute = parts is not None and (
        (scheme in ("http", "https") and bool(parts.hostname))
        or (scheme not in ("http", "https") and bool(_URL_SCHEME.fullmatch(scheme)))
    )
    if not absolute:
        check.fail(BAD_REDIRECT, "RedirectUrl must be an absolute URL.")
        return None
    return value


def _message(check: _Check, resources: list[A2Resource] | None) -> dict[str, str] | None:
    raw = check.body.get("requestmessage")
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict) or not all(
        k in _MESSAGE_LANGUAGES and isinstance(v, str) for k, v in raw.items()
    ):
        check.fail(MESSAGE_NOT_ALLOWED, "RequestMessage must map no-nb, no-nn or en to text.")
        return None
    if any(not r.service.request_message_allowed for r in resources or ()):
        check.fail(MESSAGE_NOT_ALLOWED, "The service does not allow a RequestMessage.")
    return dict(raw)


def _view_mode(check: _Check) -> str:
    raw = check.body.get("portalviewmode")
    if raw is None:
        return "Hide"  # the default (§2.1)
    if not isinstance(raw, str) or raw.lower() not in ("show", "hide"):
        check.fail(BAD_VIEW_MODE, "PortalViewMode must be Show or Hide.")
        return "Hide"
    return raw.capitalize()
