"""Maskinporten adapter: the broker's client (plain, delegated and consent tokens), the token
cache, and the verifier of Maskinporten-issued tokens (``shared/reference/maskinporten.md``).

It implements ``broker.consent.ports.ConsentTokens`` and raises only the ports' errors, plus
``TokenInvalid`` from the verifier. It imports no web framework, store or sandbox.
"""

from __future__ import annotations

from broker.maskinporten.assertion import ConsentGrant, GrantRequest, build_assertion
from broker.maskinporten.cache import CacheKey, Fetched, TokenCache
from broker.maskinporten.claims import TokenParties, party_orgnr, token_parties
from broker.maskinporten.client import SKATTEETATEN_SCOPE, AccessToken, MaskinportenClient
from broker.maskinporten.errors import ClientKeyInvalid, TokenInvalid
from broker.maskinporten.keys import ClientKey, load_client_key, parse_client_key
from broker.maskinporten.metadata import ServerMetadata, discover
from broker.maskinporten.retry import RetryPolicy
from broker.maskinporten.verifier import TokenVerifier

__all__ = [
    "SKATTEETATEN_SCOPE",
    "AccessToken",
    "CacheKey",
    "ClientKey",
    "ClientKeyInvalid",
    "ConsentGrant",
    "Fetched",
    "GrantRequest",
    "MaskinportenClient",
    "RetryPolicy",
    "ServerMetadata",
    "TokenCache",
    "TokenInvalid",
    "TokenParties",
    "TokenVerifier",
    "build_assertion",
    "discover",
    "load_client_key",
    "parse_client_key",
    "party_orgnr",
    "token_parties",
]
