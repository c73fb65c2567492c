"""Synthetic parties of the sandbox: organisations, persons, and who may answer consent for whom.

Altinn 3 refuses a consent request whose ``from``/``to`` is not a known party (``AM-00003``,
``AM-00004``) and lets only a person with rights for ``from`` accept it
(``../shared/reference/altinn-consent.md`` §2.2, §5.4). All numbers here are synthetic: the
organisation numbers carry a valid mod-11 check digit, the fødselsnummer use the Tenor convention
(month + 80) and carry both valid check digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from broker.sandbox.orgnr import is_valid_orgnr

__all__ = [
    "OrgKind",
    "Organisation",
    "PartyRegistry",
    "Person",
    "default_parties",
    "describe_parties",
    "is_valid_fnr",
]

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def is_valid_fnr(value: str) -> bool:
    """An 11-digit fødselsnummer/d-nummer whose two mod-11 check digits hold.

    K1 accepts the four remainders of the 2032 algorithm (which still validates every older
    number), as Altinn's ``PersonIdentifier`` does; K2 is the classic single check digit.
    """
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    digits = [int(c) for c in value]
    k1_base = sum(w * d for w, d in zip(_K1_WEIGHTS, digits, strict=False)) % 11
    k1_allowed = {(offset - k1_base) % 11 for offset in (11, 12, 13, 14)}
    k2 = (11 - sum(w * d for w, d in zip(_K2_WEIGHTS, digits, strict=False)) % 11) % 11
    return digits[9] in k1_allowed and digits[10] == k2


class OrgKind(StrEnum):
    FOREIGN_SUPPLIER = "foreign supplier"
    CONTRACTING_AUTHORITY = "contracting authority"
    BROKER = "broker"
    RESOURCE_OWNER = "resource owner"


@dataclass(frozen=True)
class Organisation:
    orgnr: str
    name: str
    org_form: str  # Enhetsregisteret form: NUF, AS, ORGL, KOMM, ...
    kind: OrgKind


@dataclass(frozen=True)
class Person:
    fnr: str
    name: str


@dataclass(frozen=True)
class PartyRegistry:
    """Known parties and the (fnr, orgnr) pairs where the person may answer consent for the org."""

    organisations: tuple[Organisation, ...]
    persons: tuple[Person, ...]
    rights: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for org in self.organisations:
            if not is_valid_orgnr(org.orgnr):
                raise ValueError(f"invalid organisation number {org.orgnr}")
        for person in self.persons:
            if not is_valid_fnr(person.fnr):
                raise ValueError(f"invalid fødselsnummer {person.fnr}")
        orgnrs = {o.orgnr for o in self.organisations}
        fnrs = {p.fnr for p in self.persons}
        for fnr, orgnr in self.rights:
            if fnr not in fnrs or orgnr not in orgnrs:
                raise ValueError(f"right for unknown party: {fnr} -> {orgnr}")

    def organisation(self, orgnr: str) -> Organisation | None:
        return next((o for o in self.organisations if o.orgnr == orgnr), None)

    def person(self, fnr: str) -> Person | None:
        return next((p for p in self.persons if p.fnr == fnr), None)

    def may_act_for(self, fnr: str, orgnr: str) -> bool:
        return (fnr, orgnr) in self.rights

    def organisations_of(self, fnr: str) -> list[Organisation]:
        return [o for o in self.organisations if (fnr, o.orgnr) in self.rights]

    def of_kind(self, kind: OrgKind) -> list[Organisation]:
        return [o for o in self.organisations if o.kind is kind]


def _rights(pairs: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


def default_parties() -> PartyRegistry:
    """The default seed: 3 NUF suppliers, 2 contracting authorities, a broker, Digdir, 5 persons."""
    organisations = (
        Organisation("310100013", "NORDBYGG POLSKA NUF", "NUF", OrgKind.FOREIGN_SUPPLIER),
        Organisation("310100021", "BALTIC STEEL MONTAGE NUF", "NUF", OrgKind.FOREIGN_SUPPLIER),
        Organisation("310100048", "SVENSK ELINSTALLATION NUF", "NUF", OrgKind.FOREIGN_SUPPLIER),
        Organisation(
            "310200018", "DIREKTORATET FOR SANDKASSEBYGG", "ORGL", OrgKind.CONTRACTING_AUTHORITY
        ),
        Organisation("310200026", "FJELLBYGD KOMMUNE", "KOMM", OrgKind.CONTRACTING_AUTHORITY),
        Organisation("310300012", "EBEVIS MEGLER SANDKASSE AS", "AS", OrgKind.BROKER),
        Organisation("991825827", "DIGITALISERINGSDIREKTORATET", "ORGL", OrgKind.RESOURCE_OWNER),
    )
    persons = (
        Person("01819040180", "Kari Nordmann"),
        Person("15838540063", "Ola Nordmann"),
        Person("23847840080", "Ingrid Hansen"),
        Person("05859240048", "Lise Berg"),
        Person("11889940079", "Per Utentilgang"),  # may act for nobody
    )
    rights = _rights(
        [
            ("01819040180", "310100013"),
            ("01819040180", "310100021"),
            ("15838540063", "310100048"),
            ("15838540063", "310200018"),
            ("23847840080", "310300012"),
            ("05859240048", "310200026"),
            ("05859240048", "310100013"),
        ]
    )
    return PartyRegistry(organisations, persons, rights)


def describe_parties(registry: PartyRegistry) -> list[str]:
    """One line per party, for ``broker sandbox --list``."""
    lines = ["Organisations:"]
    for org in registry.organisations:
        lines.append(f"  {org.orgnr}  {org.org_form:<4}  {org.kind.value:<21}  {org.name}")
    lines.append("Persons (may answer consent for):")
    for person in registry.persons:
        orgs = ", ".join(o.orgnr for o in registry.organisations_of(person.fnr)) or "nobody"
        lines.append(f"  {person.fnr}  {person.name:<16}  {orgs}")
    return lines
