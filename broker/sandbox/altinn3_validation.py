"""Access Management's validation of a bound consent request (AM-SVC ``CreateRequest``).

The order and grouping follow ``../shared/reference/altinn-consent.md`` §2.2 and §5.1: an unknown
party stops at once with one problem (``AM-00003``/``AM-00004``); everything else is collected.
Each consent right adds its own problems (``AM-00005``..``AM-00009``, and a validation problem
for an empty action list); ``validTo``, an empty right list and ``redirectUrl`` share one
validation problem, added last. One problem answers 400 with it, several answer ``STD-00001``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from broker.sandbox.altinn3_binding import ConsentRequestInput, PartyUrn, RightInput
from broker.sandbox.altinn3_problems import (
    AM,
    VLD,
    Problem,
    ValidationError,
    combine,
    validation_problem,
)
from broker.sandbox.altinn3_resources import ConsentResource
from broker.sandbox.parties import PartyRegistry

__all__ = ["is_valid_redirect_url", "validate_request"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+\-.]*):(.+)$", re.DOTALL)


def is_valid_redirect_url(url: str) -> bool:
    """An absolute URI: http(s) with a host, or any custom scheme (mobile deep links).

    Altinn checks no allow-list here, unlike Altinn 2 (reference §2.2). Whitespace is refused
    outright; .NET would escape it, but no well-formed redirect carries any.
    """
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return False
    match = _SCHEME.match(url)
    if match is None:
        return False
    if match.group(1).lower() in ("http", "https"):
        try:
            return bool(urlsplit(url).hostname)
        except ValueError:
            return False
    return True


def _party_problem(party: PartyUrn, parties: PartyRegistry) -> Problem | None:
    if party.is_org:
        if parties.organisation(party.number) is None:
            return AM.UNKNOWN_ORG.with_extensions(orgnr=party.urn)
        return None
    if parties.person(party.number) is None:
        return AM.UNKNOWN_PERSON.with_extensions(fnumber=party.urn)
    return None


def _metadata_problems(index: int, right: RightInput, resource: ConsentResource) -> list[Problem]:
    problems: list[Problem] = []
    given = right.metadata or {}
    for key, value in given.items():
        if key.lower() not in resource.metadata_keys:
            problems.append(AM.UNKNOWN_METADATA.with_extensions(key=key.lower()))
        if not value:
            extension = {f"ConsentRight index: {index}, key": key.lower()}
            problems.append(AM.EMPTY_METADATA.with_extensions(**extension))
    # Keys match case-insensitively: Altinn's own test sends INNTEKTSAAR for ``inntektsaar``.
    given_keys = {key.lower() for key in given}
    for key in resource.metadata_keys:
        if key not in given_keys:
            problems.append(AM.MISSING_METADATA.with_extensions(key=key))
    return problems


@dataclass
class _RightsCheck:
    resources: Mapping[str, ConsentResource]
    problems: list[Problem] = field(default_factory=list)
    template: str | None = None

    def check(self, index: int, right: RightInput) -> None:
        if len(right.resource) != 1:
            self.problems.append(AM.INVALID_RESOURCE)
        else:
            self._check_resource(index, right)
        if not right.action:
            required = VLD.REQUIRED.at(f"/consentRight/{index}/action")
            self.problems.append(validation_problem([required]))

    def _check_resource(self, index: int, right: RightInput) -> None:
        resource = self.resources.get(right.resource[0]["value"])
        if resource is None:
            self.problems.append(AM.INVALID_RESOURCE)
            return
        if not resource.is_consent:
            self.problems.append(AM.INVALID_RESOURCE)
        else:
            self.problems.extend(_metadata_problems(index, right, resource))
        if not self.template:
            self.template = resource.template
        elif (resource.template or "").lower() != self.template.lower():
            self.problems.append(AM.MIXED_TEMPLATES)


def _request_errors(req: ConsentRequestInput, now: datetime) -> list[ValidationError]:
    errors: list[ValidationError] = []
    if req.valid_to < now:
        errors.append(VLD.TIME_NOT_IN_FUTURE.at("ValidTo"))
    if not req.consent_rights:
        errors.append(VLD.EMPTY_LIST.at("Resource"))
    if not is_valid_redirect_url(req.redirect_url):
        errors.append(VLD.INVALID_REDIRECT_URL.at("RedirectUrl"))
    return errors


def validate_request(
    req: ConsentRequestInput,
    *,
    handled_by: PartyUrn | None,
    parties: PartyRegistry,
    resources: Mapping[str, ConsentResource],
    now: datetime,
) -> Problem | None:
    """The problem Altinn would answer with, or None when the request is valid."""
    for party in (req.from_party, req.to_party, req.required_delegator, handled_by):
        problem = None if party is None else _party_problem(party, parties)
        if problem is not None:
            return problem
    rights = _RightsCheck(resources)
    for index, right in enumerate(req.consent_rights):
        rights.check(index, right)
    problems = rights.problems
    errors = _request_errors(req, now)
    if errors:
        problems.append(validation_problem(errors))
    return combine(problems)
