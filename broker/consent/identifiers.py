"""Norwegian identifiers: organisation numbers (validated) and personal numbers (recognised).

Organisation number: 9 digits, weights 3,2,7,6,5,4,3,2 on the first eight, check digit
``11 - sum mod 11`` (0 when the remainder is 0; no valid number when it would be 10); the same
rule as python-stdnum's ``stdnum.no.orgnr``.
"""

from __future__ import annotations

__all__ = ["is_valid_fnr", "is_valid_orgnr"]

_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_FNR_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_FNR_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _mod11_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    digit = (11 - sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11) % 11
    return None if digit == 10 else digit


def _digits(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def is_valid_orgnr(value: str) -> bool:
    if not _digits(value, 9):
        return False
    return _mod11_digit(value[:8], _ORG_WEIGHTS) == int(value[8])


def is_valid_fnr(value: str) -> bool:
    """Both check digits of an 11-digit fødselsnummer or D-number (dates are not checked)."""
    if not _digits(value, 11):
        return False
    k1 = _mod11_digit(value[:9], _FNR_K1)
    k2 = _mod11_digit(value[:10], _FNR_K2)
    return k1 == int(value[9]) and k2 == int(value[10])
