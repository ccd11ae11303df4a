"""The stored columns of money at stake and duration, for anomalies about to be stored.

Detection calls :func:`impact_columns` with what it found; the maths is
:mod:`adsentinel.detect.impact`, this module only reads the earlier days of each run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adsentinel.db.models import Anomaly, AnomalyStatus
from adsentinel.detect.impact import MAX_RUN_DAYS, duration_days, money_at_stake, run_start
from adsentinel.detect.statistical import pooled_days

AnomalyKey = tuple[int, date, str]  # (entity id, day, metric)


def impact_columns(session: Session, account_id: int, found: Sequence[Any],
                   judged: set[tuple[int, date]]) -> dict[AnomalyKey, dict[str, Any]]:
    """``impact_amount``, ``started`` and ``duration_days`` of each detected anomaly.

    ``found`` are :class:`~adsentinel.detect.anomaly_detector.DetectedAnomaly`. A run is the
    consecutive days with a stored, not retracted anomaly of the same entity, metric and
    direction, ending on the anomaly's day: those found now, and those stored for days not
    ``judged`` now (a judged day's stored anomaly that was not found again is being retracted).
    """
    if not found:
        return {}
    days_by_run: dict[tuple[int, str, str], set[date]] = {}
    for anomaly in found:
        days_by_run.setdefault((int(anomaly.entity_id), anomaly.metric, anomaly.direction),
                               set()).add(anomaly.date)
    first = min(a.date for a in found) - timedelta(days=MAX_RUN_DAYS)
    last = max(a.date for a in found)
    entity_ids = sorted({key[0] for key in days_by_run})
    for start in range(0, len(entity_ids), 10_000):  # SQLite's bound-parameter limit
        stored = session.execute(
            select(Anomaly.entity_id, Anomaly.metric, Anomaly.direction, Anomaly.day).where(
                Anomaly.account_id == account_id,
                Anomaly.entity_id.in_(entity_ids[start:start + 10_000]),
                Anomaly.day.between(first, last),
                Anomaly.status != AnomalyStatus.retracted.value)
        ).all()
        for entity_id, metric, direction, day in stored:
            run = days_by_run.get((entity_id, metric, direction))
            if run is not None and (entity_id, day) not in judged:
                run.add(day)
    columns = {}
    for anomaly in found:
        run = days_by_run[(int(anomaly.entity_id), anomaly.metric, anomaly.direction)]
        started = run_start(anomaly.date, run, pooled_days(anomaly.detectors[0]))
        columns[(int(anomaly.entity_id), anomaly.date, anomaly.metric)] = {
            "impact_amount": money_at_stake(anomaly.metric, anomaly.direction, anomaly.actual,
                                            anomaly.expected, anomaly.drivers),
            "started": started,
            "duration_days": duration_days(started, anomaly.date),
        }
    return columns
