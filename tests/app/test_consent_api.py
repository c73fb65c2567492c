"""POST and GET /v1/consent-requests: the answer, every validation rule, the body's encoding.

Each test runs on SQLite and PostgreSQL, and every answer is checked against the OpenAPI
document on the way (``api_support.api_stack``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.app.api_support import (
    api_stack,
    expect_problem,
    field_errors,
    new_body,
    post,
    without,
)
from tests.flow import AUTHORITY, BROKER, PORTAL_RETURN, SUPPLIER

# The rules under test run before any SQL, so one backend shows them.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_create_answers_201_with_the_request_its_location_and_a_consent_link(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        valid_to = (s.sandbox.clock.now() + timedelta(days=30)).replace(microsecond=0)
        body = new_body(valid_to=valid_to.isoformat(), language="en", external_reference="ext-1")
        response = await post(s, body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert response.headers["location"] == f"/v1/consent-requests/{created['id']}"
        assert response.headers["cache-control"] == "no-store"
        assert created["status"] == "pending"
        assert created["status_reason"] is None
        assert created["grant"] is None
        assert (created["requestor"], created["subject"]) == (AUTHORITY, SUPPLIER)
        assert (created["reference"], created["external_reference"]) == ("case-42", "ext-1")
        assert created["language"] == "en"
        assert created["return_url"] == PORTAL_RETURN
        assert _at(created["valid_to"]) == valid_to
        assert created["created_at"] == created["updated_at"]
        assert created["consent_url"].startswith(f"{BROKER}/consent/{created['id']}/start?t=")

        read = await s.read(created["id"])
        assert without(read, "consent_url") == without(created, "consent_url")
        assert read["consent_url"].startswith(f"{BROKER}/consent/{created['id']}/start?t=")

        defaults = (await post(s, new_body())).json()
        assert defaults["language"] == "nb"
        assert defaults["external_reference"] is None
        assert _at(defaults["valid_to"]) - _at(defaults["created_at"]) == timedelta(days=90)


async def test_return_url_must_be_a_registered_url_after_normalisation(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        same = [
            "HTTPS://PORTAL.EXAMPLE/ebevis/return",
            "https://portal.example:443/ebevis/return",
            "https://Portal.Example:443/ebevis/return",
        ]
        for url in same:
            response = await post(s, new_body(return_url=url))
            assert response.status_code == 201, (url, response.text)
            assert response.json()["return_url"] == PORTAL_RETURN  # the registered spelling
        different = [
            "https://portal.example/ebevis/return/",
            "https://portal.example/Ebevis/return",
            "https://portal.example/ebevis/return?x=1",
            "https://portal.example/ebevis/return?",
            "https://portal.example/ebevis/return#top",
            "https://portal.example/ebevis/%72eturn",
            "https://portal.example/ebevis/./return",
            "https://portal.example/ebevis/x/../return",
            "http://portal.example/ebevis/return",
            "https://portal.example:8443/ebevis/return",
            "https://portal.example./ebevis/return",
            "https://user@portal.example/ebevis/return",
            "https://portal.example@evil.example/ebevis/return",
            "https://portal.example.evil.example/ebevis/return",
            "https:\\\\portal.example/ebevis/return",
            "https://[portal.example/ebevis/return",
            " https://portal.example/ebevis/return",
            "https://portal.example/ebevis/return\n",
            "//portal.example/ebevis/return",
            "/ebevis/return",
            "portal.example/ebevis/return",
            "javascript:alert(1)",
            "",
        ]
        for url in different:
            assert field_errors(await post(s, new_body(return_url=url))) == {"return_url"}, url


def _invalid_bodies(now: datetime) -> list[tuple[Any, set[str]]]:
    body = new_body()
    cases: list[tuple[Any, set[str]]] = [
        (without(body, name), {name})
        for name in ("requestor", "subject", "reference", "return_url")
    ]
    cases += [
        ({**body, "foo": 1}, {"foo"}),
        ({**body, "id": "x", "status": "granted"}, {"id", "status"}),
        (without({**body, "Requestor": AUTHORITY}, "requestor"), {"Requestor", "requestor"}),
        ({"requestor": "1", "subject": "2"}, {"requestor", "subject", "reference", "return_url"}),
    ]
    bad_orgs: list[Any] = [
        "310200017",  # wrong check digit
        "31020001",
        "3102000180",
        " 310200018",
        "310 200 018",
        "31O200018",
        "\uff13\uff11\uff10\uff12\uff10\uff10\uff10\uff11\uff18",  # full-width digits
        "",
        310200018,
        None,
        ["310200018"],
        {"orgnr": "310200018"},
    ]
    cases += [(new_body(requestor=value), {"requestor"}) for value in bad_orgs]
    cases += [(new_body(subject=value), {"subject"}) for value in bad_orgs]
    cases.append((new_body(subject=AUTHORITY), {"subject"}))
    bad_texts: list[Any] = ["", "   ", "x" * 201, "a\nb", "a\x00b", "tab\there", 42, True, ["x"]]
    cases += [(new_body(reference=value), {"reference"}) for value in [*bad_texts, None]]
    cases += [(new_body(external_reference=value), {"external_reference"}) for value in bad_texts]
    cases += [(new_body(return_url=value), {"return_url"}) for value in (42, None, ["x"], {"u": 1})]
    bad_times: list[Any] = [
        "2020-01-01T00:00:00Z",  # past
        (now - timedelta(minutes=1)).isoformat(),
        (now + timedelta(days=91)).isoformat(),  # beyond the 90-day maximum
        "2030-01-01",  # no time, so no offset
        "2030-01-01T00:00:00",  # no offset
        "tomorrow",
        "",
        1767225600,
        True,
        {"at": "2030-01-01T00:00:00Z"},
    ]
    cases += [(new_body(valid_to=value), {"valid_to"}) for value in bad_times]
    cases += [
        (new_body(language=value), {"language"}) for value in ("de", "NB", "", "no-nb", 1, None)
    ]
    cases += [(value, {""}) for value in ([], [new_body()], "text", 1, None, True)]
    return cases


async def test_each_rule_accepts_its_edges_and_names_the_field_beyond_them(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        now = s.sandbox.clock.now()
        for body, fields in _invalid_bodies(now):
            response = await post(s, body)
            assert field_errors(response) == fields, (body, response.text)
            assert "Location" not in response.headers
        listed = await s.api.get("/v1/consent-requests", headers=s.tenant.headers)
        assert listed.json()["items"] == []  # nothing invalid was stored

        accepted: list[dict[str, Any]] = [
            new_body(reference="x" * 200, external_reference="y" * 200),
            new_body(reference=" a reference with spaces, æøå and ünïcode "),
            new_body(external_reference=None, valid_to=None),
            new_body(language="nn"),
            new_body(valid_to=(now + timedelta(days=89, hours=23)).isoformat()),
            new_body(valid_to=(now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+02:00")),
            new_body(requestor="974760673", subject="310100021"),
        ]
        for body in accepted:
            response = await post(s, body)
            assert response.status_code == 201, (body, response.text)
        shifted = await post(
            s, new_body(valid_to=(now + timedelta(days=2)).strftime("%Y-%m-%dT12:00:00+02:00"))
        )
        assert shifted.json()["valid_to"].endswith("T10:00:00Z")  # stored and shown in UTC


async def test_a_body_that_is_not_a_json_document_is_400_or_415(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        headers = {**s.tenant.headers, "Content-Type": "application/json"}
        for content in (b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe\x00", b"{'a': 1}"):
            response = await s.api.post("/v1/consent-requests", content=content, headers=headers)
            expect_problem(response, 400, "invalid_json")

        raw = b'{"requestor": "310200018"}'
        for media in (
            None,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/problem+json",
            "application/jsonx",
            "text/json",
        ):
            headers = dict(s.tenant.headers)
            if media is not None:
                headers["Content-Type"] = media
            response = await s.api.post("/v1/consent-requests", content=raw, headers=headers)
            expect_problem(response, 415, "unsupported_media_type")
        for media in ("application/json; charset=utf-8", "Application/JSON"):
            response = await s.api.post(
                "/v1/consent-requests",
                content=json.dumps(new_body()).encode(),
                headers={**s.tenant.headers, "Content-Type": media},
            )
            assert response.status_code == 201, (media, response.text)


# --- Bugs found: each test shows one and will pass once it is fixed ----------------------------


@sqlite_only
async def test_language_of_a_wrong_json_type_is_422_not_500(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        assert field_errors(await post(s, new_body(language=["nb"]))) == {"language"}
        assert field_errors(await post(s, new_body(language={"nb": 1}))) == {"language"}


@sqlite_only
async def test_valid_to_at_the_ends_of_the_calendar_is_422_not_500(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
            assert field_errors(await post(s, new_body(valid_to=value))) == {"valid_to"}


@sqlite_only
async def test_deeply_nested_json_is_400_not_500(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        response = await s.api.post(
            "/v1/consent-requests",
            content=b"[" * 60_000,  # under the size limit, far over the parser's depth
            headers={**s.tenant.headers, "Content-Type": "application/json"},
        )
        expect_problem(response, 400, "invalid_json")


async def test_a_body_over_64_kib_is_413(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        body = new_body(reference="x")
        response = await s.api.post(
            "/v1/consent-requests",
            content=json.dumps({**body, "padding": "x" * 70_000}).encode(),
            headers={**s.tenant.headers, "Content-Type": "application/json"},
        )
        expect_problem(response, 413, "payload_too_large")


@sqlite_only
async def test_reference_with_del_or_c1_control_characters_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with api_stack(database_url, tmp_path) as s:
        for value in ("a\x7fb", "a\x85b", "a\x9bb"):
            assert field_errors(await post(s, new_body(reference=value))) == {"reference"}


@sqlite_only
async def test_405_names_every_allowed_method(database_url: str, tmp_path: Path) -> None:
    async with api_stack(database_url, tmp_path) as s:
        collection = await s.api.put("/v1/consent-requests", headers=s.tenant.headers)
        expect_problem(collection, 405, "method_not_allowed")
        item = await s.api.patch(f"/v1/consent-requests/{'0' * 32}", headers=s.tenant.headers)
        expect_problem(item, 405, "method_not_allowed")
        assert set(collection.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        assert set(item.headers["allow"].replace(" ", "").split(",")) >= {"GET", "DELETE"}
