"""Account timezones as stored (IANA names from Meta or the import), read leniently, and
moments made UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC when it is empty or unknown to this machine's tz database
    (an account's days are then cut at UTC midnight rather than not judged at all)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@overload
def as_utc(moment: datetime | str) -> datetime: ...
@overload
def as_utc(moment: datetime | str | None) -> datetime | None: ...
def as_utc(moment: datetime | str | None) -> datetime | None:
    """``moment`` as an aware UTC datetime; ``None`` stays ``None``. Naive moments are UTC:
    SQLite hands back naive datetimes for timezone-aware columns (and text from aggregate
    functions such as ``max``), pandas hands back Timestamps."""
    if moment is None:
        return None
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment)
    elif hasattr(moment, "to_pydatetime"):  # a pandas Timestamp
        parsed = moment.to_pydatetime()
    else:
        parsed = moment
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
