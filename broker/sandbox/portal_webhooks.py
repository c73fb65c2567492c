"""The demo portal's webhook receiver: what a procurement system's endpoint does, made visible.

    POST /webhooks   a delivery from the broker: verified with the ``standardwebhooks``
                     reference library against the portal's signing secret (and a previous one
                     during a rotation), recorded with the result, answered 204 when it verifies
                     (also for a repeat of a ``webhook-id`` already seen, recorded as a repeat
                     and not acted on twice) and 400 when it does not
    GET  /webhooks   the deliveries received, newest first, with their verification result

It is written as an integrator would write it from docs/webhooks.md alone: it imports nothing
from the broker. The portal learns its secret once, when its endpoint is registered (the demo
does that at start-up); without one every delivery is refused, and shown as refused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["ReceivedWebhook", "WebhookInbox"]

BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ReceivedWebhook:
    received_at: str
    webhook_id: str
    event_type: str
    request_id: str | None
    status: str | None
    revoked_by: str | None
    verified: bool
    result: str  # "verified", "verified; a repeat: not processed again", "refused: …"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class WebhookInbox:
    """The deliveries the portal received (in memory, bounded) and the ids it processed."""

    def __init__(self, secrets: Sequence[str], limit: int = 200) -> None:
        self._secrets = [s for s in secrets if s]
        self._limit = limit
        self._received: list[ReceivedWebhook] = []
        self._processed: OrderedDict[str, None] = OrderedDict()

    def receive(self, body: bytes, headers: Mapping[str, str]) -> ReceivedWebhook:
        webhook_id = headers.get("webhook-id", "")[:100]
        payload, error = self._verify(body, headers)
        data = payload.get("data") if isinstance(payload, dict) else None
        data = data if isinstance(data, dict) else {}
        revocation = data.get("revocation")
        repeat = payload is not None and webhook_id in self._processed
        if payload is not None and not repeat:
            self._processed[webhook_id] = None
            while len(self._processed) > 10 * self._limit:
                self._processed.popitem(last=False)
        result = "verified"
        if error is not None:
            result = f"refused: {error}"
        elif repeat:
            result = "verified; a repeat: not processed again"
        entry = ReceivedWebhook(
            received_at=datetime.now(UTC).isoformat(),
            webhook_id=webhook_id,
            event_type=_text(payload.get("type")) or "" if isinstance(payload, dict) else "",
            request_id=_text(data.get("id")),
            status=_text(data.get("status")),
            revoked_by=_text(revocation.get("by")) if isinstance(revocation, dict) else None,
            verified=error is None,
            result=result,
        )
        self._received.append(entry)
        del self._received[: -self._limit]
        return entry

    def _verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        if not self._secrets:
            return None, "the portal has no signing secret"
        if len(body) > BODY_LIMIT:
            return None, "the body is too large"
        error = "no signature verified"
        for secret in self._secrets:  # the current secret, then the previous one
            try:
                return Webhook(secret).verify(body, dict(headers)), None
            except WebhookVerificationError as exc:
                error = str(exc)
            except (ValueError, UnicodeDecodeError):
                return None, "the body is not JSON"
        return None, error

    def newest_first(self) -> list[ReceivedWebhook]:
        return list(reversed(self._received))
