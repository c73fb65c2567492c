"""Which webhook URLs the broker will call: SSRF protection (OWASP API7:2023).

A client chooses the URL, so without checks the broker could be made to call its own network:
loopback, private ranges, link-local (cloud metadata at 169.254.169.254 among them), CGNAT,
multicast, reserved space. The rules, checked when an endpoint is registered and again for
every connection the delivery worker opens:

- ``https`` only, no user name or password in the URL, no fragment, at most 2048 characters;
- host names ``localhost``, ``*.localhost``, ``*.local`` and ``*.internal`` are refused by name
  (``metadata.google.internal`` among them);
- every address the name resolves to must be a global unicast address; IPv4 addresses embedded
  in IPv6 (mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are checked as
  the IPv4 address they carry.

At send time the check happens where the connection is made (:class:`GuardedBackend`): the
name is resolved once, every address is checked, and the socket is opened to a checked address,
so a name that re-resolves to an internal address between registration and delivery (DNS
rebinding) is refused too. TLS still verifies the certificate against the host name.

``allow_local`` (``BROKER_WEBHOOK_ALLOW_LOCAL``; dev and the sandbox only) also accepts
``http``, loopback and private addresses; link-local, metadata, multicast and unspecified
addresses stay refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

__all__ = [
    "GuardedBackend",
    "Resolver",
    "UrlPolicy",
    "UrlRefused",
    "guarded_transport",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
_REFUSED_SUFFIXES = (".localhost", ".local", ".internal")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# Named for the error message; all are also outside global unicast space.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata address",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata address",
    ipaddress.ip_address("100.100.100.200"): "a cloud metadata address",
}


class UrlRefused(ValueError):
    """The URL may not be called. The message says why and is safe to show the client."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (the operating system's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


@dataclass(frozen=True)
class UrlPolicy:
    allow_local: bool = False
    resolve: Resolver = field(default=system_resolver, compare=False)

    def check_form(self, url: str) -> SplitResult:
        """The URL's own rules (no network): scheme, credentials, host names, literal IPs."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
            raise UrlRefused("must not contain spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused("is not a valid URL") from None
        schemes = ("https", "http") if self.allow_local else ("https",)
        if parts.scheme not in schemes:
            raise UrlRefused("must be an https:// URL")
        if parts.username is not None or parts.password is not None:
            raise UrlRefused("must not carry a user name or password")
        if parts.fragment or url.endswith("#"):
            raise UrlRefused("must not have a fragment")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlRefused("must name a host")
        if port == 0:
            raise UrlRefused("must not use port 0")
        literal = _literal(host)
        if literal is not None:
            self.check_address(literal)
        elif not self.allow_local and (host == "localhost" or host.endswith(_REFUSED_SUFFIXES)):
            raise UrlRefused(f"must not point to a local or internal host name ({host})")
        return parts

    def check_address(self, address: Address) -> None:
        """Refuse an address outside global unicast space (except what ``allow_local`` opens)."""
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                self.check_address(embedded)
                return
        reason = _METADATA.get(address) or _why_not_global(address, self.allow_local)
        if reason is not None:
            raise UrlRefused(f"must not point to {reason} ({address})")

    async def resolve_checked(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, each checked; refused if any one is not allowed (so a
        name with one public and one internal address cannot be used to reach the latter)."""
        literal = _literal(host)
        if literal is not None:
            self.check_address(literal)
            return [str(literal)]
        if not self.allow_local and (host == "localhost" or host.endswith(_REFUSED_SUFFIXES)):
            raise UrlRefused(f"must not point to a local or internal host name ({host})")
        try:
            found = await self.resolve(host, port)
        except (OSError, UnicodeError):
            raise UrlRefused(f"the host name {host} does not resolve") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise UrlRefused(f"the host name {host} does not resolve")
        for address in addresses:
            self.check_address(address)
        return [str(a) for a in addresses]

    async def check(self, url: str) -> None:
        """Every rule, the host name resolved: for registration."""
        parts = self.check_form(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await self.resolve_checked(host, port)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _why_not_global(address: Address, allow_local: bool) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback:
        return None if allow_local else "a loopback address"
    if address.is_reserved:  # before "private": Python counts 240.0.0.0/4 as private
        return "a reserved address"
    if address.is_private:
        return None if allow_local else "a private address"
    if not address.is_global:
        return "a reserved or shared address"
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to a checked address."""

    def __init__(self, policy: UrlPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve_checked(host, port)
        except UrlRefused as exc:
            # httpx turns this into httpx.ConnectError with the same message.
            raise httpcore.ConnectError(f"refused: {exc}") from None
        return await self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    policy: UrlPolicy,
    *,
    max_connections: int,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections all pass :class:`GuardedBackend`."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx has no parameter for a network backend, so its pool is replaced by one with ours
    # (same TLS context: certificates are verified as usual). tests/adapters/test_webhook_ssrf.py
    # proves the swap works against real sockets, so an httpx upgrade cannot silently undo it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy, inner),
    )
    return transport
