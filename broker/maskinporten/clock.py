"""The injected clock every part of the adapter reads time from (never ``datetime.now()``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

__all__ = ["Clock"]

# A zero-argument callable returning an aware UTC datetime, e.g. ``lambda: datetime.now(UTC)``
# in production and a sandbox ``Clock().now`` in tests.
Clock = Callable[[], datetime]
