"""Norwegian organisation numbers: 9 digits, weights 3,2,7,6,5,4,3,2, check digit mod 11."""

from __future__ import annotations

__all__ = ["is_valid_orgnr", "with_check_digit"]

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _check_digit(first_eight: str) -> int | None:
    remainder = sum(w * int(d) for w, d in zip(_WEIGHTS, first_eight, strict=True)) % 11
    digit = (11 - remainder) % 11
    return None if digit == 10 else digit


def is_valid_orgnr(value: str) -> bool:
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False
    return _check_digit(value[:8]) == int(value[8])


def with_check_digit(first_eight: str) -> str | None:
    """Complete an 8-digit stem, or None when no check digit exists for it."""
    digit = _check_digit(first_eight)
    return None if digit is None else f"{first_eight}{digit}"
