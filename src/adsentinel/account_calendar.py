"""An account's calendar days (holidays, sales, launches people entered): what detection notes
on an anomaly of such a day, alert messages name and training leaves out of the models."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from adsentinel.db.models import CalendarDay


def calendar_labels(session: Session, account_id: int) -> dict[date, str]:
    """The account's calendar days and what they are (label, else kind)."""
    return {row.day: (row.label or row.kind) for row in session.execute(
        select(CalendarDay.day, CalendarDay.kind, CalendarDay.label)
        .where(CalendarDay.account_id == account_id))}
