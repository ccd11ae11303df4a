"""What people told us about an account, read for detection: the anomalies they dismissed and
the account's calendar days. The rule that applies them is pure
(:func:`adsentinel.detect.feedback_rules.apply_feedback`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from adsentinel.account_calendar import calendar_labels
from adsentinel.alerts.incidents import DISMISSED_STATUSES
from adsentinel.db.models import Anomaly
from adsentinel.detect.anomaly_detector import DetectedAnomaly
from adsentinel.detect.feedback_rules import Dismissal, anomaly_size, apply_feedback


def dismissals(session: Session, account_id: int, entity_ids: Iterable[int]) -> list[Dismissal]:
    """The anomalies of ``entity_ids`` that people marked ``false_positive`` or ``expected``."""
    rows = session.execute(
        select(Anomaly.id, Anomaly.entity_id, Anomaly.metric, Anomaly.direction, Anomaly.day,
               Anomaly.actual, Anomaly.expected)
        .where(Anomaly.account_id == account_id,
               Anomaly.status.in_(tuple(DISMISSED_STATUSES)),
               Anomaly.entity_id.in_(set(entity_ids)))).all()
    return [Dismissal(r.id, r.entity_id, r.metric, r.direction, r.day,
                      anomaly_size(r.actual, r.expected)) for r in rows]


def with_feedback(session: Session, account_id: int,
                  found: list[DetectedAnomaly]) -> list[DetectedAnomaly]:
    """Detection's anomalies with the patterns people dismissed damped and calendar days
    annotated, just before they are stored (nothing is read when nothing was found)."""
    if not found:
        return found
    return apply_feedback(found, dismissals(session, account_id, {int(a.entity_id) for a in found}),
                          calendar_labels(session, account_id))
