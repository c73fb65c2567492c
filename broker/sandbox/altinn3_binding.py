"""Model binding of ``ConsentRequestDto``: JSON body to typed input, as ASP.NET would bind it.

Binding happens before the controller runs, so a malformed body is a 400 even for a caller that
would later get a 403. Property names bind case-insensitively (so ``metaData`` binds to
``metadata``), unknown properties are ignored, and a party URN must carry a number with valid
mod-11 check digits (``../shared/reference/altinn-consent.md`` §2.2). The shape of a binding
failure (``STD-00000`` with one ``STD.VLD`` error) is inferred: the reference does not show one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.sandbox.altinn3_problems import VLD, ValidationError
from broker.sandbox.consents import ORG_URN, PERSON_URN
from broker.sandbox.orgnr import is_valid_orgnr
from broker.sandbox.parties import is_valid_fnr

__all__ = ["BindingError", "ConsentRequestInput", "PartyUrn", "RightInput", "bind_request"]

_REQUIRED = ("id", "from", "to", "validTo", "consentRights", "redirectUrl")


class BindingError(Exception):
    def __init__(self, error: ValidationError) -> None:
        super().__init__(error.detail or error.title)
        self.error = error


@dataclass(frozen=True)
class PartyUrn:
    is_org: bool
    number: str

    @property
    def urn(self) -> str:
        return (ORG_URN if self.is_org else PERSON_URN) + self.number


@dataclass(frozen=True)
class RightInput:
    action: list[str]
    resource: list[dict[str, str]]
    metadata: dict[str, str | None] | None

    def wire(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "metadata": self.metadata}


@dataclass(frozen=True)
class ConsentRequestInput:
    id: uuid.UUID
    from_party: PartyUrn
    to_party: PartyUrn
    required_delegator: PartyUrn | None
    valid_to: datetime
    consent_rights: list[RightInput]
    request_message: dict[str, str] | None
    redirect_url: str
    portal_view_mode: str  # "Hide" | "Show"


def _fail(path: str, detail: str) -> BindingError:
    return BindingError(VLD.JSON_ERROR.at(path, detail))


def _folded(obj: dict[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in obj.items()}


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "The JSON value could not be converted to an object.")
    return _folded(value)


def _require(obj: dict[str, Any], names: tuple[str, ...], path: str, type_name: str) -> None:
    missing = [name for name in names if name.lower() not in obj]
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        detail = f"JSON deserialization for type '{type_name}' was missing required properties"
        raise _fail(path or "/", f"{detail} including: {listed}.")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "The JSON value could not be converted to System.String.")
    return value


def _metadata(value: Any, path: str) -> dict[str, str | None] | None:
    """Like .NET's ``Dictionary<string, string>``, which admits null values (``AM-00007``)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
        raise _fail(path, "The JSON value could not be converted to a string dictionary.")
    return dict(value)


def _messages(value: Any, path: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail(path, "The JSON value could not be converted to a string dictionary.")
    return dict(value)


def parse_party(value: Any, path: str) -> PartyUrn:
    text = _string(value, path)
    if text.startswith(ORG_URN) and is_valid_orgnr(text[len(ORG_URN) :]):
        return PartyUrn(True, text[len(ORG_URN) :])
    if text.startswith(PERSON_URN) and is_valid_fnr(text[len(PERSON_URN) :]):
        return PartyUrn(False, text[len(PERSON_URN) :])
    raise _fail(path, "The JSON value could not be converted to ConsentPartyUrn.")


def _guid(value: Any, path: str) -> uuid.UUID:
    try:
        return uuid.UUID(_string(value, path))
    except ValueError:
        raise _fail(path, "The JSON value could not be converted to System.Guid.") from None


def parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _datetime(value: Any, path: str) -> datetime:
    parsed = parse_time(_string(value, path))
    if parsed is None:
        raise _fail(path, "The JSON value could not be converted to System.DateTimeOffset.")
    return parsed


def _view_mode(value: Any, path: str) -> str:
    if value is None:
        return "Hide"
    mode = _string(value, path).lower()
    if mode not in ("hide", "show"):
        raise _fail(path, "The JSON value could not be converted to ConsentPortalViewMode.")
    return mode.capitalize()


def _resource(value: Any, path: str) -> dict[str, str]:
    obj = _object(value, path)
    _require(obj, ("type", "value"), path, "ConsentResourceAttributeDto")
    return {
        "type": _string(obj["type"], f"{path}/type"),
        "value": _string(obj["value"], f"{path}/value"),
    }


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, "The JSON value could not be converted to a list.")
    return value


def _right(value: Any, path: str) -> RightInput:
    obj = _object(value, path)
    _require(obj, ("action", "resource"), path, "ConsentRightDto")
    actions = [_string(a, f"{path}/action/{i}") for i, a in enumerate(_list(obj["action"], path))]
    resources = _list(obj["resource"], f"{path}/resource")
    return RightInput(
        action=actions,
        resource=[_resource(r, f"{path}/resource/{i}") for i, r in enumerate(resources)],
        metadata=_metadata(obj.get("metadata"), f"{path}/metadata"),
    )


def bind_request(raw: bytes) -> ConsentRequestInput:
    """Parse the body or raise :class:`BindingError` with the first problem found."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _fail("/", "The request body is not valid JSON.") from None
    obj = _object(document, "/")
    _require(obj, _REQUIRED, "", "ConsentRequestDto")
    rights = _list(obj["consentrights"], "/consentRights")
    delegator = obj.get("requireddelegator")
    return ConsentRequestInput(
        id=_guid(obj["id"], "/id"),
        from_party=parse_party(obj["from"], "/from"),
        to_party=parse_party(obj["to"], "/to"),
        required_delegator=None
        if delegator is None
        else parse_party(delegator, "/requiredDelegator"),
        valid_to=_datetime(obj["validto"], "/validTo"),
        consent_rights=[_right(r, f"/consentRights/{i}") for i, r in enumerate(rights)],
        request_message=_messages(obj.get("requestmessage"), "/requestMessage"),
        redirect_url=_string(obj["redirecturl"], "/redirectUrl"),
        portal_view_mode=_view_mode(obj.get("portalviewmode"), "/portalViewMode"),
    )
