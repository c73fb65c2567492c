"""Return URLs: a request's ``return_url`` must equal one of its client's registered URLs.

Both sides are normalised by the same rules, then compared as strings:

- the URL must be absolute, with scheme ``https`` (``http`` only for loopback hosts, for local
  development), a host, and nothing outside printable ASCII: no spaces, control characters or
  backslashes anywhere;
- scheme and host are lower-cased; a trailing dot on the host is refused;
- the default port (443 for https, 80 for http) is dropped, any other port is kept;
- user information (``user@``) and fragments (``#…``) are refused;
- an empty path becomes ``/``; paths with dot segments (``/./``, ``/../``) are refused; the
  path and the query are otherwise compared byte for byte (no decoding, no reordering).

Anything refused cannot be registered and never matches. The rules exist so that a lookalike
(``https://portal.example@evil.example``, ``https://portal.example.evil.example``,
``https:\\\\evil.example``) never passes as a registered URL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["InvalidReturnUrl", "matches_registered", "normalise"]

_DEFAULT_PORTS = {"https": 443, "http": 80}
_LOOPBACK_NAMES = {"localhost"}


class InvalidReturnUrl(ValueError):
    """The URL cannot be a return URL; the message says why, without echoing the URL."""


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_characters(url: str) -> None:
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise InvalidReturnUrl("contains spaces, control characters, backslashes or non-ASCII")


def normalise(url: str) -> str:
    _check_characters(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise InvalidReturnUrl("is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidReturnUrl("scheme must be https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidReturnUrl("must not contain user information")
    if parts.fragment or url.endswith("#"):
        raise InvalidReturnUrl("must not contain a fragment")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidReturnUrl("has an invalid port") from exc
    if not host or host.endswith("."):
        raise InvalidReturnUrl("must have a host")
    if scheme == "http" and not _is_loopback(host):
        raise InvalidReturnUrl("scheme must be https")
    path = parts.path or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidReturnUrl("must not contain dot segments")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    query = f"?{parts.query}" if parts.query or url.endswith("?") else ""
    return f"{scheme}://{netloc}{path}{query}"


def matches_registered(candidate: str, registered: Iterable[str]) -> str | None:
    """The registered URL that ``candidate`` equals after normalisation, else None."""
    try:
        wanted = normalise(candidate)
    except InvalidReturnUrl:
        return None
    for url in registered:
        try:
            if normalise(url) == wanted:
                return url
        except InvalidReturnUrl:
            continue
    return None
