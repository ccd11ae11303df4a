"""Feedback: dismissed patterns are damped, bigger ones are not, dismissed and calendar days
leave training, and on the real detection code repeat false alarms drop while incidents are
still caught."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from alert_builders import YESTERDAY, add_anomaly, build_shop
from sqlalchemy import select

from adsentinel.alerts.config import add_calendar_days
from adsentinel.alerts.feedback_service import mark_anomaly
from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import Anomaly
from adsentinel.detect.anomaly_detector import DetectedAnomaly, SeverityLevel
from adsentinel.detect.feedback_rules import (
    DAMPED_SCORE,
    Dismissal,
    FeedbackDamper,
    annotate_calendar,
    anomaly_size,
)
from adsentinel.detection.feedback import with_feedback
from adsentinel.errors import AdsentinelError
from adsentinel.model_store.store import ModelStore
from adsentinel.training.service import train_account_models

DAY = date(2026, 11, 10)


def _detected(actual: float, expected: float = 10.0, *, entity: str = "3", metric: str = "cpm",
              direction: str = "up", day: date = DAY) -> DetectedAnomaly:
    return DetectedAnomaly("ad", entity, day, metric, ["robust_z"], actual, expected, None, None,
                           direction, 82.0, SeverityLevel.HIGH, "m", {"clicks": 5})


def _dismissal(size: float, **changes) -> Dismissal:
    values = dict(anomaly_id=99, entity_id=3, metric="cpm", direction="up",
                  day=DAY - timedelta(days=7), size=size)
    values.update(changes)
    return Dismissal(**values)


def test_size_is_the_ratio_either_way():
    assert anomaly_size(20.0, 10.0) == anomaly_size(5.0, 10.0) == 2.0
    assert anomaly_size(0.0, 10.0) == anomaly_size(10.0, 0.0) == 1e6
    assert anomaly_size(0.0, 0.0) == 1.0


def test_repeat_of_a_dismissed_pattern_is_lowered_and_explained():
    damper = FeedbackDamper([_dismissal(1.7)])
    [damped] = damper.damp([_detected(24.0)])  # 2.4x <= 1.5 x 1.7
    assert damped.severity is SeverityLevel.LOW and damped.score == DAMPED_SCORE
    assert damped.drivers["feedback"]["damped_by_anomaly"] == 99
    assert damped.drivers["feedback"]["original_severity"] == "high"
    assert damped.drivers["clicks"] == 5


@pytest.mark.parametrize("anomaly", [
    _detected(40.0),  # 4x: clearly bigger than the dismissed 1.7x
    _detected(24.0, entity="4"),  # another entity
    _detected(24.0, metric="cpc"),  # another metric
    _detected(4.0, direction="down"),  # the other direction
])
def test_new_incidents_keep_their_severity(anomaly):
    [kept] = FeedbackDamper([_dismissal(1.7)]).damp([anomaly])
    assert kept is anomaly


def test_margin_must_be_at_least_one():
    with pytest.raises(ValueError, match="margin must be >= 1"):
        FeedbackDamper([], margin=0.5)


def test_calendar_days_are_annotated():
    on, off = _detected(24.0), _detected(24.0, day=DAY + timedelta(days=1))
    marked = annotate_calendar([on, off], {DAY: "Black Friday"})
    assert marked[0].drivers["calendar"] == "Black Friday"
    assert "calendar" not in marked[1].drivers


def test_detection_reads_dismissals_and_the_calendar(sqlite_factory):
    shop = build_shop(sqlite_factory)
    add_anomaly(shop, shop.ads[0], DAY - timedelta(days=7), metric="cpm", actual=17.0,
                expected=10.0, status="false_positive")
    add_calendar_days(session_factory=sqlite_factory, account_id=shop.account_id,
                      days=[(DAY, "holiday", "Proclamation Day")])
    found = [_detected(24.0, entity=str(shop.ads[0])), _detected(24.0, entity=str(shop.ads[1]))]
    with session_scope(sqlite_factory) as session:
        damped, kept = with_feedback(session, shop.account_id, found)
    assert damped.severity is SeverityLevel.LOW and kept.severity is SeverityLevel.HIGH
    assert damped.drivers["calendar"] == kept.drivers["calendar"] == "Proclamation Day"


def test_marking_covers_the_incident_children(sqlite_factory):
    shop = build_shop(sqlite_factory)
    head = add_anomaly(shop, shop.campaign, YESTERDAY)
    child = add_anomaly(shop, shop.ads[0], YESTERDAY, incident_id=head)
    result = mark_anomaly(session_factory=sqlite_factory, anomaly_id=head,
                          status="false_positive", by="ana")
    assert result == {"id": head, "status": "false_positive", "children": 1}
    with sqlite_factory() as session:
        rows = {a.id: (a.status, a.status_by) for a in session.scalars(select(Anomaly))}
    assert rows[head] == rows[child] == ("false_positive", "ana")
    gone = add_anomaly(shop, shop.ads[1], YESTERDAY, status="retracted")
    with pytest.raises(AdsentinelError, match=f"anomaly {gone} was retracted by detection"):
        mark_anomaly(session_factory=sqlite_factory, anomaly_id=gone, status="expected", by="x")


def test_dismissed_and_calendar_days_leave_the_training_data(db_settings):
    """On both databases (PostgreSQL reads the history through COPY, as text)."""
    settings = db_settings.model_copy(update={"isolation_forest_min_samples": 10,
                                              "isolation_forest_history_days": 20})
    engine = open_database(settings)
    factory = make_session_factory(engine)
    shop = build_shop(factory, last_day=date(2026, 11, 18), days=20)
    store = ModelStore.from_settings(settings, cache=None)

    def samples(entity_id: int) -> int:
        train_account_models(session_factory=factory, settings=settings,
                             account_id=shop.account_id, store=store, workers=1)
        return store.read_metadata(shop.account_id, "ad", str(entity_id)).n_samples

    assert samples(shop.ads[0]) == 20
    add_anomaly(shop, shop.ads[0], date(2026, 11, 15), status="false_positive")
    add_anomaly(shop, shop.ads[0], date(2026, 11, 16), status="expected")
    add_anomaly(shop, shop.ads[0], date(2026, 11, 17), status="open")  # no feedback: kept
    add_calendar_days(session_factory=factory, account_id=shop.account_id,
                      days=[(date(2026, 11, 1), "promotion", "sale")])
    assert samples(shop.ads[0]) == 17
    assert store.read_metadata(shop.account_id, "ad", str(shop.ads[1])).n_samples == 19
    engine.dispose()


def _evaluation_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_feedback.py"
    spec = importlib.util.spec_from_file_location("eval_feedback", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_feedback"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_feedback_cuts_repeat_false_alarms_without_hiding_new_incidents(tmp_path):
    """The benchmark's walk-forward on a small account, with the real detection code."""
    figures = _evaluation_module().evaluate_feedback(tmp_path, seed=3, campaigns=2,
                                                     ads_per_campaign=2, days=62)
    without, with_ = figures["without"], figures["with"]
    assert figures["dismissed"] > 0
    assert without.repeat_false_alarms >= 4
    assert with_.repeat_false_alarms == 0
    everything = set(figures["incidents"])
    assert len(everything) == 4
    # the quirky ad's 4x CPM (same pattern, clearly bigger) is still found on the ad itself
    assert with_.caught == with_.caught_on_ad == everything == without.caught
    # and what a default channel is sent: fewer false alerts, every incident still alerted
    assert with_.false_alerts < without.false_alerts
    assert with_.alerted == without.alerted == everything
