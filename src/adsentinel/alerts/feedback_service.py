"""Users' feedback on anomalies: writing it (CLI, API, dashboard) and what it changes.

* :func:`give_status` / :func:`mark_anomaly`: a status on an anomaly and on the anomalies
  attached to its incident;
* :func:`apply_feedback` (inside detection, before anomalies are stored) damps patterns people
  dismissed and annotates calendar days (:mod:`adsentinel.alerts.feedback`);
* :func:`excluded_training_days`: dismissed and calendar days, which training leaves out.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.config import AlertConfigError
from adsentinel.alerts.feedback import Dismissal, FeedbackDamper, annotate_calendar, anomaly_size
from adsentinel.alerts.incidents import DISMISSED_STATUSES
from adsentinel.alerts.service import calendar_labels
from adsentinel.db.engine import session_scope
from adsentinel.db.models import Anomaly, AnomalyStatus, CalendarDay, utcnow
from adsentinel.detect.anomaly_detector import DetectedAnomaly
from adsentinel.errors import NotFoundError
from adsentinel.timezones import as_utc

log = logging.getLogger(__name__)

FEEDBACK_STATUSES = tuple(s.value for s in AnomalyStatus if s != AnomalyStatus.retracted)


def apply_feedback(session: Session, account_id: int,
                   found: list[DetectedAnomaly]) -> list[DetectedAnomaly]:
    """Detection's anomalies with dismissed patterns damped and calendar days annotated.

    Called by :func:`~adsentinel.detection.account.detect_account` just before storing.
    """
    if not found:
        return found
    entity_ids = {int(a.entity_id) for a in found}
    dismissed = session.execute(
        select(Anomaly.id, Anomaly.entity_id, Anomaly.metric, Anomaly.direction, Anomaly.day,
               Anomaly.actual, Anomaly.expected)
        .where(Anomaly.account_id == account_id,
               Anomaly.status.in_(tuple(DISMISSED_STATUSES)),
               Anomaly.entity_id.in_(entity_ids))).all()
    damper = FeedbackDamper(
        Dismissal(r.id, r.entity_id, r.metric, r.direction, r.day,
                  anomaly_size(r.actual, r.expected)) for r in dismissed)
    return annotate_calendar(damper.damp(found), calendar_labels(session, account_id))


def mark_anomaly(*, session_factory: sessionmaker[Session], anomaly_id: int, status: str,
                 by: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Give feedback on an anomaly: ``open``, ``acknowledged``, ``resolved``,
    ``false_positive`` or ``expected``.

    The anomalies attached to it (its incident's children on that day) get the same status, so
    the whole incident is covered. ``false_positive`` and ``expected`` remove the days from the
    entities' training data and damp the same pattern afterwards. Returns ``{"id", "status",
    "children"}``.
    """
    if status not in FEEDBACK_STATUSES:
        raise AlertConfigError(f"unknown status {status!r}",
                               hint=f"use one of {', '.join(FEEDBACK_STATUSES)}")
    now = as_utc(now or utcnow())
    with session_scope(session_factory) as session:
        anomaly = session.get(Anomaly, anomaly_id)
        if anomaly is None:
            raise NotFoundError(f"anomaly {anomaly_id} does not exist",
                                hint="see anomaly ids with `adsentinel detect --format json`")
        if anomaly.status == AnomalyStatus.retracted.value:
            raise AlertConfigError(
                f"anomaly {anomaly_id} was retracted by detection (its restated day is normal "
                "again) and cannot be marked", hint="nothing to do: it no longer counts")
        children = give_status(session, anomaly, status, by=by, now=now)
    log.info("anomaly %s marked %s by %s (%d attached)", anomaly_id, status, by, children)
    return {"id": anomaly_id, "status": status, "children": children}


def give_status(session: Session, anomaly: Anomaly, status: str, *, by: str | None,
                now: datetime) -> int:
    """Set a user's ``status`` on ``anomaly`` and on the anomalies attached to it (its
    incident's children), in the caller's transaction; returns how many children changed.

    The one place feedback is written, whether it comes from the CLI, the API or the dashboard.
    """
    children = session.scalars(select(Anomaly).where(
        Anomaly.incident_id == anomaly.id,
        Anomaly.status != AnomalyStatus.retracted.value)).all()
    for row in (anomaly, *children):
        row.status, row.status_by, row.status_at, row.updated_at = status, by, now, now
    return len(children)


def excluded_training_days(session: Session, account_id: int) -> tuple[set[tuple[int, date]],
                                                                        set[date]]:
    """Days left out of training: ``(entity, day)`` pairs with an anomaly marked
    false_positive or expected, and the account's calendar days (every entity)."""
    pairs = {(r.entity_id, r.day) for r in session.execute(
        select(Anomaly.entity_id, Anomaly.day).where(
            Anomaly.account_id == account_id, Anomaly.status.in_(tuple(DISMISSED_STATUSES))))}
    calendar = set(session.scalars(select(CalendarDay.day).where(
        CalendarDay.account_id == account_id)))
    return pairs, calendar
