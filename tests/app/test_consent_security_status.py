"""G5 (security.md §6): ``Status=`` on the way back is a hint; Altinn and Maskinporten decide.

No case here may reach Skatteetaten: confirming an answer needs Altinn's status and a consent
token, never a data call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.app.security_support import (
    assert_page,
    grant_rows,
    history_actions,
    pending_return,
    portal_query,
    upstream_calls,
)
from tests.flow import Stack, stack

NO_SKATTEETATEN: dict[str, dict[str, int]] = {"calls_by_consumer": {}, "calls_by_outcome": {}}
_FAILED_HINT = "Failed&ErrorMessage=User+did+not+give+consent"
CASES: dict[str, list[tuple[list[str], str, str, str, str | None]]] = {
    "altinn3": [
        (["reject"], "OK", "denied", "denied", None),
        (["approve", "revoke"], "OK", "failed", "failed", "altinn_revoked"),
        (["approve", "expire"], "OK", "failed", "expired", None),
        (["approve", "delete"], "OK", "failed", "failed", "altinn_deleted"),
        # ... and a "Failed" hint does not undo a real approval either.
        (["approve"], _FAILED_HINT, "granted", "granted", None),
    ],
    # Altinn 2 keeps "Accepted" after a revocation (altinn-consent.md §4.1): only the refused
    # token tells, so the request fails as not confirmed.
    "altinn2": [
        (["reject"], "OK", "denied", "denied", None),
        (["approve", "revoke"], "OK", "failed", "failed", "consent_not_confirmed"),
        (["approve", "expire"], "OK", "failed", "expired", None),
        (["approve"], _FAILED_HINT, "granted", "granted", None),
        (["reject"], "OK&AuthorizationCode=x", "denied", "denied", None),
    ],
}


async def _answer_then_return(s: Stack, reference: str, actions: list[str], status: str) -> Any:
    """A flow whose person does ``actions`` in Altinn, then comes back saying ``status``."""
    created = await s.create(reference=reference)
    async with s.browser() as person:
        altinn_id = await s.go_to_altinn(person, created["consent_url"])
        back = pending_return(s, altinn_id)
        for action in actions:
            response = await s.sandbox_http.post(s.control_path(altinn_id, action))
            assert response.status_code == 200, response.text
        answer = await person.get(f"{back}&Status={status}")
    assert portal_query(answer)["consent_request"] == created["id"]
    body = await s.read(created["id"])
    return (
        portal_query(answer)["status"],
        body["status"],
        body["status_reason"],
        body["grant"] is None,
        await grant_rows(s, created["id"]),
    )


async def test_g5_a_forged_status_ok_before_any_answer_grants_nothing(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        created = await s.create()
        async with s.browser() as person:
            altinn_id = await s.go_to_altinn(person, created["consent_url"])
            back = pending_return(s, altinn_id)
            assert "Status=" not in back  # Altinn still says Created
            forged = [
                await person.get(f"{back}&Status=OK"),
                await person.get(f"{back}&Status=OK&AuthorizationCode={altinn_id}"),
                await person.get(f"{back}&Status=Accepted"),
            ]
            for response in forged:
                assert portal_query(response) == {
                    "consent_request": created["id"],
                    "status": "pending",
                }
            body = await s.read(created["id"])
            assert (body["status"], body["grant"]) == ("redirected", None)
            assert await grant_rows(s, created["id"]) == 0
            assert await history_actions(s, created["id"]) == ["created", "redirected"]
            # The request stayed open: the real answer still comes through once.
            done = await person.get(await s.answer(altinn_id))
            again = await person.get(f"{back}&Status=OK")
        assert portal_query(done) == {"consent_request": created["id"], "status": "granted"}
        assert_page(again, 409, "return_used")
        assert await history_actions(s, created["id"]) == ["created", "redirected", "granted"]
        assert (await upstream_calls(s))["skatteetaten"] == NO_SKATTEETATEN


async def test_g5_status_ok_is_not_believed_over_altinn(
    database_url: str, tmp_path: Path, generation: str
) -> None:
    """(done in Altinn before the return, Status sent, portal status, state, state reason)"""
    cases = CASES[generation]
    async with stack(database_url, tmp_path, altinn_generation=generation) as s:
        results = [
            await _answer_then_return(s, f"case-{n}", actions, status)
            for n, (actions, status, *_) in enumerate(cases)
        ]
        expected = [
            (portal, state, reason, state != "granted", int(state == "granted"))
            for _, _, portal, state, reason in cases
        ]
        assert results == expected
        assert (await upstream_calls(s))["skatteetaten"] == NO_SKATTEETATEN
