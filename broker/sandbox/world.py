"""The sandbox's shared world: one clock, one consent register, the parties, the seed, and the
state of each fake. The control API and the composed app both act on a ``Sandbox``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from broker.sandbox import altinn3, skatteetaten
from broker.sandbox.altinn3_state import Altinn3State
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten_config import MaskinportenConfig
from broker.sandbox.maskinporten_registry import MaskinportenState
from broker.sandbox.parties import PartyRegistry, default_parties, describe_parties
from broker.sandbox.seed import EBEVIS_PACKAGE, Seed, write_private_jwk
from broker.sandbox.skatteetaten_state import SkatteetatenState

__all__ = ["Sandbox", "SandboxConfig", "build"]


@dataclass(frozen=True)
class SandboxConfig:
    base_url: str = "http://127.0.0.1:8001"
    # Where the broker's Maskinporten client key is written (None: not written).
    broker_key_file: Path | None = Path("var/sandbox/broker-client.jwk.json")
    # Altinn's events feed only shows events older than this (300 s is faithful; 0 for demos).
    events_safety_lag_seconds: int = 300


@dataclass
class Sandbox:
    """Everything the fakes share, and what the control API acts on."""

    config: SandboxConfig
    clock: Clock
    parties: PartyRegistry
    seed: Seed
    register: ConsentRegister
    keys: SigningKeys
    maskinporten: MaskinportenState
    altinn: Altinn3State
    skatteetaten: SkatteetatenState
    altinn_calls: Counter[str] = field(default_factory=Counter)

    @property
    def maskinporten_config(self) -> MaskinportenConfig:
        return MaskinportenConfig(
            base_url=f"{self.config.base_url}/maskinporten",
            clients=(self.seed.broker_client.registration(),),
            delegations=self.seed.delegations,
        )

    def describe(self) -> list[str]:
        base = self.config.base_url
        return [
            f"Sandbox on {base}",
            f"  Maskinporten issuer  {base}/maskinporten/",
            f"  Altinn 3             {base}/altinn{altinn3.API_PATH}",
            f"  Skatteetaten         {base}/skatteetaten{skatteetaten.PATH}",
            f"  Control API          {base}/control/",
            *describe_parties(self.parties),
            *self.seed.describe(),
        ]

    def reset(self) -> None:
        """Forget every request, token and call; keep the parties, clients and keys."""
        self.register.clear()
        self.maskinporten.reset()
        self.skatteetaten.reset()
        self.clock.reset()
        self.altinn_calls.clear()


def build(config: SandboxConfig, clock: Clock | None = None) -> Sandbox:
    clock = clock or Clock()
    parties = default_parties()
    seed = Seed.build(parties)
    register = ConsentRegister()
    skatteetaten_state = SkatteetatenState(
        known_orgs=seed.suppliers, package_holders={EBEVIS_PACKAGE: seed.authorities}
    )
    sandbox = Sandbox(
        config=config,
        clock=clock,
        parties=parties,
        seed=seed,
        register=register,
        keys=SigningKeys.generate(2, prefix="maskinporten"),
        maskinporten=MaskinportenState(),
        altinn=Altinn3State(register=register, parties=parties, clock=clock),
        skatteetaten=skatteetaten_state,
    )
    if config.broker_key_file is not None:
        write_private_jwk(seed.broker_client, config.broker_key_file)
    return sandbox
