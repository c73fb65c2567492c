"""Altinn 2 grants as they stood before Digdir's migration, and the operator's export of them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

from broker.sandbox import world
from broker.sandbox.altinn2 import request_dto
from broker.sandbox.altinn2_state import A2Request, A2Resource

AUTHORITY = "310200018"
SUPPLIER = "310100013"
BROKER = "310300012"
APPROVER = "01819040180"
OSLO = ZoneInfo("Europe/Oslo")


def altinn2_grant(
    sandbox: world.Sandbox,
    *,
    requestor: str = AUTHORITY,
    subject: str = SUPPLIER,
    days: int = 60,
    migrate: bool = True,
) -> A2Request:
    """An accepted Altinn 2 consent, made directly in the sandbox's Altinn 2 (as one made
    before the broker existed), and, with ``migrate``, copied to Altinn 3 as Digdir did."""
    service = sandbox.altinn2_config.services["5616_2"]
    now = sandbox.clock.now()
    request = A2Request(
        code=uuid.uuid4(),
        covered_by=requestor,
        offered_by=subject,
        offered_by_name="NORDBYGG POLSKA NUF",
        handled_by=BROKER,
        required_delegator=None,
        valid_to=(now + timedelta(days=days)).replace(microsecond=0),
        redirect_url="https://old-portal.example/return",
        resources=[A2Resource(service, {"requestor": requestor, "requestorName": "X"})],
        request_message=None,
        portal_view_mode="Hide",
        created=now,
        last_changed=now,
    )
    sandbox.altinn2.add(request)
    sandbox.altinn2.answer(request.code, APPROVER, accept=True)
    if migrate:
        sandbox.altinn2.migrate(request.code)
    return request


def export(*grants: A2Request, base: str = "https://www.altinn.no") -> str:
    """JSON Lines, one Altinn 2 API request object per grant (``GET /api/consentRequests``)."""
    return (
        "\n".join(json.dumps(request_dto(g, base=base, zone=OSLO, hal=True)) for g in grants) + "\n"
    )
