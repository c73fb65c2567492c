"""The demo portal against a fake broker: the form, starting a request, the return and detail
pages, the broker's failures, the page headers, and mounting under /portal."""

from __future__ import annotations

import re
import uuid
from html import escape

import httpx
import pytest
from starlette.responses import JSONResponse, PlainTextResponse

from broker.sandbox.parties import OrgKind, default_parties
from broker.sandbox.portal import PortalRequests, SignatureInvalid, verify_signature
from broker.sandbox.portal_html import PortalEntry
from tests.sandbox.portal_helpers import (
    API_KEY,
    AUTHORITY,
    AUTHORITY_2,
    BROKER,
    BROKER_ORG,
    GRANT_VALID_TO,
    KORRELASJONSID,
    LEVERT,
    MOUNTED_RETURN_URL,
    RETURN_URL,
    SUPPLIER,
    SUPPLIER_2,
    FakeBroker,
    assert_page_headers,
    b64,
    broker_fixture,  # noqa: F401 - pytest fixture
    config,
    detached,
    element_text,
    form,
    hidden,
    portal_client,
    portal_fixture,  # noqa: F401 - pytest fixture
    problem_response,
    public_jwks,
    signing_key,
    start,
    unreachable,
)


def _select(page: httpx.Response, name: str) -> str:
    match = re.search(rf'<select id="{name}" name="{name}" required>(.*?)</select>', page.text)
    assert match is not None, page.text
    return match.group(1)


# --- the form -----------------------------------------------------------------------------------


async def test_form_lists_the_seed_parties(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="en">' in page.text
    assert "<h1>Procurement portal</h1>" in page.text
    parties = default_parties()
    for name, kind in (
        ("requestor", OrgKind.CONTRACTING_AUTHORITY),
        ("subject", OrgKind.FOREIGN_SUPPLIER),
    ):
        options = re.findall(
            r'<option value="(\d+)"(?: selected)?>([^<]*)</option>', _select(page, name)
        )
        assert options == [(o.orgnr, f"{o.name} ({o.orgnr})") for o in parties.of_kind(kind)]
    assert BROKER_ORG not in page.text
    languages = re.findall(r'<option value="([a-z]+)"', _select(page, "language"))
    assert languages == ["nb", "nn", "en"]
    for field, label in (
        ("requestor", "Contracting authority (requestor)"),
        ("subject", "Supplier (subject)"),
        ("reference", "Reference"),
        ("language", "Language"),
    ):
        assert f'<label for="{field}">{label}</label>' in page.text
    assert '<input id="reference" name="reference" type="text" maxlength="200"' in page.text
    assert '<form id="start-form" method="post" action="/start">' in page.text
    assert '<button type="submit">Ask for consent</button>' in page.text
    assert '<p id="no-requests">No requests yet.</p>' in page.text


async def test_each_form_carries_a_fresh_uuid4_idempotency_key(portal: httpx.AsyncClient) -> None:
    first, second = await portal.get("/"), await portal.get("/")
    keys = [hidden(page, "idempotency_key") for page in (first, second)]
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert keys[0] != keys[1]
    assert hidden(first, "csrf") == hidden(second, "csrf")


# --- starting a request -------------------------------------------------------------------------


async def test_start_posts_the_contract_body_and_redirects_to_consent_url(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    page = await portal.get("/")
    fields = form(page, reference="  Tender 2026/42  ")
    response = await portal.post("/start", data=fields)
    assert response.status_code == 303, response.text
    assert_page_headers(response)
    [call] = broker.posts()
    assert call.path == "/v1/consent-requests"
    assert call.headers["authorization"] == f"Bearer {API_KEY}"
    assert call.headers["idempotency-key"] == fields["idempotency_key"]
    assert call.headers["content-type"] == "application/json"
    assert httpx.Response(200, content=call.body).json() == {
        "requestor": AUTHORITY,
        "subject": SUPPLIER,
        "reference": "Tender 2026/42",
        "return_url": RETURN_URL,
        "language": "en",
    }
    [request_id] = broker.requests
    assert response.headers["location"] == broker.requests[request_id]["consent_url"]
    assert response.headers["location"].startswith(f"{BROKER}/")


async def test_created_requests_are_listed_newest_first(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    await start(portal, reference="First")
    await start(portal, reference="Second", requestor=AUTHORITY_2, subject=SUPPLIER_2)
    page = await portal.get("/")
    links = re.findall(r'<a href="/requests/([0-9a-f-]+)">\1</a>', page.text)
    assert links == list(reversed(broker.requests))
    assert "<td>FJELLBYGD KOMMUNE (310200026)</td>" in page.text
    assert "<td>SVENSK ELINSTALLATION NUF (310100048)</td>" in page.text
    assert page.text.index("Second") < page.text.index("First")


async def test_resubmitting_one_form_reuses_its_idempotency_key(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    fields = form(await portal.get("/"))
    first = await portal.post("/start", data=fields)
    again = await portal.post("/start", data=fields)
    assert first.headers["location"] == again.headers["location"]
    assert len(broker.requests) == 1
    page = await portal.get("/")
    assert len(re.findall(r'<a href="/requests/', page.text)) == 1


@pytest.mark.parametrize(
    "csrf", [None, "", "forged", "x" * 43], ids=["missing", "empty", "forged", "same-length"]
)
async def test_start_refuses_a_form_without_the_csrf_token(
    broker: FakeBroker, portal: httpx.AsyncClient, csrf: str | None
) -> None:
    fields = form(await portal.get("/"))
    if csrf is None:
        del fields["csrf"]
    else:
        fields["csrf"] = csrf
    response = await portal.post("/start", data=fields)
    assert response.status_code == 403
    assert_page_headers(response)
    assert "<h1>Form expired</h1>" in response.text
    assert broker.calls == []


async def test_start_refuses_a_json_body(broker: FakeBroker, portal: httpx.AsyncClient) -> None:
    response = await portal.post("/start", json=form(await portal.get("/")))
    assert response.status_code == 403
    assert broker.calls == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("requestor", SUPPLIER, "Choose a contracting authority from the list."),
        ("subject", AUTHORITY, "Choose a supplier from the list."),
        ("subject", "310100056", "Choose a supplier from the list."),
        ("reference", "   ", "Write a reference of 1 to 200 characters."),
        ("reference", "x" * 201, "Write a reference of 1 to 200 characters."),
        ("reference", "a\x00b", "The reference may not contain control characters."),
        ("language", "de", "Choose a language from the list."),
        ("idempotency_key", "not-a-uuid", "The form has expired; submit it again."),
        ("idempotency_key", str(uuid.uuid1()), "The form has expired; submit it again."),
    ],
)
async def test_start_validates_the_form(
    broker: FakeBroker, portal: httpx.AsyncClient, field: str, value: str, message: str
) -> None:
    response = await start(portal, **{field: value})
    assert response.status_code == 400
    assert_page_headers(response)
    assert '<div class="errors" role="alert" id="form-errors">' in response.text
    assert f"<li>{message}</li>" in response.text
    assert broker.calls == []


async def test_a_rejected_form_keeps_the_choices(portal: httpx.AsyncClient) -> None:
    response = await start(portal, reference="", subject=SUPPLIER_2, language="nn")
    assert f'<option value="{SUPPLIER_2}" selected>' in response.text
    assert '<option value="nn" selected>' in response.text
    assert 'aria-invalid="true"' in response.text


# --- the broker's failures ----------------------------------------------------------------------


async def test_a_problem_from_the_broker_is_shown(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    response = await start(portal, reference="<b>Tender</b>")
    assert response.status_code == 303
    broker.return_urls = ()
    response = await start(portal)
    assert response.status_code == 400
    assert_page_headers(response)
    assert element_text(response, "problem-title") == "Validation failed"
    detail = "return_url is not registered for this client"
    assert element_text(response, "problem-detail") == detail
    assert element_text(response, "problem-code") == "validation_failed"
    assert API_KEY not in response.text


@pytest.mark.parametrize(
    ("status", "shown"), [(400, 400), (401, 502), (403, 502), (404, 404), (409, 400), (500, 502)]
)
async def test_problem_statuses_map_to_page_statuses(
    broker: FakeBroker, portal: httpx.AsyncClient, status: int, shown: int
) -> None:
    broker.refusal = problem_response(status, "some_code", "Some title", "Some detail")
    response = await start(portal)
    assert response.status_code == shown
    assert element_text(response, "problem-status") == str(status)
    assert element_text(response, "problem-code") == "some_code"


async def test_the_api_key_is_redacted_from_a_problem(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    broker.refusal = problem_response(401, "bad_key", f"Key {API_KEY}", f"Unknown {API_KEY}")
    response = await start(portal)
    assert API_KEY not in response.text
    assert element_text(response, "problem-detail") == "Unknown [redacted]"


@pytest.mark.parametrize(
    "answer",
    [
        PlainTextResponse("upstream down", status_code=503),
        JSONResponse({"error": "nope"}, status_code=500),
        PlainTextResponse("not json", status_code=201),
        JSONResponse({"id": str(uuid.uuid4()), "status": "pending"}, status_code=201),
        JSONResponse(["a list"], status_code=201),
        JSONResponse({"id": "not-a-uuid"}, status_code=201),
    ],
    ids=["text-503", "json-500", "text-201", "incomplete-201", "list-201", "bad-id-201"],
)
async def test_an_unreadable_answer_is_a_502(
    broker: FakeBroker, portal: httpx.AsyncClient, answer: JSONResponse
) -> None:
    broker.refusal = answer
    response = await start(portal)
    assert response.status_code == 502
    assert "<h1>Unexpected answer from the broker</h1>" in response.text


async def test_a_consent_url_that_is_not_http_is_not_followed(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request(consent_url="javascript:alert(1)")
    broker.refusal = JSONResponse(broker.requests[request_id], status_code=201)
    response = await start(portal)
    assert response.status_code == 502
    assert "location" not in response.headers
    assert "javascript:" not in response.text


@pytest.mark.parametrize("path", ["/start", "/return", "/requests"])
async def test_an_unreachable_broker_gives_a_502_page(path: str) -> None:
    async with portal_client(unreachable()) as portal:
        if path == "/start":
            response = await start(portal)
        else:
            request_id = uuid.uuid4()
            url = f"/return?consent_request={request_id}" if path == "/return" else None
            response = await portal.get(url or f"/requests/{request_id}")
    assert response.status_code == 502
    assert_page_headers(response)
    assert "<h1>Broker unreachable</h1>" in response.text
    assert "ConnectError" in response.text
    assert API_KEY not in response.text


# --- the return and detail pages ----------------------------------------------------------------


async def test_the_return_page_shows_the_api_status_not_the_query(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    await start(portal)
    [request_id] = broker.requests
    broker.answer(request_id, "granted")
    response = await portal.get(
        "/return", params={"consent_request": request_id, "status": "denied"}
    )
    assert response.status_code == 200
    assert_page_headers(response)
    assert "<h1>Consent request</h1>" in response.text
    assert element_text(response, "status") == "granted"
    assert "denied" not in response.text
    assert '<p id="return-hint">' in response.text
    assert element_text(response, "request-id") == request_id
    requestor = "DIREKTORATET FOR SANDKASSEBYGG (310200018)"
    assert element_text(response, "request-requestor") == requestor
    assert element_text(response, "request-subject") == "NORDBYGG POLSKA NUF (310100013)"
    assert element_text(response, "request-reference") == "Tender 2026/42"
    expected = f'<time datetime="{GRANT_VALID_TO}">2027-03-02 09:05:00 UTC'
    assert element_text(response, "grant-valid-to") == expected


async def test_the_return_page_shows_a_pending_status_even_if_the_query_says_granted(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request()
    response = await portal.get(f"/return?consent_request={request_id}&status=granted")
    assert element_text(response, "status") == "pending"
    assert '<dl id="grant">' not in response.text
    consent_url = escape(broker.requests[request_id]["consent_url"])
    assert f'<a href="{consent_url}">Continue to the consent dialog</a>' in response.text


async def test_the_history_is_a_table(broker: FakeBroker, portal: httpx.AsyncClient) -> None:
    request_id = broker.seed_request("denied")
    broker.requests[request_id]["status_reason"] = "User did not give consent"
    broker.histories[request_id][-1]["reason"] = "User did not give consent"
    response = await portal.get(f"/requests/{request_id}")
    assert element_text(response, "status") == "denied"
    assert element_text(response, "status-reason") == "User did not give consent"
    table = re.search(r'<table id="history">(.*?)</table>', response.text)
    assert table is not None
    assert "<caption>" in table.group(1)
    headers = re.findall(r'<th scope="col">([^<]*)</th>', table.group(1))
    assert headers == ["Time", "Action", "Status after", "Reason"]
    rows = re.findall(
        r"<tr><td>.*?</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table.group(1)
    )
    assert rows == [
        ("created", "pending", ""),
        ("redirected", "redirected", ""),
        ("denied", "denied", "User did not give consent"),
    ]


async def test_the_detail_page_has_no_return_hint(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request("granted")
    response = await portal.get(f"/requests/{request_id}")
    assert response.status_code == 200
    assert element_text(response, "status") == "granted"
    assert "return-hint" not in response.text
    assert f'<a href="/requests/{request_id}">Refresh this request</a>' in response.text
    assert "Continue to the consent dialog" not in response.text


async def test_values_from_the_api_are_escaped(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    await start(portal, reference='<script>alert("x")</script>')
    [request_id] = broker.requests
    for path in ("/", f"/requests/{request_id}"):
        page = await portal.get(path)
        assert "<script>" not in page.text
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 400), ("?consent_request=nope", 400), (f"?consent_request={uuid.uuid4()}", 404)],
    ids=["missing", "not-a-uuid", "unknown"],
)
async def test_the_return_page_without_a_known_request_is_an_error(
    portal: httpx.AsyncClient, query: str, status: int
) -> None:
    response = await portal.get(f"/return{query}")
    assert response.status_code == status
    assert_page_headers(response)
    assert "<h1>" in response.text
    assert 'id="status"' not in response.text


async def test_an_unknown_request_shows_the_api_problem(portal: httpx.AsyncClient) -> None:
    response = await portal.get(f"/requests/{uuid.uuid4()}")
    assert response.status_code == 404
    assert element_text(response, "problem-code") == "not_found"
    response = await portal.get("/requests/not-a-uuid")
    assert response.status_code == 404


# --- headers, routing, state --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/nowhere", 404),
        ("GET", "/start", 405),
        ("POST", "/start", 403),
        ("GET", "/return", 400),
        ("GET", "/requests/x", 404),
    ],
)
async def test_every_page_has_the_security_headers(
    portal: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await portal.request(method, path)
    assert response.status_code == status
    assert_page_headers(response)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="en">' in response.text


async def test_mounted_under_a_prefix_links_and_actions_carry_it(broker: FakeBroker) -> None:
    async with portal_client(broker.http(), prefix="/portal") as portal:
        page = await portal.get("/portal/")
        assert '<form id="start-form" method="post" action="/portal/start">' in page.text
        assert '<a href="/portal/">Back to the portal</a>' in page.text
        response = await start(portal, "/portal")
        assert response.status_code == 303
        [request_id] = broker.requests
        body = httpx.Response(200, content=broker.posts()[0].body).json()
        assert body["return_url"] == MOUNTED_RETURN_URL
        page = await portal.get("/portal/")
        assert f'<a href="/portal/requests/{request_id}">{request_id}</a>' in page.text
        returned = await portal.get(f"/portal/return?consent_request={request_id}")
        assert f'<a href="/portal/requests/{request_id}">Refresh' in returned.text
        assert '<a href="/portal/">Back to the portal</a>' in returned.text
        missing = await portal.get("/portal/nowhere")
        assert missing.status_code == 404
        assert '<a href="/portal/">Back to the portal</a>' in missing.text


async def test_each_portal_keeps_its_own_list(broker: FakeBroker) -> None:
    requests = PortalRequests()
    async with portal_client(broker.http(), requests=requests) as portal:
        await start(portal)
    assert [e.id for e in requests.newest_first()] == list(broker.requests)
    async with portal_client(broker.http()) as other:
        page = await other.get("/")
    assert '<p id="no-requests">' in page.text


def test_the_request_list_is_bounded() -> None:
    requests = PortalRequests(limit=2)
    for n in range(3):
        requests.add(PortalEntry(str(n), AUTHORITY, SUPPLIER, f"ref {n}", "2026-01-01T00:00:00Z"))
    assert [e.id for e in requests.newest_first()] == ["2", "1"]


def test_the_config_repr_hides_the_api_key() -> None:
    assert API_KEY not in repr(config())


# --- the data (relay) ----------------------------------------------------------------------------


async def test_a_granted_request_offers_to_fetch_the_data(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    granted = broker.seed_request("granted")
    pending = broker.seed_request()
    page = await portal.get(f"/requests/{granted}")
    assert f'<a id="fetch-data" href="/requests/{granted}/data">Fetch the data</a>' in page.text
    assert 'id="fetch-data"' not in (await portal.get(f"/requests/{pending}")).text


async def test_the_data_page_shows_the_counts_levert_korrelasjonsid_and_verified_signature(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request("granted")
    page = await portal.get(f"/requests/{request_id}/data")
    assert page.status_code == 200, page.text
    assert_page_headers(page)
    assert '<p id="signature" class="verified">Signature verified (key fake-broker-1).</p>' in (
        page.text
    )
    assert element_text(page, "count-antallAktiveOppdragSomArbeidsgiver") == "44"
    assert element_text(page, "count-antallAktiveArbeidstakere") == "64"
    assert element_text(page, "count-antallRegistrerteOppdragSomOppdragsgiver") == "14"
    assert element_text(page, "data-subject") == SUPPLIER
    assert element_text(page, "data-korrelasjonsid") == KORRELASJONSID
    assert element_text(page, "data-request-id") == "relay-request-1"
    assert f'<time datetime="{LEVERT}">2026-03-02 09:05:00 UTC</time>' in page.text
    relay, jwks = broker.calls[-2:]
    assert relay.path == f"/v1/consent-requests/{request_id}/oppdrag"
    assert relay.headers["authorization"] == f"Bearer {API_KEY}"
    assert relay.headers["accept"] == "application/json"
    assert jwks.path == "/.well-known/jwks.json"
    assert "authorization" not in jwks.headers  # the keys are public: no key is sent there


@pytest.mark.parametrize("case", ["tampered", "other-key", "unknown-kid", "missing", "garbage"])
async def test_a_signature_that_does_not_verify_shows_an_error_and_no_data(
    broker: FakeBroker, portal: httpx.AsyncClient, case: str
) -> None:
    request_id = broker.seed_request("granted")
    if case == "tampered":
        broker.tamper = broker.oppdrag_body.replace(b"44", b"45")
    elif case == "other-key":
        broker.signature = detached(broker.oppdrag_body, signing_key("fake-broker-1-rotated"))
        broker.published = [broker.key]
    elif case == "unknown-kid":
        broker.published = [signing_key("fake-broker-2")]
    elif case == "missing":
        broker.signature = ""
    else:
        broker.signature = "not.a.jws"
    page = await portal.get(f"/requests/{request_id}/data")
    assert page.status_code == 502
    assert_page_headers(page)
    assert '<p id="signature" class="failed" role="alert">Signature NOT verified' in page.text
    assert "Signature verified" not in page.text
    assert 'id="count-' not in page.text
    assert KORRELASJONSID not in page.text


async def test_the_signature_covers_the_exact_bytes() -> None:
    body = b'{"a": 1}'
    key = signing_key()
    signature = detached(body, key)
    assert verify_signature(signature, body, public_jwks(key)) == "fake-broker-1"
    for other in (b'{"a":1}', body + b"\n", b""):
        with pytest.raises(SignatureInvalid):
            verify_signature(signature, other, public_jwks(key))
    protected, _, rest = signature.partition("..")
    with pytest.raises(SignatureInvalid):  # an attached JWS is not what the broker sends
        verify_signature(f"{protected}.{b64(body)}.{rest}", body, public_jwks(key))


async def test_a_refused_fetch_shows_the_brokers_problem(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request("denied")
    page = await portal.get(f"/requests/{request_id}/data")
    assert page.status_code == 400
    assert element_text(page, "problem-code") == "consent_not_granted"
    assert "Signature" not in page.text
    unknown = await portal.get(f"/requests/{uuid.uuid4()}/data")
    assert unknown.status_code == 404
    assert element_text(unknown, "problem-code") == "not_found"
    assert (await portal.get("/requests/nope/data")).status_code == 404


async def test_history_entries_that_change_no_status_are_shown_too(
    broker: FakeBroker, portal: httpx.AsyncClient
) -> None:
    request_id = broker.seed_request("granted")
    entry = {"at": "2026-12-01T10:00:00Z", "action": "oppdrag.fetch", "state": None, "reason": None}
    broker.histories[request_id].append(entry)
    response = await portal.get(f"/requests/{request_id}")
    assert response.status_code == 200
    assert "<td>oppdrag.fetch</td><td></td><td></td>" in response.text
