"""Moments read back from the database, made timezone-aware.

The columns are timezone-aware, but SQLite hands back naive datetimes for them (and text from
aggregate functions such as ``max``), and pandas hands back Timestamps: all of them are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def stored_utc(moment: datetime | str) -> datetime: ...
@overload
def stored_utc(moment: datetime | str | None) -> datetime | None: ...
def stored_utc(moment: datetime | str | None) -> datetime | None:
    """``moment`` as an aware datetime (naive ones are UTC); ``None`` stays ``None``."""
    if moment is None:
        return None
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment)
    elif hasattr(moment, "to_pydatetime"):  # a pandas Timestamp
        parsed = moment.to_pydatetime()
    else:
        parsed = moment
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
