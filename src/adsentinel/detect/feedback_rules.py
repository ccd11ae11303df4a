"""What people told us, applied to new detections (pure, no I/O): the last rule detection
applies before storing (:func:`apply_feedback`), fed by detection's own reader
(:mod:`adsentinel.detection.feedback`).

* **Damping**: when a person marks an anomaly ``false_positive`` or ``expected``, later anomalies
  of the same entity, metric and direction whose size is not clearly beyond the dismissed one
  (at most :data:`DAMPING_MARGIN` times its size) are lowered to severity ``low`` (score at most
  :data:`DAMPED_SCORE`), so they are kept and visible but alert no channel (whose floor is at
  least ``medium`` by default). Anything clearly bigger is a new incident and keeps its
  severity.
* **Calendar**: anomalies on a day of the account's calendar (holiday, promotion) are annotated
  with ``drivers["calendar"] = label``; alerting then asks ``high`` or worse of them.

Size is the ratio between actual and expected, whichever way it goes: a CPL at 2x and a CTR at
half both have size 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date

from adsentinel.detect.anomaly_detector import DetectedAnomaly, SeverityLevel

#: A new anomaly up to this many times the dismissed one's size is the same pattern.
DAMPING_MARGIN = 1.5
#: Score given to a damped anomaly at most: the bottom of the ``low`` band.
DAMPED_SCORE = 40.0
_MAX_SIZE = 1e6


def anomaly_size(actual: float, expected: float) -> float:
    """How far actual is from expected as a ratio >= 1, whichever side it is on.

    Zero on one side is as far as it gets (:data:`_MAX_SIZE`): zero leads where 20 were
    expected is as big as a dismissed zero-lead day, and no bigger.
    """
    if not (math.isfinite(actual) and math.isfinite(expected)):
        return _MAX_SIZE
    low, high = sorted((abs(actual), abs(expected)))
    if high == 0:
        return 1.0
    if low == 0:
        return _MAX_SIZE
    return min(high / low, _MAX_SIZE)


@dataclass(frozen=True)
class Dismissal:
    """An anomaly a person marked ``false_positive`` or ``expected``."""

    anomaly_id: int
    entity_id: int
    metric: str
    direction: str
    day: date
    size: float


class FeedbackDamper:
    """Lowers new anomalies that repeat a dismissed pattern of the same entity.

    Parameters
    ----------
    dismissals : iterable of Dismissal
        The entity-level feedback of an account.
    margin : float, default :data:`DAMPING_MARGIN`
        A new anomaly bigger than ``margin`` times the largest dismissed one is kept as it is.
    """

    def __init__(self, dismissals: Iterable[Dismissal], margin: float = DAMPING_MARGIN) -> None:
        if margin < 1.0:
            raise ValueError(f"margin must be >= 1, got {margin!r}")
        self.margin = margin
        self.largest_: dict[tuple[int, str, str], Dismissal] = {}
        for dismissal in dismissals:
            key = (dismissal.entity_id, dismissal.metric, dismissal.direction)
            held = self.largest_.get(key)
            if held is None or dismissal.size > held.size:
                self.largest_[key] = dismissal

    def matching(self, anomaly: DetectedAnomaly) -> Dismissal | None:
        """The dismissal that damps ``anomaly``, or ``None`` (no feedback, or clearly bigger)."""
        dismissal = self.largest_.get((int(anomaly.entity_id), anomaly.metric, anomaly.direction))
        if dismissal is None:
            return None
        size = anomaly_size(anomaly.actual, anomaly.expected)
        return dismissal if size <= self.margin * dismissal.size else None

    def damp(self, found: Iterable[DetectedAnomaly]) -> list[DetectedAnomaly]:
        """``found`` with the anomalies that repeat a dismissed pattern lowered to ``low``."""
        result = []
        for anomaly in found:
            dismissal = self.matching(anomaly)
            if dismissal is not None:
                drivers = dict(anomaly.drivers)
                drivers["feedback"] = {
                    "damped_by_anomaly": dismissal.anomaly_id,
                    "dismissed_day": dismissal.day.isoformat(),
                    "dismissed_size": round(dismissal.size, 3),
                    "original_severity": anomaly.severity.value,
                    "original_score": round(float(anomaly.score), 1),
                }
                anomaly = replace(anomaly, severity=SeverityLevel.LOW,
                                  score=min(float(anomaly.score), DAMPED_SCORE), drivers=drivers)
            result.append(anomaly)
        return result


def annotate_calendar(found: Iterable[DetectedAnomaly],
                      calendar: Mapping[date, str]) -> list[DetectedAnomaly]:
    """``found`` with ``drivers["calendar"]`` set on the anomalies of calendar days."""
    result = []
    for anomaly in found:
        label = calendar.get(anomaly.date)
        if label is not None:
            anomaly = replace(anomaly, drivers={**anomaly.drivers, "calendar": label})
        result.append(anomaly)
    return result


def apply_feedback(found: Iterable[DetectedAnomaly], dismissals: Iterable[Dismissal],
                   calendar: Mapping[date, str]) -> list[DetectedAnomaly]:
    """``found`` with the patterns people dismissed damped (:class:`FeedbackDamper`), then the
    anomalies of calendar days annotated (:func:`annotate_calendar`).

    ``dismissals`` are the account's dismissed anomalies of the entities in ``found``;
    ``calendar`` maps the account's calendar days to their label.
    """
    return annotate_calendar(FeedbackDamper(dismissals).damp(found), calendar)
