"""Adapter for Altinn 3's consent requests API: the ``AltinnConsents`` port and the events feed.

Imports nothing from the rest of the broker but ``broker.consent.ports``, whose exceptions it
raises (``errors.py``), and whose ``AltinnConsents`` ``AltinnClient`` implements.
"""

from broker.altinn.client import (
    ORG_SCOPE,
    READ_SCOPE,
    WRITE_SCOPE,
    AccessToken,
    AccessTokens,
    AltinnClient,
    AltinnMode,
    RetryPolicy,
)
from broker.altinn.errors import AltinnBadResponse, AltinnError, AltinnRefused, AltinnUnavailable
from broker.altinn.schemas import (
    DEFAULT_MESSAGE_KEYS,
    LEGACY_MESSAGE_KEYS,
    AltinnEvent,
    AltinnEventType,
    EventsPage,
    RequestMessages,
)

__all__ = [
    "DEFAULT_MESSAGE_KEYS",
    "LEGACY_MESSAGE_KEYS",
    "ORG_SCOPE",
    "READ_SCOPE",
    "WRITE_SCOPE",
    "AccessToken",
    "AccessTokens",
    "AltinnBadResponse",
    "AltinnClient",
    "AltinnError",
    "AltinnEvent",
    "AltinnEventType",
    "AltinnMode",
    "AltinnRefused",
    "AltinnUnavailable",
    "EventsPage",
    "RequestMessages",
    "RetryPolicy",
]
