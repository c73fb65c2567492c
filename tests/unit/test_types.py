from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from broker.store.types import UTCDateTime

DIALECT = sqlite.dialect()


def test_aware_values_are_stored_in_utc() -> None:
    oslo = timezone(timedelta(hours=1))
    stored = UTCDateTime().process_bind_param(datetime(2026, 1, 1, 12, tzinfo=oslo), DIALECT)
    assert stored == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert stored is not None
    assert stored.tzinfo is UTC


def test_naive_values_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1, 12), DIALECT)


def test_values_read_back_are_aware_utc() -> None:
    column = UTCDateTime()
    assert column.process_result_value(datetime(2026, 1, 1), DIALECT) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    oslo = timezone(timedelta(hours=1))
    assert column.process_result_value(datetime(2026, 1, 1, 1, tzinfo=oslo), DIALECT) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert column.process_result_value(None, DIALECT) is None
    assert column.process_bind_param(None, DIALECT) is None
