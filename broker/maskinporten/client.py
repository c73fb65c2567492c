"""The broker's Maskinporten client: plain, delegated and Altinn 3 consent tokens.

Every token comes from a fresh RFC 7523 grant (``assertion.py``) posted form-encoded to the
token endpoint (``maskinporten.md`` §1.2), through a per-client cache (``cache.py``). Transient
failures are retried (``retry.py``); the answer is mapped to the consent ports' errors
(``responses.py``). Consent tokens are verified against the issuer's JWKS and their consent
entry is checked and parsed (``verifier.py``, ``claims.py``). Callers never see the grant.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx

from broker.consent.ports import ConsentToken, UpstreamRefused, UpstreamUnavailable
from broker.maskinporten.assertion import (
    DEFAULT_GRANT_LIFETIME,
    ConsentGrant,
    GrantRequest,
    build_assertion,
)
from broker.maskinporten.cache import CacheKey, Fetched, TokenCache
from broker.maskinporten.claims import ExpectedConsent, consent_token_from_claims
from broker.maskinporten.clock import Clock
from broker.maskinporten.errors import TokenInvalid
from broker.maskinporten.keys import ClientKey
from broker.maskinporten.responses import TokenResponse, Transient, read_token_response
from broker.maskinporten.retry import RetryPolicy
from broker.maskinporten.verifier import TokenVerifier

__all__ = ["JWT_BEARER", "SKATTEETATEN_SCOPE", "AccessToken", "MaskinportenClient"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SKATTEETATEN_SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"

logger = logging.getLogger("broker.maskinporten")


@dataclass(frozen=True)
class AccessToken:
    """A Maskinporten access token. Opaque to the broker (Digdir: do not parse it); its
    ``expires_at`` counts ``expires_in`` from when it was asked for, to stay on the safe side."""

    token: str = field(repr=False)
    expires_at: datetime
    scope: str


class MaskinportenClient:
    """Tokens from one Maskinporten issuer for one client (``client_id`` + its key).

    ``http`` may have any base URL: the token endpoint (default ``issuer + "token"``) and
    JWKS (default ``issuer + "jwk"``) are absolute. ``issuer`` is used verbatim as the grant's
    ``aud``, so it must keep its trailing slash (``https://maskinporten.no/``).

    Consent tokens are asked for with ``consent_scope`` and, in ``vendor_mode``, with
    ``consumer_org`` set to the requestor, as a supplier acting for the contracting authority
    (``maskinporten.md`` §3.2). ``client_org``, when given, is never sent as ``consumer_org``:
    Maskinporten refuses a client naming its own organisation (§3.1).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        client_id: str,
        key: ClientKey,
        clock: Clock,
        token_endpoint: str | None = None,
        verifier: TokenVerifier | None = None,
        consent_scope: str = SKATTEETATEN_SCOPE,
        vendor_mode: bool = True,
        client_org: str | None = None,
        grant_lifetime: int = DEFAULT_GRANT_LIFETIME,
        retry: RetryPolicy | None = None,
        refresh_ratio: float = 0.2,
        refresh_min: float = 10.0,
    ) -> None:
        self._http = http
        self._issuer = issuer
        self._client_id = client_id
        self._key = key
        self._clock = clock
        self._token_endpoint = token_endpoint or issuer.rstrip("/") + "/token"
        self._verifier = verifier or TokenVerifier(
            http, issuer=issuer, jwks_uri=issuer.rstrip("/") + "/jwk", clock=clock
        )
        self._consent_scope = consent_scope
        self._vendor_mode = vendor_mode
        self._client_org = client_org
        self._grant_lifetime = grant_lifetime
        self._retry = retry or RetryPolicy()
        self._tokens: TokenCache[AccessToken] = TokenCache(
            clock=clock, refresh_ratio=refresh_ratio, refresh_min=refresh_min
        )
        self._consents: TokenCache[ConsentToken] = TokenCache(
            clock=clock, refresh_ratio=refresh_ratio, refresh_min=refresh_min
        )

    def __repr__(self) -> str:
        return f"MaskinportenClient(issuer={self._issuer!r}, client_id={self._client_id!r})"

    @property
    def signs_with_certificate(self) -> bool:
        """True when grants carry a business certificate (``x5c``) rather than a ``kid``."""
        return self._key.x5c is not None

    async def access_token(self, scope: str, *, consumer_org: str | None = None) -> AccessToken:
        """A token for ``scope``, for ``consumer_org`` when acting on its behalf (delegation)."""
        request = GrantRequest(scope, self._consumer(consumer_org))
        return await self._tokens.get(self._key_for(request), lambda: self._fetch_access(request))

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> ConsentToken:
        """A verified consent token (``ConsentTokens`` port). Raises ``ConsentUnavailable``
        when Maskinporten refuses the consent, ``UpstreamRefused`` for other refusals or a
        token that does not match the request, ``UpstreamUnavailable`` when it cannot answer."""
        consumer = self._consumer(requestor_org) if self._vendor_mode else None
        request = GrantRequest(self._consent_scope, consumer, ConsentGrant(consent_id, subject_org))
        expected = ExpectedConsent(consent_id, subject_org, requestor_org, consumer)
        key = replace(self._key_for(request), consent_parties=(subject_org, requestor_org))
        return await self._consents.get(key, lambda: self._fetch_consent(request, expected))

    def invalidate(
        self, scope: str, *, consumer_org: str | None = None, token: str | None = None
    ) -> bool:
        """Drop the cached token for ``scope``/``consumer_org`` (only if it is ``token``, when
        given), e.g. after an API answered 401 with it: "drop and retry once"."""
        key = self._key_for(GrantRequest(scope, self._consumer(consumer_org)))
        return self._tokens.invalidate(key, when=_same_token(token)) > 0

    def invalidate_consent(self, consent_id: uuid.UUID, *, token: str | None = None) -> bool:
        """Drop the cached consent token(s) for ``consent_id`` (only ``token``, when given),
        after an API refused it or the broker learnt that the consent was revoked."""
        dropped = self._consents.invalidate(
            lambda key: key.consent_id == consent_id, when=_same_token(token)
        )
        return dropped > 0

    def _consumer(self, consumer_org: str | None) -> str | None:
        return None if consumer_org == self._client_org else consumer_org

    def _key_for(self, request: GrantRequest) -> CacheKey:
        consent_id = request.consent.consent_id if request.consent else None
        return CacheKey(
            self._issuer, self._client_id, request.scope, request.consumer_org, consent_id
        )

    async def _fetch_access(self, request: GrantRequest) -> Fetched[AccessToken]:
        response, asked_at = await self._request(request)
        expires_at = asked_at + timedelta(seconds=response.expires_in)
        token = AccessToken(response.access_token, expires_at, response.scope or request.scope)
        return Fetched(token, asked_at, expires_at)

    async def _fetch_consent(
        self, request: GrantRequest, expected: ExpectedConsent
    ) -> Fetched[ConsentToken]:
        response, asked_at = await self._request(request)
        try:
            claims = await self._verifier.verify(response.access_token, scope=request.scope)
            token = consent_token_from_claims(response.access_token, claims, expected)
        except TokenInvalid as exc:
            raise UpstreamRefused("invalid_token", exc.reason) from exc
        # Usable until the token expires, by either clock, or the consent ends, if sooner.
        local_expiry = asked_at + timedelta(seconds=response.expires_in)
        expires_at = min(token.expires_at, local_expiry, token.valid_to)
        return Fetched(token, asked_at, expires_at)

    async def _request(self, request: GrantRequest) -> tuple[TokenResponse, datetime]:
        """Post grants until one is answered for good; each attempt signs a fresh grant."""
        attempt = 1
        while True:
            try:
                return await self._post(request)
            except Transient as exc:
                delay = self._retry.delay(attempt, exc.retry_after)
                if delay is None:
                    raise UpstreamUnavailable(
                        f"Maskinporten unavailable after {attempt} attempt(s): {exc.reason}"
                    ) from exc
                logger.warning(
                    "Maskinporten token request failed (%s); retry %d in %.2f s",
                    exc.reason,
                    attempt,
                    delay,
                )
                await self._retry.sleep(delay)
                attempt += 1

    async def _post(self, request: GrantRequest) -> tuple[TokenResponse, datetime]:
        asked_at = self._clock()
        assertion = build_assertion(
            self._key,
            request,
            issuer=self._issuer,
            client_id=self._client_id,
            now=asked_at,
            lifetime=self._grant_lifetime,
        )
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        try:
            response = await self._http.post(
                self._token_endpoint, data=form, headers={"Accept": "application/json"}
            )
        except httpx.RequestError as exc:
            raise Transient(type(exc).__name__) from exc
        return read_token_response(response, now=self._clock()), asked_at


def _same_token(token: str | None) -> Callable[[AccessToken | ConsentToken], bool] | None:
    if token is None:
        return None
    return lambda cached: cached.token == token
