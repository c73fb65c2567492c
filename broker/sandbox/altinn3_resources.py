"""The fake Altinn resource registry: the consent resources for "Oppdrag utenlandske virksomheter".

Two Altinn 3 resources carry this consent (``../shared/reference/altinn-consent.md`` §0.1):
``digdir-oppdragutenlandskevirksomheter-skatteetaten`` (new; data.altinn.no sends it without
metadata, so it defines none) and ``digdir_5616_2`` (migrated from Altinn 2 service 5616/2, consent
template ``poa``; its Altinn 2 metadata ``requestor``/``requestorName`` arrive lower-cased).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.sandbox.parties import OrgKind, default_parties

__all__ = [
    "MIGRATED_RESOURCE",
    "NEW_RESOURCE",
    "ConsentResource",
    "default_requestconsent",
    "default_resources",
]

NEW_RESOURCE = "digdir-oppdragutenlandskevirksomheter-skatteetaten"
MIGRATED_RESOURCE = "digdir_5616_2"

_DIGDIR = "991825827"


@dataclass(frozen=True)
class ConsentResource:
    id: str
    title: str
    owner_orgnr: str
    resource_type: str = "Consent"
    template: str | None = "poa"
    metadata_keys: tuple[str, ...] = ()  # lower-case; every one is required
    delegable_actions: frozenset[str] = frozenset({"consent"})

    @property
    def is_consent(self) -> bool:
        return self.resource_type == "Consent"


def default_resources() -> dict[str, ConsentResource]:
    # The new resource's template is not documented; "poa" (fullmakt) matches the texts
    # data.altinn.no uses for it (ebevis-dan.md §3.8) and the migrated edition.
    resources = (
        ConsentResource(NEW_RESOURCE, "Oppdrag utenlandske virksomheter", _DIGDIR),
        ConsentResource(
            MIGRATED_RESOURCE,
            "Oppdrag utenlandske virksomheter (5616/2)",
            _DIGDIR,
            metadata_keys=("requestor", "requestorname"),
        ),
    )
    return {r.id: r for r in resources}


def default_requestconsent() -> Mapping[str, frozenset[str]]:
    """Who may ``requestconsent`` on each resource, by the token's ``consumer`` organisation.

    Digdir owns the resources and uses ``.org``; whether a third-party broker may be granted the
    right is open (reference §7.2), so the default seed's resource owner, broker and contracting
    authorities (for the ``consumer_org`` delegation model) are all allowed. Narrow it in config
    to test the 403.
    """
    kinds = (OrgKind.RESOURCE_OWNER, OrgKind.BROKER, OrgKind.CONTRACTING_AUTHORITY)
    parties = default_parties()
    allowed = frozenset(o.orgnr for kind in kinds for o in parties.of_kind(kind))
    return {NEW_RESOURCE: allowed, MIGRATED_RESOURCE: allowed}
