"""The synthetic parties: fødselsnummer check digits, the default seed, the registry's checks."""

from __future__ import annotations

import pytest

from broker.sandbox.parties import (
    Organisation,
    OrgKind,
    PartyRegistry,
    Person,
    default_parties,
    describe_parties,
    is_valid_fnr,
)
from tests.sandbox.altinn3_helpers import AUTHORITY, KARI, OLA, PER, SUPPLIER

# --- parties ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fnr", "valid"),
    [
        ("01819040180", True),
        ("02013299997", True),  # Altinn's own examples
        ("42013299980", True),  # d-nummer
        ("01819040008", True),  # K1 valid only under the 2032 algorithm
        ("01819040181", False),  # K2 wrong
        ("01819040170", False),  # K1 wrong
        ("0181904018", False),
        ("0181904018x", False),
    ],
)
def test_fnr_check_digits(fnr: str, valid: bool) -> None:
    assert is_valid_fnr(fnr) is valid


def test_default_seed_has_the_parties_the_scenarios_need() -> None:
    parties = default_parties()
    suppliers = parties.of_kind(OrgKind.FOREIGN_SUPPLIER)
    assert len(suppliers) == 3
    assert {o.org_form for o in suppliers} == {"NUF"}
    authorities = parties.of_kind(OrgKind.CONTRACTING_AUTHORITY)
    assert {o.org_form for o in authorities} == {"ORGL", "KOMM"}
    assert len(parties.of_kind(OrgKind.BROKER)) == 1
    assert len(parties.persons) >= 4
    assert parties.organisations_of(PER) == []
    assert parties.may_act_for(KARI, SUPPLIER)
    assert parties.may_act_for(OLA, AUTHORITY)
    assert not parties.may_act_for(KARI, AUTHORITY)


@pytest.mark.parametrize(
    ("organisations", "persons", "rights"),
    [
        ((Organisation("310100010", "X", "AS", OrgKind.BROKER),), (), frozenset()),
        ((), (Person("01819040181", "X"),), frozenset()),
        ((), (Person(KARI, "X"),), frozenset({(KARI, SUPPLIER)})),
    ],
    ids=["bad-orgnr", "bad-fnr", "unknown-party-in-rights"],
)
def test_registry_refuses_invalid_parties(
    organisations: tuple[Organisation, ...],
    persons: tuple[Person, ...],
    rights: frozenset[tuple[str, str]],
) -> None:
    with pytest.raises(ValueError, match=r"invalid|unknown"):
        PartyRegistry(organisations, persons, rights)


def test_describe_parties_lists_everyone() -> None:
    lines = describe_parties(default_parties())
    assert lines[0] == "Organisations:"
    assert any(line.startswith("  310100013  NUF ") and "NORDBYGG" in line for line in lines)
    assert "  11889940079  Per Utentilgang   nobody" in lines
    assert "  01819040180  Kari Nordmann     310100013, 310100021" in lines
