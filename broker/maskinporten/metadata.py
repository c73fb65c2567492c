"""Maskinporten's RFC 8414 metadata, which Digdir recommends configuring from so that a change
of endpoints or signing keys does not break clients (``maskinporten.md`` §1.1).

The document is read from ``<issuer>.well-known/oauth-authorization-server``, the form both
Maskinporten and the sandbox use (the issuer ends in ``/``), and its ``issuer`` must equal the
one asked for (RFC 8414 §3.3), which guards against a mix-up of environments.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from broker.consent.ports import UpstreamRefused, UpstreamUnavailable

__all__ = ["ServerMetadata", "discover"]

_PATH = ".well-known/oauth-authorization-server"
_FIELDS = ("issuer", "token_endpoint", "jwks_uri")


@dataclass(frozen=True)
class ServerMetadata:
    issuer: str
    token_endpoint: str
    jwks_uri: str


async def discover(http: httpx.AsyncClient, issuer: str) -> ServerMetadata:
    """Fetch and check the metadata of ``issuer``."""
    url = issuer.rstrip("/") + "/" + _PATH
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.RequestError as exc:
        raise UpstreamUnavailable(f"metadata fetch failed: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise UpstreamUnavailable(f"metadata fetch failed: HTTP {response.status_code}")
    if response.status_code != httpx.codes.OK:
        raise UpstreamRefused(f"http_{response.status_code}", "metadata not found")
    try:
        document = response.json()
    except ValueError as exc:
        raise UpstreamUnavailable("metadata is not JSON") from exc
    fields = [document.get(name) if isinstance(document, dict) else None for name in _FIELDS]
    if not all(isinstance(value, str) and value for value in fields):
        raise UpstreamRefused("invalid_metadata", "issuer, token_endpoint or jwks_uri missing")
    metadata = ServerMetadata(*(str(value) for value in fields))
    if metadata.issuer != issuer:
        raise UpstreamRefused("invalid_metadata", "the metadata is for another issuer")
    return metadata
