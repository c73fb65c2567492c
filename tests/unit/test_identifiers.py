from __future__ import annotations

import pytest

from broker.consent.identifiers import is_valid_fnr, is_valid_orgnr


@pytest.mark.parametrize("value", ["974760673", "991825827", "988077917", "923609016"])
def test_valid_organisation_numbers(value: str) -> None:
    assert is_valid_orgnr(value)


@pytest.mark.parametrize(
    "value",
    ["974760672", "97476067", "9747606730", "97476067a", "٩٧٤٧٦٠٦٧٣", "", " 974760673"],
)
def test_invalid_organisation_numbers(value: str) -> None:
    assert not is_valid_orgnr(value)


def test_a_stem_whose_check_digit_would_be_ten_has_no_valid_number() -> None:
    # A weighted sum with remainder 1 would need check digit 10, which does not exist.
    stem = next(f"{n:08d}" for n in range(10_000_000, 10_100_000) if _remainder(f"{n:08d}") == 1)
    assert not any(is_valid_orgnr(stem + str(d)) for d in range(10))


def _remainder(stem: str) -> int:
    return sum(w * int(d) for w, d in zip((3, 2, 7, 6, 5, 4, 3, 2), stem, strict=True)) % 11


@pytest.mark.parametrize("value", ["01010012356", "15076500565", "41010012420"])
def test_valid_personal_numbers(value: str) -> None:
    assert is_valid_fnr(value)


@pytest.mark.parametrize("value", ["01010012357", "0101001235", "0101001235a", "01010012346"])
def test_invalid_personal_numbers(value: str) -> None:
    assert not is_valid_fnr(value)
