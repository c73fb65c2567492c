"""From an authenticated grant to an access token: scopes, delegation, consent and the token's
claims (``shared/reference/maskinporten.md`` §1.4-§1.6, §2.1, §3, §6.3-§6.4).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from broker.sandbox import maskinporten_errors as errors
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten_assertion import VerifiedGrant
from broker.sandbox.maskinporten_config import MaskinportenConfig
from broker.sandbox.maskinporten_consent import ConsentQuery, iso6523, parse_details
from broker.sandbox.maskinporten_registry import (
    ClientRegistration,
    Delegation,
    MaskinportenState,
    ScopeRule,
)
from broker.sandbox.orgnr import is_valid_orgnr

__all__ = ["IssuedToken", "TokenIssuer"]

_PID = re.compile(r"\d{11}")
_BEARER = "Bearer"


@dataclass(frozen=True)
class TokenRequest:
    """What the grant asks for, each claim checked for form (MP-011 otherwise)."""

    scopes: tuple[str, ...]
    consumer_org: str | None
    resource: str | list[str] | None
    pid: str | None
    consent: ConsentQuery | None


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    consumer_org: str | None

    def response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": _BEARER,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


class TokenIssuer:
    """Authorises an authenticated grant and signs the access token."""

    def __init__(
        self,
        config: MaskinportenConfig,
        clock: Clock,
        state: MaskinportenState,
        keys: SigningKeys,
        consents: ConsentRegister,
    ) -> None:
        self._config = config
        self._clock = clock
        self._state = state
        self._keys = keys
        self._consents = consents

    def issue(self, grant: VerifiedGrant) -> IssuedToken:
        request = _parse_request(grant.claims, self._config)
        client = grant.client
        rules = self._authorise_scopes(client, request)
        consumer = request.consumer_org or client.orgnr
        details = None
        if request.consent is not None:
            details = request.consent.lookup(
                self._consents, to_orgnr=consumer, now=self._clock.now(), config=self._config
            )
        lifetime = self._lifetime(client, rules)
        claims = self._claims(client, request, rules, details, lifetime)
        scope = " ".join(request.scopes)
        token = self._keys.sign(claims)
        return IssuedToken(token, lifetime, scope, request.consumer_org)

    def _authorise_scopes(
        self, client: ClientRegistration, request: TokenRequest
    ) -> list[ScopeRule]:
        if not set(request.scopes) <= client.scopes:
            raise errors.invalid_scopes()
        rules = [self._rule(scope) for scope in request.scopes]
        if not all(rule.maskinporten_allowed for rule in rules):
            raise errors.scope_not_for_maskinporten()
        if request.consumer_org == client.orgnr:
            raise errors.own_consumer_org()
        consumer = request.consumer_org or client.orgnr
        for rule in rules:
            if rule.consumers is not None and consumer not in rule.consumers:
                raise errors.consumer_not_granted(self._config, rule.name)
            if request.consumer_org is not None:
                self._check_delegation(rule, consumer=consumer, supplier=client.orgnr)
        return rules

    def _check_delegation(self, rule: ScopeRule, *, consumer: str, supplier: str) -> None:
        delegation = Delegation(consumer, supplier, rule.name)
        if rule.delegation_source is None or not self._state.has_delegation(delegation):
            raise errors.not_delegated(
                self._config, consumer=consumer, supplier=supplier, scope=rule.name
            )

    def _rule(self, scope: str) -> ScopeRule:
        rule = self._state.scope_rule(scope)
        if rule is None:
            return ScopeRule(scope, delegation_source=self._config.default_delegation_source)
        return rule

    def _lifetime(self, client: ClientRegistration, rules: list[ScopeRule]) -> int:
        # The client's lifetime (or the default), capped by the lowest at_max_age (§1.6).
        caps = [rule.at_max_age for rule in rules if rule.at_max_age > 0]
        return min([client.access_token_lifetime or self._config.token_lifetime, *caps])

    def _claims(
        self,
        client: ClientRegistration,
        request: TokenRequest,
        rules: list[ScopeRule],
        details: dict[str, Any] | None,
        lifetime: int,
    ) -> dict[str, Any]:
        now = self._clock.timestamp()
        claims: dict[str, Any] = {"iss": self._config.issuer, "client_amr": "private_key_jwt"}
        claims["token_type"] = _BEARER
        audience = _audience(request.resource, self._config)
        if audience is not None:
            claims["aud"] = audience
        claims["scope"] = " ".join(request.scopes)
        if request.consumer_org is not None:
            claims["supplier"] = iso6523(client.orgnr)
            claims["delegation_source"] = rules[0].delegation_source
        claims["consumer"] = iso6523(request.consumer_org or client.orgnr)
        if request.pid is not None:
            claims["pid"] = request.pid
        if details is not None:
            claims["authorization_details"] = [details]
        claims.update(client_id=client.client_id, iat=now, exp=now + lifetime)
        claims["jti"] = secrets.token_urlsafe(32)
        return claims


def _audience(resource: str | list[str] | None, config: MaskinportenConfig) -> Any:
    if resource is None:
        return config.unrequested_audience
    if isinstance(resource, list) and len(resource) == 1:
        return resource[0]
    return resource


def _parse_request(claims: dict[str, Any], config: MaskinportenConfig) -> TokenRequest:
    scope = claims.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise errors.invalid_parameter()
    scopes = tuple(dict.fromkeys((scope or "").split()))
    if not scopes:
        raise errors.invalid_scopes()
    if "iss_onbehalfof" in claims:
        # Legacy Digdir onbehalfof; this fake registers no sub-clients, so no value is valid.
        raise errors.invalid_parameter()
    consent = None
    if "authorization_details" in claims:
        consent = parse_details(claims["authorization_details"], config)
    return TokenRequest(
        scopes=scopes,
        consumer_org=_consumer_org(claims.get("consumer_org")),
        resource=_resource(claims.get("resource"), config),
        pid=_pid(claims.get("pid")),
        consent=consent,
    )


def _consumer_org(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_valid_orgnr(value):
        raise errors.invalid_parameter()
    return value


def _resource(value: object, config: MaskinportenConfig) -> str | list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) and value and config.accept_resource_string:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise errors.invalid_parameter()


def _pid(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PID.fullmatch(value):
        raise errors.invalid_parameter()
    return value
