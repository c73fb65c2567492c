"""Static configuration of the fake Altinn 2 consent API (``altinn-consent.md`` §1.1, §2.1, §6.3).

Who holds which API key and where it may send people back, the SRR (the service owner's rights
register) entries, the consent services and every behaviour the reference leaves open. Each
field marked (inferred) defaults to the reading the reference calls faithful.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "CONSENT_REQUEST_SCOPES",
    "CONSENT_TOKEN_SCOPES",
    "ISSUER",
    "Altinn2Config",
    "ApiKey",
    "ConsentService",
    "SrrRight",
    "default_services",
    "redirect_allowed",
]

ISSUER = "altinn.no"
# Maskinporten scopes of the Altinn 2 consent APIs (§2.1; A2-LEV, A2-VIRK list both spellings).
CONSENT_REQUEST_SCOPES = frozenset({"altinn:consentrequests.write"})
CONSENT_REQUEST_READ_SCOPES = frozenset(
    {"altinn:consentrequests.read", "altinn:consentrequests.write"}
)
CONSENT_TOKEN_SCOPES = frozenset({"altinn:consenttokens", "altinn:consenttokens.read"})


@dataclass(frozen=True)
class ConsentService:
    """An Altinn 2 consent service edition, e.g. 5616/2 (Digdir's eBevis "oppdrag")."""

    code: str
    edition: int
    owner: str  # the service owner's Altinn 3 prefix, for the migrated resource id
    title: str
    metadata_keys: tuple[str, ...] = ()  # every one is required, matched exactly (inferred)
    request_message_allowed: bool = False  # Skatteetaten forbids RequestMessage (§2.1)
    one_time: bool = False  # engangssamtykke: loguse ends it (§1.1 step 7)
    max_valid_days: int = 3 * 366  # the SBL maximum is 3 years (§2.1, DSOP)

    @property
    def key(self) -> str:
        return f"{self.code}_{self.edition}"

    @property
    def migrated_resource(self) -> str:
        """The Altinn 3 resource a migrated consent names: ``{org}_{code}_{edition}`` (§3.2)."""
        return f"{self.owner}_{self.code}_{self.edition}"


def default_services() -> dict[str, ConsentService]:
    # data.altinn.no sends requestor and requestorName as metadata for 5616 (§1.3).
    service = ConsentService(
        "5616",
        2,
        "digdir",
        "Oppdrag utenlandske virksomheter",
        metadata_keys=("requestor", "requestorName"),
    )
    return {service.key: service}


@dataclass(frozen=True)
class ApiKey:
    """An API key: the organisation it belongs to and where it may redirect (§2.1)."""

    org: str
    redirect_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class SrrRight:
    """An SRR entry for a ``CoveredBy`` org: redirect domains and approved handlers (§1.3)."""

    redirect_domains: tuple[str, ...] = ()
    handled_by: frozenset[str] = frozenset()


def _host_matches(host: str, entry: str) -> bool:
    if entry.startswith("*."):
        return host.endswith(entry[1:]) and len(host) > len(entry) - 1
    return host == entry


def redirect_allowed(url: str, domains: tuple[str, ...]) -> bool:
    """SRR-style check: entries are a host (``broker.example``), a wildcard (``*.example.no``)
    or a custom scheme (``myapp:``); http(s) URLs match on the host, any port (§2.1)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        return bool(host) and any(_host_matches(host, d.lower()) for d in domains if ":" not in d)
    return any(d.lower() == f"{scheme}:" for d in domains)


@dataclass(frozen=True)
class Altinn2Config:
    # Where the API and the consent page are reached: the base of ``_links``.
    public_base_url: str = "http://localhost:8003"
    maskinporten_issuer: str = "http://localhost:8001/"
    token_leeway_seconds: int = 0  # (inferred) no clock skew on Maskinporten tokens
    api_keys: Mapping[str, ApiKey] = field(default_factory=dict)
    # CoveredBy orgnr -> its SRR entry. "SRR wins when present" (§2.1).
    srr: Mapping[str, SrrRight] = field(default_factory=dict)
    services: Mapping[str, ConsentService] = field(default_factory=default_services)
    token_lifetime_seconds: int = 30  # exp - nbf (§3.1)
    # The refusal's ErrorMessage is double-encoded in the docs' example (§1.1 step 4).
    double_encode_error_message: bool = True
    # OfferedByName must be the organisation name, compared case-insensitively (inferred).
    check_offered_by_name: bool = True
    # Naive ValidTo values are Norwegian local time (.NET DateTime, inferred).
    local_timezone: str = "Europe/Oslo"
