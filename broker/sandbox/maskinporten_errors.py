"""The fake Maskinporten's token-endpoint errors (``shared/reference/maskinporten.md`` §1.7, §6.3).

Bodies are OAuth JSON: ``error`` plus ``error_description`` carrying the MP code (when the
reference knows one) and a correlation id. Texts are the documented ones where the reference
quotes them; the others are marked "(inferred)" and kept in the same style.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from broker.sandbox.maskinporten_config import MaskinportenConfig

__all__ = ["TokenError"]

_CLIENT_AUTH = "Invalid assertion. Client authentication failed."
_INVALID_VALUE = "Invalid assertion. Invalid parameter value"


class TokenError(Exception):
    """A rejected token request: HTTP status, OAuth ``error``, description text and MP code."""

    def __init__(self, status: int, error: str, text: str, mp_code: str | None = None) -> None:
        super().__init__(f"{error}: {text}")
        self.status = status
        self.error = error
        self.text = text
        self.mp_code = mp_code

    def body(self, *, correlation_id: str, with_mp_code: bool) -> dict[str, str]:
        prefix = f"{self.mp_code}: " if with_mp_code and self.mp_code else ""
        description = f"{prefix}{self.text} (correlation id: {correlation_id})"
        return {"error": self.error, "error_description": description}


# The HTTP request itself (RFC 6749 §5.2; the MP texts here are inferred).


def bad_content_type() -> TokenError:
    return TokenError(
        400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded"
    )


def repeated_parameter(name: str) -> TokenError:
    return TokenError(400, "invalid_request", f"Parameter {name} is included more than once")


def missing_grant_type() -> TokenError:
    return TokenError(400, "invalid_request", "Missing grant_type")


def unsupported_grant_type() -> TokenError:
    return TokenError(400, "unsupported_grant_type", "Unsupported grant_type")


def invalid_parameter() -> TokenError:
    """Missing or unparseable assertion, or a claim with a value of the wrong form (MP-011)."""
    return TokenError(400, "invalid_request", _INVALID_VALUE, "MP-011")


def unknown_claims(names: Iterable[str]) -> TokenError:
    return TokenError(
        400, "invalid_request", f"Invalid assertion. Unknown claims: {', '.join(names)}"
    )


def own_consumer_org() -> TokenError:
    text = "The combination consumer_org in claim and delegation scope on client is invalid"
    return TokenError(400, "invalid_request", text)


# Client authentication (invalid_grant).


def unsupported_alg() -> TokenError:
    return TokenError(400, "invalid_grant", f"{_CLIENT_AUTH} Unsupported JWT algorithm")


def kid_or_x5c() -> TokenError:
    text = f"{_CLIENT_AUTH} Either kid or x5c must be present in the JWT header"
    return TokenError(400, "invalid_grant", text)


def x5c_for_registered_keys() -> TokenError:
    # §1.3: a client with registered keys must use kid (this fake has no certificate clients).
    text = f"{_CLIENT_AUTH} Client with registered keys must use kid, not x5c"
    return TokenError(400, "invalid_grant", text, "MP-123")


def client_not_found() -> TokenError:
    return TokenError(400, "invalid_grant", f"{_CLIENT_AUTH} Client not found", "MP-100")


def unknown_kid() -> TokenError:
    text = f"{_CLIENT_AUTH} Unknown key identifier (kid) for client."
    return TokenError(400, "invalid_grant", text, "MP-100")


def expired_key() -> TokenError:
    return TokenError(400, "invalid_grant", f"{_CLIENT_AUTH} Expired key", "MP-121")


def bad_signature() -> TokenError:
    return TokenError(400, "invalid_grant", f"{_CLIENT_AUTH} Invalid JWT signature", "MP-124")


def bad_audience() -> TokenError:
    return TokenError(400, "invalid_grant", f"{_CLIENT_AUTH} Invalid JWT claim aud", "MP-110")


def issued_in_future() -> TokenError:
    return TokenError(400, "invalid_grant", "Issue time is after now")


def grant_expired() -> TokenError:
    return TokenError(400, "invalid_grant", "JWT is expired", "MP-130")


def lifetime_too_long() -> TokenError:
    return TokenError(400, "invalid_grant", "JWT has too long lifetime")


def missing_jti() -> TokenError:
    return TokenError(400, "invalid_grant", "Invalid assertion. Missing claim jti", "MP-012")


def grant_used_before() -> TokenError:
    return TokenError(400, "invalid_grant", "Grant is used before", "MP-012")


# Scopes and delegation.


def invalid_scopes() -> TokenError:
    return TokenError(
        400, "invalid_scope", "Token request contains invalid scopes for client", "MP-200"
    )


def scope_not_for_maskinporten() -> TokenError:
    text = "Token request contains scopes not allowed for maskinporten"
    return TokenError(400, "invalid_scope", text, "MP-201")


def consumer_not_granted(config: MaskinportenConfig, scope: str) -> TokenError:
    text = f"Consumer has not been granted access to the scope {scope}"
    return TokenError(config.forbidden_status, "forbidden", text, "MP-250")


def not_delegated(
    config: MaskinportenConfig, *, consumer: str, supplier: str, scope: str
) -> TokenError:
    text = (
        f"Consumer {consumer} has not delegated access to the scope {scope} to supplier {supplier}."
    )
    return TokenError(config.forbidden_status, "forbidden", text, "MP-251")


# authorization_details (RFC 9396) and the Altinn consent lookup.


def unknown_details_type(config: MaskinportenConfig, kind: object) -> TokenError:
    text = f"Unknown authorization_details type {kind}"
    return TokenError(400, config.authorization_details_error, text, "MP-301")


def unknown_details_fields(config: MaskinportenConfig, names: Sequence[str]) -> TokenError:
    text = f"Unknown fields in authorization_details: {', '.join(names)}"
    return TokenError(400, config.authorization_details_error, text, "MP-302")


def invalid_details(config: MaskinportenConfig, what: str) -> TokenError:
    text = f"Invalid value in authorization_details: {what}"
    return TokenError(400, config.authorization_details_error, text, "MP-303")


def no_system_user() -> TokenError:
    # The fake registers no system users, so every urn:altinn:systemuser lookup fails (§3.3).
    text = "No system user found for the request"
    return TokenError(400, "invalid_altinn_customer_configuration", text, "MP-303")


def consent_lookup_failed(config: MaskinportenConfig, problems: Sequence[str]) -> TokenError:
    """The Altinn lookup's problems (``AM-000NN: title``), joined as Altinn logs them."""
    return TokenError(config.consent_error_status, config.consent_error, ", ".join(problems))
