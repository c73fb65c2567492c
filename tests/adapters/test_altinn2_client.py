"""The Altinn 2 adapter against the sandbox's fake Altinn 2: create, status, consent tokens,
withdrawal, both authentication modes, and the names it takes from Enhetsregisteret."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from broker.altinn.altinn2 import Altinn2Auth
from broker.altinn.errors import AltinnRefused
from broker.consent.ports import AltinnStatus, ConsentUnavailable, UpstreamRefused
from tests.adapters.altinn2_support import RETURN, a2_request, a2_world
from tests.adapters.altinn_support import AUTHORITY, BROKER, START, SUPPLIER

SERVICE_SCOPE = "altinn:consentrequests.write"


async def test_create_posts_a_pre_registered_request_and_returns_code_and_gui_link() -> None:
    async with a2_world() as w:
        created = await w.client().create(a2_request(language="en"))
        [stored] = w.sandbox.altinn2.requests()
        assert created.id == stored.code
        assert created.view_uri == (
            f"http://sandbox.test/altinn2/ui/AccessConsent/request?id={stored.code}&languageCode=en"
        )
        assert (stored.covered_by, stored.offered_by) == (AUTHORITY, SUPPLIER)
        assert stored.handled_by == BROKER  # the vendor, by its token's supplier
        assert stored.offered_by_name == "NORDBYGG POLSKA NUF"  # from Enhetsregisteret
        assert stored.resources[0].metadata == {
            "requestor": AUTHORITY,
            "requestorName": "DIREKTORATET FOR SANDKASSEBYGG",
        }
        assert stored.request_message is None  # Skatteetaten forbids one
        assert stored.redirect_url == RETURN
        assert stored.valid_to == (START + timedelta(days=90))  # whole seconds
        # The vendor flow: a token for the authority, with the request scope.
        assert w.tokens.fetched == [(SERVICE_SCOPE, AUTHORITY)]


async def test_create_with_a_stored_code_reads_the_request_back() -> None:
    async with a2_world() as w:
        client = w.client()
        first = await client.create(a2_request())
        again = await client.create(a2_request(id=first.id, language="nn"))
        assert again.id == first.id
        assert again.view_uri.endswith("&languageCode=nn-NO")
        assert len(w.sandbox.altinn2.requests()) == 1


async def test_status_follows_the_request() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        state = await client.status(code, requestor_org=AUTHORITY)
        assert state.status is AltinnStatus.CREATED
        assert state.resources == ("5616_2",)
        assert (state.subject_org, state.requestor_org) == (SUPPLIER, AUTHORITY)
        await w.approve(code)
        assert (await client.status(code, requestor_org=AUTHORITY)).status is AltinnStatus.ACCEPTED
        w.sandbox.clock.advance(timedelta(days=91).total_seconds())
        assert (await client.status(code, requestor_org=AUTHORITY)).status is AltinnStatus.EXPIRED


async def test_a_refusal_reads_as_rejected() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        response = await w.world.http.post(f"/control/altinn2/{code}/reject", json={})
        assert response.status_code == 200
        assert (await client.status(code, requestor_org=AUTHORITY)).status is AltinnStatus.REJECTED


async def test_a_consent_token_is_fetched_verified_and_read() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        await w.approve(code)
        token = await client.consent_token(
            consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
        )
        assert token.consent_id == code
        assert token.resources == ("5616_2",)
        assert token.valid_to == START + timedelta(days=90)
        assert token.consented_at == START
        assert token.expires_at == START + timedelta(seconds=30)
        assert ("altinn:consenttokens", AUTHORITY) in w.tokens.fetched


@pytest.mark.parametrize(
    ("end", "code"),
    [
        (None, "altinn2_created"),
        ("reject", "altinn2_rejected"),
        ("revoke", "altinn2_revoked"),
        ("expire", "altinn2_expired"),
    ],
)
async def test_no_token_is_consent_unavailable_with_the_reason(end: str | None, code: str) -> None:
    async with a2_world() as w:
        client = w.client()
        consent = (await client.create(a2_request())).id
        if end in ("revoke", "expire"):
            await w.approve(consent)
        if end is not None:
            response = await w.world.http.post(f"/control/altinn2/{consent}/{end}", json={})
            assert response.status_code == 200
        with pytest.raises(ConsentUnavailable) as refused:
            await client.consent_token(
                consent_id=consent, subject_org=SUPPLIER, requestor_org=AUTHORITY
            )
        assert refused.value.code == code


async def test_a_403_for_our_access_is_not_taken_for_a_revoked_consent() -> None:
    async with a2_world() as w:
        code = (await w.client().create(a2_request())).id
        await w.approve(code)
        with pytest.raises(AltinnRefused) as refused:
            await w.client(api_key="wrong").consent_token(
                consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
            )
        assert not isinstance(refused.value, ConsentUnavailable)
        assert refused.value.code == "forbidden"


async def test_a_token_for_other_parties_is_refused() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        await w.approve(code)
        with pytest.raises(AltinnRefused) as refused:
            await client.consent_token(
                consent_id=code, subject_org="310100021", requestor_org=AUTHORITY
            )
        assert refused.value.code == "invalid_token"


async def test_withdraw_deletes_an_unanswered_request() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        assert await client.withdraw(code, requestor_org=AUTHORITY, granted=False) is True
        assert w.sandbox.altinn2.get(code) is None  # withdrawn: Altinn forgets it
        # Again: nothing left to withdraw, which is done as well.
        assert await client.withdraw(code, requestor_org=AUTHORITY, granted=False) is True


async def test_withdraw_discards_a_grant_and_no_token_comes_after() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        await w.approve(code)
        assert await client.withdraw(code, requestor_org=AUTHORITY, granted=True) is True
        request = w.sandbox.altinn2.get(code)
        assert request is not None
        assert request.discarded
        with pytest.raises(ConsentUnavailable):
            await client.consent_token(
                consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
            )


async def test_withdraw_of_a_request_answered_meanwhile_discards_its_grant() -> None:
    async with a2_world() as w:
        client = w.client()
        code = (await client.create(a2_request())).id
        await w.approve(code)  # the broker still thinks it unanswered
        assert await client.withdraw(code, requestor_org=AUTHORITY, granted=False) is True
        request = w.sandbox.altinn2.get(code)
        assert request is not None
        assert request.discarded


async def test_the_api_key_alone_works_for_the_srr_approved_handler() -> None:
    async with a2_world() as w:
        client = w.client(auth=Altinn2Auth.APIKEY)
        code = (await client.create(a2_request())).id
        await w.approve(code)
        token = await client.consent_token(
            consent_id=code, subject_org=SUPPLIER, requestor_org=AUTHORITY
        )
        assert token.consent_id == code
        assert w.tokens.fetched == []  # no Maskinporten at all


async def test_a_spoiled_maskinporten_token_is_dropped_and_fetched_again() -> None:
    async with a2_world() as w:
        w.tokens.spoil(SERVICE_SCOPE, AUTHORITY)
        created = await w.client().create(a2_request())
        assert created.id == w.sandbox.altinn2.requests()[0].code
        assert w.tokens.invalidated == [(SERVICE_SCOPE, AUTHORITY)]


async def test_refusals_keep_altinns_error_codes() -> None:
    async with a2_world() as w:
        with pytest.raises(AltinnRefused) as refused:
            await w.client().create(a2_request(redirect_url="https://evil.example/back"))
        assert refused.value.code == "19005"
        assert refused.value.status == 400
        assert refused.value.codes == ("19005",)
        assert w.sandbox.altinn2.requests() == []


async def test_an_unknown_organisation_is_refused_before_altinn_is_asked() -> None:
    async with a2_world() as w:
        with pytest.raises(UpstreamRefused) as refused:
            await w.client().create(a2_request(subject_org="310100056"))
        assert refused.value.code == "unknown_organisation"
        assert w.sandbox.altinn2.requests() == []


async def test_the_client_never_shows_its_api_key() -> None:
    async with a2_world() as w:
        client = w.client()
        assert "sandbox-altinn2" not in repr(client)
        assert repr(client) == "Altinn2Client(service='5616_2', auth='maskinporten')"


async def test_a_request_read_for_another_code_is_refused() -> None:
    async with a2_world() as w:
        with pytest.raises(AltinnRefused) as refused:
            await w.client().status(uuid.uuid4(), requestor_org=AUTHORITY)
        assert refused.value.code == "forbidden"
