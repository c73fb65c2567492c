"""What the relay sends Skatteetaten for an Altinn 2 grant: a plain Maskinporten token with the
API scope as the bearer, plus a fresh Altinn 2 consent token as ``AltinnSamtykke``
(``skatteetaten.md`` §1.3, §4.3; ``altinn-consent.md`` §1.1 step 6).

The consent token lives 30 seconds, so one is fetched (and verified) for every relay call; the
bearer is an ordinary cached access token, for the contracting authority (``consumer_org``) in
the vendor model, as Skatteetaten checks that the consent's ``CoveredBy`` is the token's
consumer (§4.4, inferred).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from broker.altinn.altinn2 import Altinn2Client
from broker.altinn.client import AccessTokens

__all__ = ["SKATTEETATEN_SCOPE", "Altinn2RelayTokens", "RelayCredentials"]

SKATTEETATEN_SCOPE = "skatteetaten:oppdragutenlandskevirksomheter"
_REMEMBERED = 4096


@dataclass(frozen=True)
class RelayCredentials:
    token: str = field(repr=False)  # the bearer
    altinn_samtykke: str | None = field(repr=False, default=None)


class Altinn2RelayTokens:
    """The relay's ``ConsentTokenSource`` for Altinn 2 grants."""

    def __init__(
        self,
        bearer: AccessTokens,
        consents: Altinn2Client,
        *,
        vendor_mode: bool,
        broker_org: str,
        scope: str = SKATTEETATEN_SCOPE,
    ) -> None:
        self._bearer = bearer
        self._consents = consents
        self._vendor_mode = vendor_mode
        self._broker_org = broker_org
        self._scope = scope
        # consent id -> the consumer_org its bearer was asked for, to drop that bearer later.
        self._consumers: OrderedDict[uuid.UUID, str | None] = OrderedDict()

    async def consent_token(
        self, *, consent_id: uuid.UUID, subject_org: str, requestor_org: str
    ) -> RelayCredentials:
        """Raises the consent ports' errors: ``ConsentUnavailable`` when Altinn 2 has no valid
        consent under the code any more."""
        samtykke = await self._consents.consent_token(
            consent_id=consent_id, subject_org=subject_org, requestor_org=requestor_org
        )
        consumer = None
        if self._vendor_mode and requestor_org != self._broker_org:
            consumer = requestor_org
        bearer = await self._bearer.access_token(self._scope, consumer_org=consumer)
        self._consumers[consent_id] = consumer
        self._consumers.move_to_end(consent_id)
        while len(self._consumers) > _REMEMBERED:
            self._consumers.popitem(last=False)
        return RelayCredentials(bearer.token, samtykke.token)

    def invalidate_consent(self, consent_id: uuid.UUID, *, token: str | None = None) -> bool:
        """Drop the bearer Skatteetaten refused (the consent token is never cached)."""
        consumer = self._consumers.get(consent_id)
        return bool(self._bearer.invalidate(self._scope, consumer_org=consumer, token=token))
