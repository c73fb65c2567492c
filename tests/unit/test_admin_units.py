"""The admin's pure parts: scrypt hashes, password rules, reasons, search input, the address
throttle."""

from __future__ import annotations

import pytest

from broker.admin.auth import _AddressThrottle, parse_token
from broker.admin.passwords import PasswordHasher, WeakPassword, check_strength
from broker.admin.schemas import decode_cursor, parse_filters, parse_reason, parse_return_urls
from broker.errors import ValidationFailed

FAST = PasswordHasher(log2_n=10)


def test_a_hash_verifies_its_password_only_and_carries_its_cost() -> None:
    stored = FAST.hash("correct horse battery staple")
    assert stored.startswith("scrypt$10$8$1$")
    assert FAST.verify(stored, "correct horse battery staple")
    assert not FAST.verify(stored, "correct horse battery stapl")
    assert FAST.hash("correct horse battery staple") != stored  # salted
    assert not FAST.needs_rehash(stored)
    assert PasswordHasher(log2_n=11).needs_rehash(stored)
    assert PasswordHasher(log2_n=11).verify(stored, "correct horse battery staple")


@pytest.mark.parametrize(
    "stored",
    ["", "bcrypt$x", "scrypt$10$8$1$!!$!!", "scrypt$40$8$1$AAAA$AAAA", "scrypt$a$8$1$AAAA$AAAA"],
)
def test_a_malformed_hash_never_verifies(stored: str) -> None:
    assert not FAST.verify(stored, "anything")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        ("my name is ola, ok?", "username"),
        ("abababababababab", "repeat"),
    ],
)
def test_weak_passwords_are_refused(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_strength(password, username="ola")


def test_reasons_are_tidied_and_never_carry_a_personal_number() -> None:
    assert parse_reason("  two\n lines ") == "two lines"
    assert parse_reason("case 12345678901 in Doffin") == "case 12345678901 in Doffin"  # no fnr
    for bad in (None, 3, "ab", "a" * 501, "asked by 01819040180", "bell \x07 here"):
        with pytest.raises(ValidationFailed):
            parse_reason(bad)


def test_search_input_and_cursors() -> None:
    filters = parse_filters({"created_to": "2026-01-31", "subject": " 310100013 "})
    assert filters.subject == "310100013"
    assert filters.created_to is not None
    assert filters.created_to.isoformat() == "2026-02-01T00:00:00+00:00"
    assert decode_cursor(None) is None
    for bad in ("%%%", "bm8", "MjAyNi0wMS0wMVQwMDowMDowMHx4"):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad)


def test_return_urls_from_a_form_or_a_list() -> None:
    assert parse_return_urls("https://a.example/\n\n https://a.example/ \nhttps://b.example/") == (
        "https://a.example/",
        "https://b.example/",
    )
    assert parse_return_urls(["https://a.example/"]) == ("https://a.example/",)
    for bad in ("", [], [1], None):
        with pytest.raises(ValidationFailed):
            parse_return_urls(bad)


def test_admin_tokens_are_recognised_by_form() -> None:
    assert parse_token("ebadm_abcdefghjkmn_" + "A" * 43) == "abcdefghjkmn"
    assert parse_token("ebk_abcdefghjkmn_" + "A" * 43) is None


def test_the_address_throttle_slides_and_stays_bounded() -> None:
    throttle = _AddressThrottle(attempts=2, window=60)
    throttle.fail("a", 0)
    assert throttle.retry_after("a", 1) == 0
    throttle.fail("a", 10)
    assert throttle.retry_after("a", 11) == 50
    assert throttle.retry_after("a", 61) == 0  # the first failure left the window
    for n in range(10_001):
        throttle.fail(f"addr-{n}", 100 + n)
    assert len(throttle._failures) <= 10_000
