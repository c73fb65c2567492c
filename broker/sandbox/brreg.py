"""Fake Enhetsregisteret (Brønnøysundregistrene's open API), enough for a name lookup.

Altinn 2 refuses a consent request whose ``OfferedByName`` is not the organisation's name
(``altinn-consent.md`` §2.1, §5.3), so a broker looks the supplier up here, as data.altinn.no
does in the business register (§1.3). ``GET /enhetsregisteret/api/enheter/{orgnr}`` answers 200
with ``organisasjonsnummer``, ``navn`` and ``organisasjonsform``; a malformed number gets 400 and
an unknown one 404 (the open API's behaviour; its JSON error bodies are not reproduced).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.sandbox.parties import PartyRegistry

__all__ = ["PATH", "create_app"]

PATH = "/enhetsregisteret/api/enheter/{orgnr}"


def create_app(parties: PartyRegistry) -> Starlette:
    async def enhet(request: Request) -> Response:
        orgnr = request.path_params["orgnr"]
        if len(orgnr) != 9 or not orgnr.isascii() or not orgnr.isdigit():
            return JSONResponse({"feilmelding": "Ugyldig organisasjonsnummer"}, status_code=400)
        org = parties.organisation(orgnr)
        if org is None:
            return Response(status_code=404)
        body = {
            "organisasjonsnummer": org.orgnr,
            "navn": org.name,
            "organisasjonsform": {"kode": org.org_form},
        }
        return JSONResponse(body)

    return Starlette(routes=[Route(PATH, enhet, methods=["GET"])])
