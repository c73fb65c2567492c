"""``GET /v1/consent-requests/{id}/oppdrag`` and the key that signs its answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.consent.model import Caller
from broker.errors import NotAcceptable
from broker.http.request_id import request_id_of
from broker.relay.ports import Accept
from broker.relay.service import RelayService
from broker.relay.signing import BodySigner

__all__ = ["SIGNATURE_HEADER", "relay_routes"]

SIGNATURE_HEADER = "Broker-Signature"

Authenticate = Callable[[str | None], Awaitable[Caller]]


def _accept(header: str | None) -> Accept:
    """JSON unless the client asks for XML; 406 when it accepts neither."""
    if not header:
        return "json"
    ranges = [part.split(";")[0].strip().lower() for part in header.split(",")]
    if "application/json" in ranges:
        return "json"
    if "application/xml" in ranges or "text/xml" in ranges:
        return "xml"
    if any(r in ("*/*", "application/*") for r in ranges):
        return "json"
    raise NotAcceptable("The data is available as application/json or application/xml")


def relay_routes(
    service: RelayService, authenticate: Authenticate, signer: BodySigner
) -> list[Route]:
    async def oppdrag(request: Request) -> Response:
        caller = await authenticate(request.headers.get("authorization"))
        relayed = await service.oppdrag(
            caller,
            request.path_params["id"],
            accept=_accept(request.headers.get("accept")),
            correlation_id=request_id_of(request.scope),
        )
        headers = {"Cache-Control": "no-store", SIGNATURE_HEADER: relayed.signature}
        if relayed.korrelasjonsid:
            headers["Skatteetaten-Korrelasjonsid"] = relayed.korrelasjonsid
        if relayed.levert:
            headers["Skatteetaten-Levert"] = relayed.levert.isoformat()
        return Response(relayed.body, media_type=relayed.content_type, headers=headers)

    async def jwks(request: Request) -> Response:
        return JSONResponse(signer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return [
        Route("/v1/consent-requests/{id}/oppdrag", oppdrag, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
