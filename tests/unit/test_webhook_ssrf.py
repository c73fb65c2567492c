"""SSRF rules for webhook URLs (security.md G15): what is refused, and what is not."""

from __future__ import annotations

import pytest

from broker.webhooks.ssrf import UrlPolicy, UrlRefused

PUBLIC = "93.184.216.34"


def resolver(table: dict[str, list[str]]) -> UrlPolicy:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("name does not resolve")
        return table[host]

    return UrlPolicy(resolve=resolve)


REFUSED = [
    ("http://93.184.216.34/hook", "https"),
    ("ftp://93.184.216.34/hook", "https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://127.8.9.10:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("https://172.16.0.1/hook", "private"),
    ("https://192.168.1.1/hook", "private"),
    ("https://[fd12:3456::1]/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://100.100.100.200/", "metadata"),
    ("https://169.254.1.1/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://100.64.0.1/", "reserved or shared"),  # carrier-grade NAT
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://224.0.0.1/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("https://[::ffff:169.254.169.254]/", "metadata"),
    ("https://[64:ff9b::a9fe:a9fe]/", "metadata"),  # NAT64 of 169.254.169.254
    ("https://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("https://localhost/hook", "local or internal"),
    ("https://api.localhost/hook", "local or internal"),
    ("https://metadata.google.internal/computeMetadata/v1/", "local or internal"),
    ("https://printer.local/", "local or internal"),
    ("https://user:pw@93.184.216.34/hook", "user name or password"),
    ("https://93.184.216.34/hook#x", "fragment"),
    ("https://93.184.216.34:0/hook", "port 0"),
    ("https://93.184.216.34:99999/hook", "not a valid URL"),
    ("https:///hook", "must name a host"),
    ("https://93.184.216.34/a b", "spaces"),
    ("https://93.184.216.34/\x00", "control"),
    ("https://93.184.216.34/" + "a" * 2048, "2048"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
async def test_internal_and_malformed_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why):
        await UrlPolicy().check(url)


@pytest.mark.parametrize(
    "url",
    [
        f"https://{PUBLIC}/ebevis/webhooks",
        f"https://{PUBLIC}:8443/hook?tenant=7",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ],
)
async def test_public_https_urls_are_accepted(url: str) -> None:
    await UrlPolicy().check(url)


async def test_names_are_resolved_and_every_address_must_be_public() -> None:
    policy = resolver(
        {
            "portal.example": [PUBLIC],
            "inside.example": ["10.0.0.5"],
            "mixed.example": [PUBLIC, "127.0.0.1"],
            "rebind.example": ["169.254.169.254"],
        }
    )
    await policy.check("https://portal.example/hook")
    with pytest.raises(UrlRefused, match="private"):
        await policy.check("https://inside.example/hook")
    with pytest.raises(UrlRefused, match="loopback"):
        await policy.check("https://mixed.example/hook")
    with pytest.raises(UrlRefused, match="metadata"):
        await policy.check("https://rebind.example/hook")
    with pytest.raises(UrlRefused, match="does not resolve"):
        await policy.check("https://nowhere.example/hook")
    assert await policy.resolve_checked("portal.example", 443) == [PUBLIC]


async def test_dev_and_the_sandbox_may_use_loopback_private_and_http_but_never_metadata() -> None:
    local = UrlPolicy(allow_local=True)
    for url in (
        "http://127.0.0.1:8001/portal/webhooks",
        "http://localhost:8001/portal/webhooks",
        "https://192.168.1.10/hook",
        "http://[::1]:9000/hook",
    ):
        local.check_form(url)
    for url, why in (
        ("http://169.254.169.254/", "metadata"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:8001/", "unspecified"),
        ("ftp://127.0.0.1/", "https"),
    ):
        with pytest.raises(UrlRefused, match=why):
            local.check_form(url)
