"""Altinn 2 grants migrated to Altinn 3: read an operator's export, check it, import it.

Digdir migrated the Altinn 2 consents to Altinn 3: each keeps its AuthorizationCode as its
Altinn 3 id, under the resource ``digdir_5616_2``, with lower-cased metadata keys
(``altinn-consent.md`` §3.2, §6.5; data.altinn.no relies on it, §1.3). An imported grant is
therefore an ordinary Altinn 3 grant of the client: the relay asks Maskinporten for a consent
token with ``authorization_details.id`` = the old code. The code stays a secret (the Altinn 2
API may still take it): it is stored encrypted, as for Altinn 2 requests.

The file is JSON Lines or a JSON array of objects: the Altinn 2 API's own request objects (as
``GET /api/consentRequests`` returns them; unknown members are ignored) or the short form
``{"authorization_code", "requestor", "subject", "valid_to"}``; names in any case. Each needs
the code, ``CoveredBy``/``requestor``, ``OfferedBy``/``subject`` and ``ValidTo``/``valid_to``
(with an offset, or naive Norwegian local time as Altinn 2 writes it); optional are
``DelegatedDate``/``consented_at``, ``reference`` and ``external_reference``. A
``RequestStatus`` other than Accepted, or ``RequestResources`` without 5616/2, is refused.

Import is all or nothing: any problem in the file, or (with verification) any grant that
Maskinporten will not give a token for, stops it, unless the operator asks to skip those.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from broker.consent.identifiers import is_valid_orgnr
from broker.consent.model import (
    Caller,
    ConsentRequest,
    Generation,
    Grant,
    Language,
    State,
)
from broker.consent.ports import (
    ConsentTokens,
    ConsentUnavailable,
    UnitOfWork,
    UpstreamRefused,
)
from broker.consent.service import audit_transition

__all__ = ["ImportReport", "MigratedGrant", "MigratedGrants", "parse_grants"]

OSLO = ZoneInfo("Europe/Oslo")
DEFAULT_REFERENCE = "Migrated from Altinn 2"
_ALIASES = {
    "code": ("authorizationcode", "authorization_code"),
    "requestor": ("coveredby", "requestor"),
    "subject": ("offeredby", "subject"),
    "valid_to": ("validto", "valid_to"),
    "consented_at": ("delegateddate", "consented_at"),
    "reference": ("reference",),
    "external_reference": ("external_reference", "externalreference"),
}


@dataclass(frozen=True)
class MigratedGrant:
    line: int
    code: uuid.UUID = field(repr=False)
    requestor: str
    subject: str
    valid_to: datetime
    consented_at: datetime | None
    reference: str
    external_reference: str | None


@dataclass(frozen=True)
class ImportReport:
    imported: int  # or, in a dry run, would be
    skipped: int  # already imported before
    problems: tuple[str, ...]  # "line N: …", never a code


class _Bad(ValueError):
    pass


def _records(text: str) -> list[tuple[int, Any]]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            raise _Bad("line 1: the file is not a valid JSON array") from None
        return list(enumerate(items if isinstance(items, list) else [items], start=1))
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append((number, json.loads(line)))
            except ValueError:
                records.append((number, _Bad("not a JSON object")))
    return records


def _field(record: Mapping[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        if alias in record:
            return record[alias]
    return None


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise _Bad(f"{name} is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{name} is not a date-time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=OSLO)).astimezone(UTC)


def _org(record: Mapping[str, Any], name: str) -> str:
    value = _field(record, name)
    if not isinstance(value, str) or not is_valid_orgnr(value):
        raise _Bad(f"{name} is not a valid organisation number")
    return value


def _text(value: Any, name: str, *, default: str | None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise _Bad(f"{name} must be 1-200 characters")
    if any(not c.isprintable() for c in value):
        raise _Bad(f"{name} has control characters")
    return value


def _check_altinn2_fields(record: Mapping[str, Any], service: tuple[str, int]) -> None:
    status = record.get("requeststatus")
    if status is not None and str(status).lower() != "accepted":
        raise _Bad("RequestStatus is not Accepted")
    resources = record.get("requestresources")
    if resources is None:
        return
    named = set()
    for resource in resources if isinstance(resources, list) else []:
        if isinstance(resource, dict):
            lowered = {str(k).lower(): v for k, v in resource.items()}
            named.add((str(lowered.get("servicecode")), lowered.get("serviceeditioncode")))
    if service not in named:
        raise _Bad(f"RequestResources does not name {service[0]}/{service[1]}")


def _grant(line: int, raw: Any, *, now: datetime, service: tuple[str, int]) -> MigratedGrant:
    if isinstance(raw, _Bad):
        raise raw
    if not isinstance(raw, dict):
        raise _Bad("not a JSON object")
    record = {str(k).lower(): v for k, v in raw.items()}
    _check_altinn2_fields(record, service)
    try:
        code = uuid.UUID(str(_field(record, "code")))
    except ValueError:
        raise _Bad("the AuthorizationCode is not a GUID") from None
    requestor, subject = _org(record, "requestor"), _org(record, "subject")
    if requestor == subject:
        raise _Bad("requestor and subject are the same organisation")
    valid_to = _instant(_field(record, "valid_to"), "valid_to")
    if valid_to <= now:
        raise _Bad("the grant has expired")
    consented = _field(record, "consented_at")
    return MigratedGrant(
        line=line,
        code=code,
        requestor=requestor,
        subject=subject,
        valid_to=valid_to,
        consented_at=None if consented is None else _instant(consented, "consented_at"),
        reference=_text(record.get("reference"), "reference", default=DEFAULT_REFERENCE) or "",
        external_reference=_text(
            _field(record, "external_reference"), "external_reference", default=None
        ),
    )


def parse_grants(
    text: str, *, now: datetime, service: tuple[str, int] = ("5616", 2)
) -> tuple[list[MigratedGrant], list[str]]:
    """The grants of a file, and a problem per bad line (``"line N: ..."``)."""
    try:
        records = _records(text)
    except _Bad as exc:
        return [], [str(exc)]
    grants: list[MigratedGrant] = []
    problems: list[str] = []
    seen: dict[uuid.UUID, int] = {}
    for line, raw in records:
        try:
            grant = _grant(line, raw, now=now, service=service)
        except _Bad as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if grant.code in seen:
            problems.append(f"line {line}: the same code as line {seen[grant.code]}")
            continue
        seen[grant.code] = line
        grants.append(grant)
    if not records:
        problems.append("line 1: the file holds no grants")
    return grants, problems


@dataclass(frozen=True)
class _Checked:
    grant: MigratedGrant
    valid_to: datetime
    consented_at: datetime
    receipt: bytes


class MigratedGrants:
    """Imports grants for one client through the Altinn 3 path (``resource`` digdir_5616_2).
    With ``tokens`` (Maskinporten), each grant is verified first: the consent token proves the
    migration happened, names the resource, and its first copy is kept as the receipt."""

    def __init__(
        self,
        units: Callable[[], UnitOfWork],
        *,
        tokens: ConsentTokens | None,
        resource: str,
        now: Callable[[], datetime],
    ) -> None:
        self._units = units
        self._tokens = tokens
        self._resource = resource
        self._now = now

    async def run(
        self,
        caller: Caller,
        grants: list[MigratedGrant],
        *,
        verify: bool = True,
        skip_invalid: bool = False,
        dry_run: bool = False,
    ) -> ImportReport:
        if not caller.return_urls:
            raise ValueError("the client has no return URL")
        fresh, skipped = await self._new(grants)
        checked, problems = await self._check(fresh, verify=verify)
        if problems and not skip_invalid:
            return ImportReport(0, skipped, tuple(problems))
        if not dry_run:
            await self._store(caller, checked)
        return ImportReport(len(checked), skipped, tuple(problems))

    async def _new(self, grants: list[MigratedGrant]) -> tuple[list[MigratedGrant], int]:
        async with self._units() as uow:
            known = [await uow.consents.has_altinn_code(g.code) for g in grants]
        return [g for g, k in zip(grants, known, strict=True) if not k], sum(known)

    async def _check(
        self, grants: list[MigratedGrant], *, verify: bool
    ) -> tuple[list[_Checked], list[str]]:
        checked: list[_Checked] = []
        problems: list[str] = []
        for grant in grants:
            if not verify or self._tokens is None:
                consented = grant.consented_at or self._now()
                checked.append(_Checked(grant, grant.valid_to, consented, b""))
                continue
            try:
                token = await self._tokens.consent_token(
                    consent_id=grant.code,
                    subject_org=grant.subject,
                    requestor_org=grant.requestor,
                )
            except UpstreamRefused as exc:  # UpstreamUnavailable stops the import
                kind = "no consent token" if isinstance(exc, ConsentUnavailable) else "refused"
                problems.append(f"line {grant.line}: Maskinporten {kind} ({exc.code})")
                continue
            if self._resource not in token.resources or token.valid_to <= self._now():
                problems.append(f"line {grant.line}: the consent token is not for this grant")
                continue
            checked.append(
                _Checked(grant, token.valid_to, token.consented_at, token.token.encode())
            )
        return checked, problems

    async def _store(self, caller: Caller, checked: list[_Checked]) -> None:
        now = self._now()
        async with self._units() as uow:
            for item in checked:
                request = self._request(caller, item, now)
                await uow.consents.add(request)
                await uow.consents.set_altinn_code(request.id, item.grant.code)
                grant = Grant(item.consented_at, item.valid_to)
                await uow.consents.add_grant(request, grant, receipt=item.receipt)
                # No webhook event (no publish): an imported grant is not a change the client
                # asked for or is waiting on; the operator's import only records a consent that
                # already existed at Altinn 2. The import is audited instead.
                await uow.audit.append(
                    audit_transition(
                        request,
                        "imported",
                        actor=("admin", "cli"),
                        state=State.GRANTED,
                        reason="altinn2_migrated",
                    ),
                    at=now,
                )
            await uow.commit()

    def _request(self, caller: Caller, item: _Checked, now: datetime) -> ConsentRequest:
        grant = item.grant
        return ConsentRequest(
            id=uuid.uuid4(),
            client_id=caller.client_id,
            requestor_org=grant.requestor,
            subject_org=grant.subject,
            resource=self._resource,
            reference=grant.reference,
            external_reference=grant.external_reference,
            language=Language.NB,
            return_url=caller.return_urls[0],
            state=State.GRANTED,
            state_reason="altinn2_migrated",
            generation=Generation.ALTINN3,
            altinn_consent_id=None,
            valid_to=item.valid_to,
            idempotency_key=None,
            created_at=now,
            updated_at=now,
        )
