"""Static configuration of the fake Skatteetaten API.

Every behaviour that ``shared/reference/skatteetaten.md`` marks as inferred is a field here, and
its default is the reading the reference calls faithful. Things a control API flips at run time
(quirks, faults, latency, fixtures) live in ``SkatteetatenState`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "A2_SERVICES",
    "A3_RESOURCES",
    "API_SCOPE",
    "CONSENT_PACKAGES",
    "KNOWN_PACKAGES",
    "ConsentMode",
    "SkatteetatenConfig",
    "UnknownPackage",
]

API_SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
# The new Altinn 3 resource and the one migrated from Altinn 2 service 5616_2 (§4.2).
A3_RESOURCES = frozenset({"digdir-oppdragutenlandskevirksomheter-skatteetaten", "digdir_5616_2"})
# Altinn 2: the consent's ``Services`` must name tjenestekode 5616_2 (§4.2, §4.3).
A2_SERVICES = frozenset({"5616_2"})
# ``ebevis`` needs consent, ``arbeidstilsynet`` rests on statute ("Hjemmel") (§4.1).
CONSENT_PACKAGES = frozenset({"ebevis"})
KNOWN_PACKAGES = CONSENT_PACKAGES | {"arbeidstilsynet"}


class ConsentMode(StrEnum):
    """Which consent credentials the API accepts (§4.3/§4.4, §6 "a toggle for A2 only, A3 only
    and both"): an Altinn 3 consent token as the bearer, or a plain Maskinporten bearer plus an
    Altinn 2 ``AltinnSamtykke`` token; during the transition Skatteetaten took both (§4.4)."""

    A3_ONLY = "a3-only"
    A2_ONLY = "a2-only"
    BOTH = "both"


class UnknownPackage(StrEnum):
    """The answer to a rettighetspakke the API does not know; the reference guesses -006 (§6)."""

    INPUT_VALIDATION = "input-validation"  # 400 -006
    AUTHORISATION = "authorisation"  # 403 -005
    UNKNOWN_URL = "unknown-url"  # whatever the unknown-URL quirk answers


@dataclass(frozen=True)
class SkatteetatenConfig:
    issuer: str  # the Maskinporten issuer, verbatim with its trailing slash
    consent_mode: ConsentMode = ConsentMode.A3_ONLY
    leeway_seconds: int = 0
    # Maskinporten tokens carry ``aud: "unspecified"`` or none; Skatteetaten expects that (§1.3).
    # None turns the audience check off.
    accepted_audiences: frozenset[str] | None = frozenset({"unspecified"})
    unknown_package: UnknownPackage = UnknownPackage.INPUT_VALIDATION
    check_orgnr_mod11: bool = True
    require_consent_to_consumer: bool = True
    # Refuse a consent that was revoked (or never existed) at the fake Altinn (§4.5, inferred).
    check_consent_register: bool = True
    # An AltinnSamtykke header next to an Altinn 3 consent (or, in A3 mode, at all) is a
    # conflicting credential (§6 "does not send both ... in a conflicting way", §7 q7).
    reject_altinn_samtykke_header: bool = True
    altinn2_issuer: str = "altinn.no"  # ``iss`` of an AltinnSamtykke token (altinn-consent §3.1)
    altinn2_services: frozenset[str] = A2_SERVICES
    echo_korrelasjonsid: bool = True
    korrelasjonsid_response_header: bool = False  # undocumented (§7 q10)
    levert_timezone: str = "Europe/Oslo"
    xml_root: str = "oppdragUtenlandskeVirksomheter"
    xml_namespace: str = "urn:no:skatteetaten:datasamarbeid:oppdragutenlandskevirksomheter:v1"
    concurrency_limit: int = 5  # only measured (calls over it are counted), never enforced
