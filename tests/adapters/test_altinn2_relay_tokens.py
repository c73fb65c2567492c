"""The relay's credentials for an Altinn 2 grant: a plain Maskinporten bearer with the API scope
(for the contracting authority) plus a fresh Altinn 2 consent token, against the sandbox."""

from __future__ import annotations

import pytest

from broker.altinn.altinn2_relay import SKATTEETATEN_SCOPE, Altinn2RelayTokens
from broker.consent.ports import ConsentUnavailable
from tests.adapters.altinn2_support import a2_request, a2_world
from tests.adapters.altinn_support import AUTHORITY, BROKER, SUPPLIER


@pytest.mark.parametrize(("vendor", "consumer"), [(True, AUTHORITY), (False, None)])
async def test_a_bearer_and_a_consent_token_per_call(vendor: bool, consumer: str | None) -> None:
    async with a2_world() as w:
        altinn2 = w.client()
        code = (await altinn2.create(a2_request())).id
        await w.approve(code)
        relay = Altinn2RelayTokens(w.tokens, altinn2, vendor_mode=vendor, broker_org=BROKER)
        first = await relay.consent_token(
            consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
        )
        second = await relay.consent_token(
            consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
        )
        assert first.token == second.token  # the bearer is cached ...
        assert first.altinn_samtykke
        assert second.altinn_samtykke
        assert w.sandbox.altinn2.tokens_issued == 2  # ... the consent token never is
        assert (SKATTEETATEN_SCOPE, consumer) in w.tokens.fetched
        assert "token" not in repr(first).replace("RelayCredentials", "")
        assert relay.invalidate_consent(code, token=first.token) is True
        assert relay.invalidate_consent(code, token=first.token) is False


async def test_a_consent_gone_at_altinn_is_consent_unavailable() -> None:
    async with a2_world() as w:
        altinn2 = w.client()
        code = (await altinn2.create(a2_request())).id
        relay = Altinn2RelayTokens(w.tokens, altinn2, vendor_mode=True, broker_org=BROKER)
        with pytest.raises(ConsentUnavailable):
            await relay.consent_token(
                consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
            )
