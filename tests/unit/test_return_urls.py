from __future__ import annotations

import pytest

from broker.consent.return_urls import InvalidReturnUrl, matches_registered, normalise

REGISTERED = ["https://portal.example/ebevis/return", "https://other.example:8443/cb?tenant=7"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Portal.Example/ebevis/return", "https://portal.example/ebevis/return"),
        ("https://portal.example:443/x", "https://portal.example/x"),
        ("https://portal.example", "https://portal.example/"),
        ("https://portal.example:8443/x?b=2&a=1", "https://portal.example:8443/x?b=2&a=1"),
        ("http://127.0.0.1:3000/return", "http://127.0.0.1:3000/return"),
        ("http://localhost/return", "http://localhost/return"),
        ("http://[::1]:80/r", "http://[::1]/r"),
        ("https://portal.example/a%2Fb", "https://portal.example/a%2Fb"),
    ],
)
def test_normalisation(url: str, expected: str) -> None:
    assert normalise(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.example/return",  # plain http outside loopback
        "javascript:alert(1)",
        "//portal.example/return",
        "/relative/path",
        "https://user@portal.example/",
        "https://portal.example@evil.example/",
        "https://portal.example/return#frag",
        "https://portal.example/return#",
        "https:\\\\evil.example",
        "https://portal.example/ret urn",
        "https://portal.example/\x00",
        "https://pörtal.example/",
        "https://portal.example./",
        "https://portal.example/a/../b",
        "https://portal.example/./b",
        "https://portal.example:99999/",
        "https:///nohost",
        "ftp://portal.example/",
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(InvalidReturnUrl):
        normalise(url)


@pytest.mark.parametrize(
    "candidate",
    [
        "https://portal.example/ebevis/return",
        "HTTPS://PORTAL.EXAMPLE:443/ebevis/return",
        "https://other.example:8443/cb?tenant=7",
    ],
)
def test_equal_after_normalisation_matches(candidate: str) -> None:
    assert matches_registered(candidate, REGISTERED) in REGISTERED


@pytest.mark.parametrize(
    "candidate",
    [
        "https://portal.example/ebevis/return/",
        "https://portal.example/ebevis/returnx",
        "https://portal.example/ebevis/Return",
        "https://portal.example/ebevis/return?x=1",
        "https://portal.example.evil.example/ebevis/return",
        "https://evil.example/ebevis/return?https://portal.example/ebevis/return",
        "https://portal.example@evil.example/ebevis/return",
        "https://other.example/cb?tenant=7",
        "https://other.example:8443/cb?tenant=8",
        "not a url",
    ],
)
def test_anything_else_does_not_match(candidate: str) -> None:
    assert matches_registered(candidate, REGISTERED) is None


def test_a_broken_registration_never_matches() -> None:
    assert matches_registered("https://portal.example/", ["https://portal.example/#x"]) is None
