"""Users' feedback on anomalies, written from the CLI, the API and the dashboard:
:func:`give_status` / :func:`mark_anomaly` set a status on an anomaly and on the anomalies
attached to its incident.

What the feedback changes is read where it is used: detection damps the patterns people
dismissed and annotates calendar days (:mod:`adsentinel.detection.feedback`, the rule
:mod:`adsentinel.detect.feedback_rules`); training leaves dismissed and calendar days out
(:mod:`adsentinel.training.service`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.config import AlertConfigError
from adsentinel.db.engine import session_scope
from adsentinel.db.models import Anomaly, AnomalyStatus, utcnow
from adsentinel.errors import NotFoundError
from adsentinel.timezones import as_utc

log = logging.getLogger(__name__)

FEEDBACK_STATUSES = tuple(s.value for s in AnomalyStatus if s != AnomalyStatus.retracted)


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
