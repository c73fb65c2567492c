"""The composed sandbox: the fakes share one world, and the control API drives it."""

from __future__ import annotations

import uuid

import httpx

from broker.sandbox.seed import SKATTEETATEN_SCOPE
from tests.sandbox.sandbox_helpers import (
    APPROVER,
    AUTHORITY,
    OUTSIDER,
    SUPPLIER,
    build,
    client_for,
    create_consent,
    token,
)

OPPDRAG = f"/skatteetaten/v1/ebevis/utenlandskevirksomheter/{SUPPLIER}/oppdrag/antall"


async def _oppdrag(http: httpx.AsyncClient, bearer: str) -> httpx.Response:
    return await http.get(OPPDRAG, headers={"Authorization": f"Bearer {bearer}"})


async def test_a_consent_approved_in_altinn_opens_skatteetaten_until_revoked() -> None:
    sandbox = build()
    async with client_for(sandbox) as http:
        consent_id, created = await create_consent(http, sandbox)
        assert created["viewUri"].startswith("http://sandbox.test/altinn/")
        approved = await http.post(
            f"/control/consents/{consent_id}/approve", json={"person": APPROVER}
        )
        assert approved.status_code == 200
        assert approved.json()["status"] == "Accepted"
        assert "Status=OK" in approved.json()["redirect"]

        bearer = await token(http, sandbox, SKATTEETATEN_SCOPE, consent=(consent_id, SUPPLIER))
        ok = await _oppdrag(http, bearer)
        assert ok.status_code == 200, ok.text
        assert ok.json()["forespurteOrganisasjon"] == SUPPLIER

        revoked = await http.post(f"/control/consents/{consent_id}/revoke", json={})
        assert revoked.json()["status"] == "Revoked"
        refused = await _oppdrag(http, bearer)
        assert refused.status_code == 403
        assert refused.json()["kode"].endswith("-007")

        counters = (await http.get("/control/counters")).json()
        calls = (await http.get("/control/skatteetaten/calls")).json()
    assert [c["outcome"] for c in calls] == ["OK", "OPPDRAGUTENLANDSKEVIRKSOMHETER-007"]
    assert {c["consent_id"] for c in calls} == {str(consent_id)}
    assert counters["skatteetaten"]["over_limit_calls"] == {}
    issued = counters["maskinporten"]["tokens_issued"]
    assert {(i["scope"], i["consumer_org"]) for i in issued} == {
        ("altinn:consentrequests.write", AUTHORITY),
        (SKATTEETATEN_SCOPE, AUTHORITY),
    }
    assert counters["skatteetaten"]["calls_by_consumer"] == {AUTHORITY: 2}
    assert counters["skatteetaten"]["peak_in_flight"] == {AUTHORITY: 1}
    assert sum(r["count"] for r in counters["maskinporten"]["token_requests"]) == 2
    assert any("consentrequests" in call for call in counters["altinn"]["calls"])


async def test_control_api_refuses_what_the_end_user_could_not_do() -> None:
    sandbox = build()
    async with client_for(sandbox) as http:
        consent_id, _ = await create_consent(http, sandbox)
        outsider = await http.post(
            f"/control/consents/{consent_id}/approve", json={"person": OUTSIDER}
        )
        assert outsider.status_code == 409
        unknown = await http.post(f"/control/consents/{uuid.uuid4()}/approve")
        assert unknown.status_code == 404
        garbage = await http.post("/control/consents/not-a-uuid/approve")
        assert garbage.status_code == 404
        bad_json = await http.post(f"/control/consents/{consent_id}/approve", content=b"{")
        assert bad_json.status_code == 400
        assert bad_json.json()["error"] == "bad_json"
        no_action = await http.post(f"/control/consents/{consent_id}/dance")
        assert no_action.status_code == 404
        revoke_unaccepted = await http.post(f"/control/consents/{consent_id}/revoke")
        assert revoke_unaccepted.status_code == 409
        rejected = await http.post(f"/control/consents/{consent_id}/reject")
        assert rejected.json()["status"] == "Rejected"
        assert "Status=Failed" in rejected.json()["redirect"]
        late_approval = await http.post(f"/control/consents/{consent_id}/approve")
        assert late_approval.status_code == 409


async def test_clock_faults_quirks_latency_and_reset() -> None:
    sandbox = build()
    async with client_for(sandbox) as http:
        before = (await http.get("/control/clock")).json()["now"]
        after = (await http.post("/control/clock/advance", json={"seconds": 3600})).json()["now"]
        assert (before, after) == ("2026-11-28T10:00:00+00:00", "2026-11-28T11:00:00+00:00")
        assert (await http.post("/control/clock/advance", json={"seconds": "x"})).status_code == 400

        fault = await http.post(
            "/control/skatteetaten/fault", json={"fault": "das-003", "times": 1}
        )
        assert fault.json() == {"fault": "das-003", "times": 1}
        assert (
            await http.post("/control/skatteetaten/fault", json={"fault": "boom"})
        ).status_code == 400
        quirks = await http.post("/control/skatteetaten/quirks", json={"reordered_keys": False})
        assert quirks.json()["reordered_keys"] is False
        assert (await http.post("/control/skatteetaten/quirks", json={"x": 1})).status_code == 400
        latency = await http.post("/control/skatteetaten/latency", json={"seconds": 0.5})
        assert latency.json() == {"latency_seconds": 0.5}
        mp_fault = await http.post(
            "/control/maskinporten/fail-next",
            json={"status": 503, "error": "server_error", "description": "down"},
        )
        assert mp_fault.status_code == 200
        failed = await http.post(
            "/maskinporten/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        )
        assert failed.status_code == 503
        assert (await http.post("/control/maskinporten/fail-next", json={})).status_code == 400

        await create_consent(http, sandbox)
        assert len((await http.get("/control/consents")).json()) == 1
        assert (await http.post("/control/reset")).json() == {"reset": True}
        assert (await http.get("/control/consents")).json() == []
        assert (await http.get("/control/clock")).json()["now"] == before
    assert sandbox.skatteetaten.fault is None
    assert sandbox.skatteetaten.switches.quirks.reordered_keys is True


async def test_index_and_control_list_describe_the_seed() -> None:
    sandbox = build()
    async with client_for(sandbox) as http:
        index = await http.get("/")
        control = await http.get("/control/")
        seed = await http.get("/control/seed")
    assert SUPPLIER in index.text
    assert "POST /control/consents/{id}/approve" in control.text
    assert any("ebevis-broker-sandbox" in line for line in seed.json()["lines"])


async def test_control_api_refuses_out_of_range_numbers() -> None:
    sandbox = build()
    async with client_for(sandbox) as http:
        for path, body in [
            ("/control/clock/advance", {"seconds": 1e300}),
            ("/control/skatteetaten/latency", {"seconds": 601}),
            ("/control/skatteetaten/latency", {"seconds": -1}),
            ("/control/skatteetaten/latency", {"seconds": True}),
        ]:
            response = await http.post(path, json=body)
            assert response.status_code == 400, (path, body)
            assert response.json()["error"] == "bad_seconds"
        for body in [
            {"status": 200, "error": "x"},
            {"status": "503", "error": "x"},
            {"status": 503, "error": "x", "retry_after": -1},
        ]:
            response = await http.post("/control/maskinporten/fail-next", json=body)
            assert response.status_code == 400, body
    assert sandbox.skatteetaten.switches.latency_seconds == 0.0
