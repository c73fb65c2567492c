"""``/healthz`` (the process is alive), ``/readyz`` (it can serve), ``/metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.errors import ServiceUnavailable
from broker.health.service import ReadinessService
from broker.http.problems import problem_response
from broker.observability.metrics import CONTENT_TYPE_LATEST, HttpMetrics

__all__ = ["routes"]

_NO_STORE = {"Cache-Control": "no-store"}


def routes(*, readiness: ReadinessService, metrics: HttpMetrics) -> list[Route]:
    async def healthz(request: Request) -> Response:
        # Depends on nothing outside the process: a database blip must not restart the fleet.
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(request: Request) -> Response:
        result = await readiness.check()
        if result.ready:
            return JSONResponse({"status": "ready", "checks": result.checks}, headers=_NO_STORE)
        error = ServiceUnavailable(
            "The service is not ready to take requests",
            code="not_ready",
            extensions={"checks": result.checks},
        )
        return problem_response(request, error)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
