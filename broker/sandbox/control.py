"""The sandbox control API: drive the fakes without a browser. Only the sandbox serves it.

All bodies are JSON. Errors are ``{"error": "...", "detail": "..."}`` with 400, 404 or 409.

    GET  /control/                              this list
    GET  /control/seed                          parties, clients, delegations (text lines)
    GET  /control/consents                      every Altinn 3 consent request
    POST /control/consents/{id}/approve         {"person": fnr?} act as the end user
    POST /control/consents/{id}/reject          {"person": fnr?}
    POST /control/consents/{id}/revoke          {"person": fnr?} as in the Altinn portal
    POST /control/consents/{id}/delete
    POST /control/consents/{id}/expire          validTo moves just behind the clock
    GET  /control/altinn2/requests              every Altinn 2 consent request
    POST /control/altinn2/{code}/approve        {"person": fnr?} act as the end user
    POST /control/altinn2/{code}/reject         {"person": fnr?}
    POST /control/altinn2/{code}/revoke         the end user withdraws it in the portal
    POST /control/altinn2/{code}/expire         ValidTo moves just behind the clock
    POST /control/altinn2/{code}/migrate        copy it to Altinn 3 as Digdir's migration did
    POST /control/altinn2/rotate-keys           the secondary key signs from now on
    POST /control/altinn2/fail-next             {"status", "count"?} the next API calls fail
    GET  /control/clock                         {"now": iso}
    POST /control/clock/advance                 {"seconds": n}
    POST /control/skatteetaten/fault            {"fault": name|null, "times": n?}
    POST /control/skatteetaten/quirks           {"levert_style", "extra_unknown_field", ...}
    POST /control/skatteetaten/latency          {"seconds": x}
    POST /control/maskinporten/fail-next        {"status", "error", "description", "count"?}
    GET  /control/counters                      token requests and tokens issued, Altinn calls,
                                                Skatteetaten calls, in-flight and peak per org
    GET  /control/skatteetaten/calls            every Skatteetaten call as the fake saw it
    POST /control/reset                         forget requests, tokens, calls; clock back
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.sandbox.altinn2_page import answer_redirect
from broker.sandbox.altinn2_state import A2Request, Altinn2ActionError
from broker.sandbox.altinn3_page import with_status
from broker.sandbox.altinn3_state import ConsentActionError
from broker.sandbox.consents import ConsentRecord
from broker.sandbox.maskinporten_registry import Fault as MaskinportenFault
from broker.sandbox.skatteetaten_state import Fault, LevertStyle, UnknownUrlStyle
from broker.sandbox.world import Sandbox

__all__ = ["control_routes"]

Handler = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ControlError as exc:
            return JSONResponse({"error": exc.error, "detail": exc.detail}, exc.status)
        except ConsentActionError as exc:
            problem = exc.problem
            status = 404 if problem.status == 404 else 409
            return JSONResponse({"error": problem.code, "detail": problem.title}, status)
        except Altinn2ActionError as exc:
            status = 404 if exc.status == 404 else 409
            error = "not_found" if status == 404 else "refused"
            return JSONResponse({"error": error, "detail": exc.message}, status)

    return run


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError(400, "bad_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", "the body must be a JSON object")
    return body


def _record_json(record: ConsentRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "from": record.from_party,
        "to": record.to_party,
        "handledBy": record.handled_by,
        "status": record.status.value,
        "validTo": record.valid_to.isoformat(),
        "consented": record.consented.isoformat() if record.consented else None,
        "resources": record.resources,
        "redirectUrl": record.redirect_url,
    }


def _a2_json(request: A2Request) -> dict[str, Any]:
    return {
        "code": str(request.code),
        "status": request.status.value,
        "coveredBy": request.covered_by,
        "offeredBy": request.offered_by,
        "handledBy": request.handled_by,
        "validTo": request.valid_to.isoformat(),
        "services": request.services(),
        "redirectUrl": request.redirect_url,
        "discarded": request.discarded,
        "revoked": request.revoked,
        "used": request.used,
    }


def control_routes(sandbox: Sandbox) -> list[Route]:
    return _Control(sandbox).routes()


class _Control:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        post = ["POST"]
        table: list[tuple[str, Handler, list[str]]] = [
            ("/", self.index, ["GET"]),
            ("/seed", self.seed, ["GET"]),
            ("/consents", self.consents, ["GET"]),
            ("/consents/{id}/{action}", self.consent_action, post),
            ("/altinn2/requests", self.altinn2_requests, ["GET"]),
            ("/altinn2/rotate-keys", self.altinn2_rotate, post),
            ("/altinn2/fail-next", self.altinn2_fail_next, post),
            ("/altinn2/{code}/{action}", self.altinn2_action, post),
            ("/clock", self.clock, ["GET"]),
            ("/clock/advance", self.advance, post),
            ("/skatteetaten/fault", self.fault, post),
            ("/skatteetaten/quirks", self.quirks, post),
            ("/skatteetaten/latency", self.latency, post),
            ("/maskinporten/fail-next", self.fail_next, post),
            ("/counters", self.counters, ["GET"]),
            ("/skatteetaten/calls", self.calls, ["GET"]),
            ("/reset", self.reset, post),
        ]
        return [Route(path, _guarded(handler), methods=m) for path, handler, m in table]

    async def index(self, request: Request) -> Response:
        return Response(__doc__ or "", media_type="text/plain")

    async def seed(self, request: Request) -> Response:
        return JSONResponse({"lines": self.sandbox.describe()})

    async def consents(self, request: Request) -> Response:
        return JSONResponse([_record_json(r) for r in self.sandbox.altinn.requests()])

    async def consent_action(self, request: Request) -> Response:
        consent_id, action = request.path_params["id"], request.path_params["action"]
        body = await _body(request)
        altinn = self.sandbox.altinn
        record = _known(altinn.get, consent_id)
        person = body.get("person")
        if person is not None and not isinstance(person, str):
            raise ControlError(400, "bad_person", "person must be a fødselsnummer string")
        if action in ("approve", "reject"):
            chosen = person or self._someone_who_may_answer(record)
            done = (
                altinn.approve(record.id, chosen)
                if action == "approve"
                else altinn.reject(record.id, chosen)
            )
            # Where the browser would have been sent, with Altinn's Status parameters.
            return JSONResponse(
                {**_record_json(done), "redirect": with_status(done.redirect_url, done)}
            )
        actions = {
            "revoke": lambda: altinn.revoke(record.id, person),
            "delete": lambda: altinn.delete(record.id),
            "expire": lambda: altinn.expire(record.id),
        }
        if action not in actions:
            raise ControlError(404, "unknown_action", f"no action {action!r}")
        return JSONResponse(_record_json(actions[action]()))

    def _someone_who_may_answer(self, record: ConsentRecord) -> str:
        for person in self.sandbox.parties.persons:
            if self.sandbox.altinn.may_answer(record, person.fnr):
                return person.fnr
        raise ControlError(409, "nobody_may_answer", "no seeded person may answer this request")

    async def altinn2_requests(self, request: Request) -> Response:
        return JSONResponse([_a2_json(r) for r in self.sandbox.altinn2.requests()])

    async def altinn2_rotate(self, request: Request) -> Response:
        self.sandbox.altinn2_keys.rotate()
        return JSONResponse({"primary_kid": self.sandbox.altinn2_keys.keys.primary_kid})

    async def altinn2_fail_next(self, request: Request) -> Response:
        body = await _body(request)
        status, count = body.get("status"), body.get("count", 1)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ControlError(400, "bad_fault", "status must be 400-599")
        if not isinstance(count, int) or count < 1:
            raise ControlError(400, "bad_count", "count must be a positive integer")
        self.sandbox.altinn2.fail_next(status, count=count)
        return JSONResponse({"status": status, "count": count})

    async def altinn2_action(self, request: Request) -> Response:
        code, action = request.path_params["code"], request.path_params["action"]
        person = (await _body(request)).get("person")
        if person is not None and not isinstance(person, str):
            raise ControlError(400, "bad_person", "person must be a fødselsnummer string")
        state = self.sandbox.altinn2
        record = state.get(code)
        if record is None:
            raise ControlError(404, "not_found", "no such Altinn 2 consent request")
        if action in ("approve", "reject"):
            chosen = person or self._a2_answerer(record)
            done = state.answer(record.code, chosen, accept=action == "approve")
            return JSONResponse({**_a2_json(done), "redirect": answer_redirect(done)})
        if action == "migrate":
            return JSONResponse(_record_json(state.migrate(record.code)))
        actions = {"revoke": state.revoke, "expire": state.expire}
        if action not in actions:
            raise ControlError(404, "unknown_action", f"no action {action!r}")
        return JSONResponse(_a2_json(actions[action](record.code)))

    def _a2_answerer(self, record: A2Request) -> str:
        for person in self.sandbox.parties.persons:
            if self.sandbox.altinn2.may_answer(record, person.fnr):
                return person.fnr
        raise ControlError(409, "nobody_may_answer", "no seeded person may answer this request")

    async def clock(self, request: Request) -> Response:
        return JSONResponse({"now": self.sandbox.clock.now().isoformat()})

    async def advance(self, request: Request) -> Response:
        seconds = _number((await _body(request)).get("seconds"), low=-_TEN_YEARS, high=_TEN_YEARS)
        self.sandbox.clock.advance(seconds)
        return await self.clock(request)

    async def fault(self, request: Request) -> Response:
        body = await _body(request)
        name, times = body.get("fault"), body.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ControlError(400, "bad_times", "times must be a positive integer")
        fault = None if name is None else _enum(Fault, name, "fault")
        self.sandbox.skatteetaten.set_fault(fault, times=times)
        return JSONResponse({"fault": None if fault is None else fault.value, "times": times})

    async def quirks(self, request: Request) -> Response:
        body = await _body(request)
        quirks = self.sandbox.skatteetaten.switches.quirks
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key == "levert_style":
                changes[key] = _enum(LevertStyle, value, key)
            elif key == "unknown_url_style":
                changes[key] = _enum(UnknownUrlStyle, value, key)
            elif key in ("extra_unknown_field", "reordered_keys") and isinstance(value, bool):
                changes[key] = value
            else:
                raise ControlError(400, "bad_quirk", f"unknown quirk or value: {key}")
        self.sandbox.skatteetaten.set_quirks(replace(quirks, **changes))
        return JSONResponse(_jsonable(asdict(self.sandbox.skatteetaten.switches.quirks)))

    async def latency(self, request: Request) -> Response:
        seconds = _number((await _body(request)).get("seconds"), low=0, high=600)
        self.sandbox.skatteetaten.set_latency(seconds)
        return JSONResponse({"latency_seconds": float(seconds)})

    async def fail_next(self, request: Request) -> Response:
        body = await _body(request)
        status, error, retry_after = body.get("status"), body.get("error"), body.get("retry_after")
        if not isinstance(status, int) or not 400 <= status <= 599 or not isinstance(error, str):
            raise ControlError(400, "bad_fault", "status (400-599) and error are required")
        if retry_after is not None and not (isinstance(retry_after, int) and retry_after >= 0):
            raise ControlError(400, "bad_fault", "retry_after must be a whole number of seconds")
        fault = MaskinportenFault(
            status=status,
            error=error,
            description=str(body.get("description", "")),
            retry_after=retry_after,
        )
        count = body.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ControlError(400, "bad_count", "count must be a positive integer")
        self.sandbox.maskinporten.fail_next(fault, count=count)
        return JSONResponse({"status": fault.status, "error": fault.error, "count": count})

    async def counters(self, request: Request) -> Response:
        mp, ske = self.sandbox.maskinporten, self.sandbox.skatteetaten
        return JSONResponse(
            {
                "maskinporten": {
                    "token_requests": [
                        {"client_id": c, "kid": k, "count": n}
                        for (c, k), n in sorted(mp.token_requests().items())
                    ],
                    "failures": mp.failures(),
                    "tokens_issued": [
                        {"client_id": c, "scope": scope, "consumer_org": org, "count": n}
                        for (c, scope, org), n in sorted(
                            mp.tokens_issued().items(), key=lambda item: str(item[0])
                        )
                    ],
                },
                "altinn": {"calls": dict(self.sandbox.altinn_calls)},
                "altinn2": {"tokens_issued": self.sandbox.altinn2.tokens_issued},
                "skatteetaten": {
                    "calls_by_consumer": ske.calls_by_consumer(),
                    "calls_by_outcome": ske.calls_by_outcome(),
                    "in_flight": ske.in_flight(),
                    "peak_in_flight": ske.peak_in_flight(),
                    "over_limit_calls": ske.over_limit_calls(),
                },
            }
        )

    async def calls(self, request: Request) -> Response:
        return JSONResponse(
            [
                {**asdict(record), "at": record.at.isoformat()}
                for record in self.sandbox.skatteetaten.records()
            ]
        )

    async def reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return JSONResponse({"reset": True})


_TEN_YEARS = 10 * 366 * 24 * 3600


def _number(value: Any, *, low: float, high: float) -> float:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ControlError(400, "bad_seconds", f"seconds must be a number from {low} to {high}")
    return float(value)


def _known(get: Callable[[str], ConsentRecord | None], consent_id: str) -> ConsentRecord:
    try:
        record = get(consent_id)
    except ValueError:
        raise ControlError(404, "not_found", "no such consent request") from None
    if record is None:
        raise ControlError(404, "not_found", "no such consent request")
    return record


def _enum(kind: Any, value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ControlError(400, f"bad_{name}", f"{name} must be one of: {allowed}") from None


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(value, default=str))  # type: ignore[no-any-return]
