"""The sandbox's shared world: one clock, one consent register, the parties, the seed, and the
state of each fake. The control API and the composed app both act on a ``Sandbox``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.sandbox import altinn2, altinn3, skatteetaten
from broker.sandbox.altinn2_config import Altinn2Config, ApiKey, SrrRight
from broker.sandbox.altinn2_state import Altinn2State
from broker.sandbox.altinn2_tokens import Altinn2Keys
from broker.sandbox.altinn3_state import Altinn3State
from broker.sandbox.clock import Clock
from broker.sandbox.consents import ConsentRegister
from broker.sandbox.jose import SigningKeys
from broker.sandbox.maskinporten_config import MaskinportenConfig
from broker.sandbox.maskinporten_registry import MaskinportenState
from broker.sandbox.parties import PartyRegistry, default_parties, describe_parties
from broker.sandbox.seed import ALTINN2_API_KEY, EBEVIS_PACKAGE, Seed, write_private_jwk
from broker.sandbox.skatteetaten_altinn2 import Altinn2View
from broker.sandbox.skatteetaten_config import ConsentMode
from broker.sandbox.skatteetaten_state import SkatteetatenState

__all__ = ["Sandbox", "SandboxConfig", "build"]


@dataclass(frozen=True)
class SandboxConfig:
    base_url: str = "http://127.0.0.1:8001"
    # Where the broker's Maskinporten client key is written (None: not written).
    broker_key_file: Path | None = Path("var/sandbox/broker-client.jwk.json")
    # Altinn's events feed only shows events older than this (300 s is faithful; 0 for demos).
    events_safety_lag_seconds: int = 300
    # Hosts the broker's Altinn 2 API key may send people back to (SRR style, any port).
    altinn2_redirect_domains: tuple[str, ...] = ("127.0.0.1", "localhost")
    # Which consent Skatteetaten takes: both generations, as during the transition (§4.4).
    consent_mode: ConsentMode = ConsentMode.BOTH


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
    altinn2: Altinn2State
    altinn2_keys: Altinn2Keys
    skatteetaten: SkatteetatenState
    altinn_calls: Counter[str] = field(default_factory=Counter)
    # Fields of ``Altinn2Config`` to change before the app is composed (tests).
    altinn2_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def maskinporten_config(self) -> MaskinportenConfig:
        return MaskinportenConfig(
            base_url=f"{self.config.base_url}/maskinporten",
            clients=(self.seed.broker_client.registration(),),
            delegations=self.seed.delegations,
        )

    @property
    def altinn2_config(self) -> Altinn2Config:
        """The broker holds an API key; each contracting authority's SRR entry approves the
        broker as handler (data.altinn.no's ``HANDLEDBY`` condition, altinn-consent.md §1.3)."""
        broker = self.seed.broker_client.orgnr
        config = Altinn2Config(
            public_base_url=f"{self.config.base_url}/altinn2",
            maskinporten_issuer=self.maskinporten_config.issuer,
            api_keys={
                ALTINN2_API_KEY: ApiKey(
                    broker, redirect_domains=self.config.altinn2_redirect_domains
                )
            },
            srr={org: SrrRight(handled_by=frozenset({broker})) for org in self.seed.authorities},
        )
        return dataclasses.replace(config, **self.altinn2_overrides)

    def altinn2_view(self) -> Altinn2View:
        """Altinn 2 as Skatteetaten's fake sees it: the keys, and why a consent no longer holds."""

        def refusal(code: str) -> str | None:
            request = self.altinn2.get(code)
            return "unknown" if request is None else request.token_refusal(self.clock.now())

        return Altinn2View(self.altinn2_keys.public_jwks, refusal)

    def describe(self) -> list[str]:
        base = self.config.base_url
        return [
            f"Sandbox on {base}",
            f"  Maskinporten issuer  {base}/maskinporten/",
            f"  Altinn 3             {base}/altinn{altinn3.API_PATH}",
            f"  Altinn 2             {base}/altinn2{altinn2.API_PATH}",
            f"  Enhetsregisteret     {base}/brreg/enhetsregisteret/api/enheter/{{orgnr}}",
            f"  Skatteetaten         {base}/skatteetaten{skatteetaten.PATH}",
            f"    consent mode       {self.config.consent_mode.value}",
            f"  Control API          {base}/control/",
            *describe_parties(self.parties),
            *self.seed.describe(),
        ]

    def reset(self) -> None:
        """Forget every request, token and call; keep the parties, clients and keys."""
        self.register.clear()
        self.altinn2.clear()
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
        altinn2=Altinn2State(parties=parties, clock=clock, register=register),
        altinn2_keys=Altinn2Keys.generate(),
        skatteetaten=skatteetaten_state,
    )
    if config.broker_key_file is not None:
        write_private_jwk(seed.broker_client, config.broker_key_file)
    return sandbox
