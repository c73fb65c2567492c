"""Settings of the fake Maskinporten (``shared/reference/maskinporten.md`` §1, §6).

Defaults follow the documented behaviour. Where the reference marks a rule "(inferred)", the rule
is a switch here, with the faithful reading as its default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.sandbox.maskinporten_registry import ClientRegistration, Delegation, ScopeRule

__all__ = ["DEFAULT_ALLOWED_CLAIMS", "JWT_BEARER", "MaskinportenConfig"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# The claim list of the JWT-grant page (§1.4, §6.3): anything else is "Invalid assertion".
DEFAULT_ALLOWED_CLAIMS = frozenset(
    {
        "aud",
        "iss",
        "iat",
        "exp",
        "jti",
        "scope",
        "resource",
        "consumer_org",
        "iss_onbehalfof",
        "pid",
        "authorization_details",
    }
)


@dataclass(frozen=True)
class MaskinportenConfig:
    """One fake Maskinporten. ``base_url`` is where it is served, e.g. ``http://mp.test``."""

    base_url: str
    # Grant (assertion) rules, §1.4: exp - iat <= 120 s is documented; 180 s is observed.
    max_grant_lifetime: int = 120
    # ±10 s on iat ("Issue time is after now") and exp ("JWT is expired"), §1.4 / §4.2.
    clock_skew: int = 10
    # jti is "recommended" in the docs but the reference says treat it as mandatory (§1.4).
    require_jti: bool = True
    # nbf/sub are open questions (§7.1): off by default, add them here to accept them.
    extra_allowed_claims: frozenset[str] = frozenset()
    assertion_algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512")
    # "Currently only array supported" for resource (§1.4); the .NET client sends a string.
    accept_resource_string: bool = False
    # Registered keys expire one year after they were posted (MP-121); None disables the check.
    key_max_age_days: int | None = 365
    # Access tokens, §2.1 / §6.4.
    token_lifetime: int = 120
    # Without a resource the token carries aud "unspecified" today; None omits aud (§2.1).
    unrequested_audience: str | None = "unspecified"
    default_delegation_source: str = "https://tt02.altinn.no/"
    # Error shapes the reference marks as inferred (§1.7, §6.3; altinn-consent.md §5.2, §6.1).
    forbidden_status: int = 403
    consent_error_status: int = 400
    consent_error: str = "invalid_request"
    # RFC 9396 §5 names this error for malformed authorization_details (MP-301/302/303).
    authorization_details_error: str = "invalid_authorization_details"
    mp_codes_in_descriptions: bool = True
    # Seed registrations, applied when the app is created (the state can add more later).
    clients: tuple[ClientRegistration, ...] = ()
    scopes: tuple[ScopeRule, ...] = ()
    delegations: tuple[Delegation, ...] = field(default=())

    @property
    def issuer(self) -> str:
        # The issuer ends in "/" (§1.1, §6.1); grants must use it verbatim as aud.
        return self.base_url.rstrip("/") + "/"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "token"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "jwk"

    @property
    def allowed_claims(self) -> frozenset[str]:
        return DEFAULT_ALLOWED_CLAIMS | self.extra_allowed_claims
