"""The fake Enhetsregisteret: a name for each seeded organisation, 404 and 400 otherwise."""

from __future__ import annotations

import pytest

from tests.sandbox.sandbox_helpers import build, client_for

PATH = "/brreg/enhetsregisteret/api/enheter"


async def test_a_seeded_organisation_has_its_name_and_form() -> None:
    async with client_for(build()) as http:
        response = await http.get(f"{PATH}/310100013")
        assert response.status_code == 200
        assert response.json() == {
            "organisasjonsnummer": "310100013",
            "navn": "NORDBYGG POLSKA NUF",
            "organisasjonsform": {"kode": "NUF"},
        }


@pytest.mark.parametrize(("orgnr", "status"), [("310100056", 404), ("31010001", 400), ("abc", 400)])
async def test_unknown_and_malformed_numbers(orgnr: str, status: int) -> None:
    async with client_for(build()) as http:
        assert (await http.get(f"{PATH}/{orgnr}")).status_code == status
