"""The sandbox's default world: who the broker is, whom it may act for, and its client key.

The parties (organisations, persons and who may act for whom) are in ``parties.py``. Here:

- the broker organisation's Maskinporten client, with a fresh RS256 key each time the sandbox
  starts; its private JWK is written to a file so that a broker on this machine can use it;
- the Altinn API delegations from each contracting authority to the broker (``consumer_org``);
- the ``ebevis`` rettighetspakke at Skatteetaten for each contracting authority, and an oppdrag
  fixture for each foreign supplier.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from broker.sandbox.maskinporten_client import SandboxClient
from broker.sandbox.maskinporten_registry import Delegation
from broker.sandbox.parties import OrgKind, PartyRegistry

__all__ = [
    "ALTINN2_API_KEY",
    "BROKER_CLIENT_ID",
    "BROKER_SCOPES",
    "SKATTEETATEN_SCOPE",
    "Seed",
    "broker_org",
    "write_private_jwk",
]

BROKER_CLIENT_ID = "ebevis-broker-sandbox"
SKATTEETATEN_SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
ALTINN_SCOPES = (
    "altinn:consentrequests.write",
    "altinn:consentrequests.read",
    "altinn:consentrequests.org",
    "altinn:consenttokens",  # Altinn 2 token fetch (altinn-consent.md §2.1)
)
# The broker's Altinn 2 API key. Fixed, so that a broker started by hand can be configured
# with it (BROKER_ALTINN2_API_KEY); it opens nothing but this sandbox.
ALTINN2_API_KEY = "sandbox-altinn2-api-key-broker-310300012"
BROKER_SCOPES = (SKATTEETATEN_SCOPE, *ALTINN_SCOPES)
EBEVIS_PACKAGE = "ebevis"


@dataclass(frozen=True)
class Seed:
    broker_client: SandboxClient
    delegations: tuple[Delegation, ...]
    authorities: tuple[str, ...]
    suppliers: tuple[str, ...]

    @classmethod
    def build(cls, parties: PartyRegistry) -> Seed:
        broker = broker_org(parties)
        authorities = tuple(o.orgnr for o in parties.of_kind(OrgKind.CONTRACTING_AUTHORITY))
        suppliers = tuple(o.orgnr for o in parties.of_kind(OrgKind.FOREIGN_SUPPLIER))
        delegations = tuple(
            Delegation(consumer=authority, supplier=broker, scope=scope)
            for authority in authorities
            for scope in (
                SKATTEETATEN_SCOPE,
                "altinn:consentrequests.write",
                "altinn:consentrequests.read",
                "altinn:consenttokens",
            )
        )
        client = SandboxClient.generate(BROKER_CLIENT_ID, broker, BROKER_SCOPES)
        return cls(client, delegations, authorities, suppliers)

    def describe(self) -> list[str]:
        lines = ["Maskinporten clients:"]
        client = self.broker_client
        lines.append(f"  {client.client_id}  org {client.orgnr}  kid {client.kid}")
        lines.append(f"    scopes: {', '.join(sorted(client.scopes))}")
        lines.append("Delegations (authority -> broker, scope):")
        lines.extend(f"  {d.consumer} -> {d.supplier}  {d.scope}" for d in self.delegations)
        lines.append(f"Skatteetaten '{EBEVIS_PACKAGE}' holders: {', '.join(self.authorities)}")
        lines.append(f"Altinn 2 API key of the broker ({client.orgnr}): {ALTINN2_API_KEY}")
        return lines


def broker_org(parties: PartyRegistry) -> str:
    brokers = parties.of_kind(OrgKind.BROKER)
    if len(brokers) != 1:
        raise ValueError("the sandbox needs exactly one broker organisation")
    return brokers[0].orgnr


def write_private_jwk(client: SandboxClient, path: Path) -> None:
    """Write the client's private key as a JWK, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = dict(client.private_key.as_dict(private=True))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may have been readable by others
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"client_id": client.client_id, "jwk": document}, handle, indent=2)
