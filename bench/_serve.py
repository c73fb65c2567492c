"""One server of the relay benchmark, in its own process (``python -m bench._serve KIND CONFIG``).

KIND is ``sandbox`` (the fake upstreams), ``broker`` (the broker on a database),
``passthrough`` (the baseline: bare Starlette + httpx forwarding to the sandbox's Skatteetaten
with a consent token fetched once and refreshed in the background, never on the request path)
or ``receiver`` (the webhook benchmark's receiver: counts deliveries and their latency).
CONFIG is a JSON object; every server is uvicorn, one worker, access log off, on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import pin

OPPDRAG = "/v1/ebevis/utenlandskevirksomheter/{orgnr}/oppdrag/antall"


def sandbox_app(config: dict[str, Any]) -> Starlette:
    from broker.sandbox import app as sandbox_app
    from broker.sandbox import world

    sandbox = world.build(
        world.SandboxConfig(
            base_url=config["url"],
            broker_key_file=Path(config["key_file"]),
            events_safety_lag_seconds=0,
        )
    )
    return sandbox_app.create_app(sandbox)


def broker_app(config: dict[str, Any]) -> Starlette:
    from broker.app import create_app
    from tests.support import make_settings

    return create_app(make_settings(**config["settings"]))


def passthrough_app(config: dict[str, Any]) -> Starlette:
    from broker.maskinporten.client import MaskinportenClient
    from broker.maskinporten.keys import load_client_key
    from broker.maskinporten.verifier import TokenVerifier

    sandbox = config["sandbox_url"]
    issuer = f"{sandbox}/maskinporten/"
    token: dict[str, str] = {}
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    http = httpx.AsyncClient(base_url=f"{sandbox}/skatteetaten", limits=limits)

    async def refresh(tokens: MaskinportenClient) -> None:
        consent = await tokens.consent_token(
            consent_id=uuid.UUID(config["consent_id"]),
            subject_org=config["subject"],
            requestor_org=config["requestor"],
        )
        token["value"] = consent.token

    async def keep_fresh(tokens: MaskinportenClient) -> None:
        while True:
            await asyncio.sleep(20)
            await refresh(tokens)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from datetime import UTC, datetime

        def now() -> datetime:
            return datetime.now(UTC)

        mp_http = httpx.AsyncClient()
        verifier = TokenVerifier(mp_http, issuer=issuer, jwks_uri=issuer + "jwk", clock=now)
        tokens = MaskinportenClient(
            mp_http,
            issuer=issuer,
            client_id=config["client_id"],
            key=load_client_key(Path(config["key_file"])),
            clock=now,
            verifier=verifier,
            vendor_mode=config["vendor_mode"],
            client_org=config["client_org"],
        )
        await refresh(tokens)
        task = asyncio.create_task(keep_fresh(tokens))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await http.aclose()
            await mp_http.aclose()

    async def forward(request: Request) -> Response:
        upstream = await http.get(
            OPPDRAG.format(orgnr=request.path_params["orgnr"]),
            headers={
                "Authorization": f"Bearer {token['value']}",
                "Accept": "application/json",
                "Korrelasjonsid": str(uuid.uuid4()),
            },
        )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )

    return Starlette(routes=[Route("/oppdrag/{orgnr}", forward)], lifespan=lifespan)


def receiver_app(config: dict[str, Any]) -> Starlette:
    """A webhook receiver that answers 204 at once and remembers, per delivery, its
    ``webhook-id`` and the delay since the event's ``timestamp`` (its enqueueing)."""
    import time
    from datetime import datetime

    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse

    ids: list[str] = []
    latencies: list[float] = []

    async def hook(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the benchmark stopped a worker mid-delivery
            return Response(status_code=499)
        arrived = time.time()
        ids.append(request.headers.get("webhook-id", ""))
        stamp = json.loads(body).get("timestamp")
        if isinstance(stamp, str):
            latencies.append(arrived - datetime.fromisoformat(stamp).timestamp())
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            ids.clear()
            latencies.clear()
        detail = request.query_params.get("detail") == "1"
        return JSONResponse(
            {
                "count": len(ids),
                "distinct": len(set(ids)),
                "latencies": latencies if detail else [],
            }
        )

    return Starlette(
        routes=[
            Route("/hook", hook, methods=["POST"]),
            Route("/stats", stats, methods=["GET", "DELETE"]),
            Route("/", lambda request: Response(status_code=204), methods=["GET"]),
        ]
    )


BUILDERS = {
    "sandbox": sandbox_app,
    "broker": broker_app,
    "passthrough": passthrough_app,
    "receiver": receiver_app,
}


def main(argv: list[str]) -> None:
    kind, raw = argv
    config: dict[str, Any] = json.loads(raw)
    pin(config.get("cpu"))
    app = BUILDERS[kind](config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=int(config["port"]),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    server.run()


if __name__ == "__main__":
    main(sys.argv[1:])
