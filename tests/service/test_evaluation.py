"""Evaluation harness: walk-forward without look-ahead, and the counting of recall and alarms."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from adsentinel.service.evaluation import (
    NaiveEngine,
    apply_calendar,
    budget_parents_of,
    calendar_of,
    entity_frames,
    hierarchy_of,
    score_alarms,
    walk_forward,
)

START = date(2026, 1, 1)


def insights(days: int = 20) -> pd.DataFrame:
    """Two campaigns: c1 > s1 > (a1, a2) and c2 > s2 > a3, steady numbers."""
    rows = []
    for offset in range(days):
        day = (START + timedelta(days=offset)).isoformat()
        for campaign, adset, ad in (("c1", "s1", "a1"), ("c1", "s1", "a2"), ("c2", "s2", "a3")):
            rows.append({"date": day, "account_id": "act", "campaign_id": campaign,
                         "adset_id": adset, "ad_id": ad, "spend": 10.0, "impressions": 1000,
                         "clicks": 10, "leads": 1, "reach": 800})
    return pd.DataFrame(rows)


def test_entity_frames_sum_parents_and_hierarchy_links_them():
    frames = entity_frames(insights())
    assert set(frames) >= {("act", "campaign", "c1"), ("act", "adset", "s1"), ("act", "ad", "a1")}
    assert frames[("act", "campaign", "c1")]["spend"].iloc[0] == 20.0
    parents = hierarchy_of(insights())
    assert parents[("act", "ad", "a1")] == ("act", "adset", "s1")
    assert parents[("act", "campaign", "c2")] is None
    assert budget_parents_of(frames, parents)[("act", "ad", "a3")] is frames[("act", "adset", "s2")]


def test_walk_forward_never_shows_the_engine_a_later_day():
    frames = entity_frames(insights(days=10))
    seen = []

    def engine(frame, day, level, parent=None, entity=""):
        assert frame["date"].iloc[-1] == day
        if parent is not None:
            assert parent["date"].max() <= day
        seen.append((entity, day))
        return [("spend", "medium", 61.0, "test")] if entity[2] == "a1" and day.day == 5 else []

    out = walk_forward(frames, engine, budget_parents=budget_parents_of(frames, hierarchy_of(insights(10))))
    assert len(seen) == len(frames) * 10
    assert out[["entity_id", "date", "metric"]].values.tolist() == [["a1", date(2026, 1, 5), "spend"]]


def labels() -> pd.DataFrame:
    return pd.DataFrame([
        {"incident_id": "inc_1", "account_id": "act", "entity_type": "adset", "entity_id": "s1",
         "kind": "ctr_collapse", "start_date": "2026-01-10", "end_date": "2026-01-12",
         "magnitude": 0.3},
        {"incident_id": "inc_2", "account_id": "act", "entity_type": "ad", "entity_id": "a3",
         "kind": "tracking_broken", "start_date": "2026-01-15", "end_date": "2026-01-15",
         "magnitude": 0.0},
    ])


def anomaly_rows(rows):
    return pd.DataFrame(rows, columns=["account_id", "entity_type", "entity_id", "date", "metric",
                                       "severity", "score", "detector"])


def test_score_alarms_counts_recall_precision_and_false_alarms():
    parents = hierarchy_of(insights())
    found = anomaly_rows([
        ("act", "ad", "a1", date(2026, 1, 11), "ctr", "medium", 65.0, "nb_rate"),  # child, day 2
        ("act", "ad", "a1", date(2026, 1, 11), "cpc", "high", 80.0, "nb_rate"),  # same alarm
        ("act", "campaign", "c1", date(2026, 1, 10), "ctr", "low", 45.0, "nb_rate"),  # below
        ("act", "ad", "a3", date(2026, 1, 17), "cpl", "high", 80.0, "nb_rate"),  # end + 2: false
        ("act", "ad", "a2", date(2026, 1, 5), "cpm", "medium", 62.0, "nb_rate"),  # false
    ])
    result = score_alarms(found, labels(), parents, engine="t", n_ads=3, days_judged=30)
    assert result.recall == 0.5 and result.detected == 1
    assert result.recall_by_kind == {"ctr_collapse": 1.0, "tracking_broken": 0.0}
    assert (result.alarms, result.true_alarms, result.false_alarms) == (3, 1, 2)
    assert result.precision == pytest.approx(1 / 3)
    assert result.false_alarms_per_ad_month == pytest.approx(2 / 3)
    assert result.median_days_to_detect == 1.0
    assert result.missed == ["inc_2 tracking_broken ad x0.0"]
    assert result.incident_alerts == 3  # no alarm has an alarming ancestor that day
    at_low = score_alarms(found, labels(), parents, engine="t", n_ads=3, days_judged=30,
                          min_severity="low")
    assert at_low.alarms == 4 and at_low.median_days_to_detect == 0.0  # the campaign, day 0


def test_naive_engine_flags_a_zscore_spike_and_keeps_one_forest_per_entity():
    rng = np.random.default_rng(0)
    frame = entity_frames(insights(days=60))[("act", "ad", "a1")].copy()
    frame["spend"] = 10.0 + rng.normal(0, 0.5, len(frame))
    frame.loc[frame.index[-1], "spend"] = 30.0
    engine = NaiveEngine()
    found = engine(frame, frame["date"].iloc[-1], "ad", None, ("act", "ad", "a1"))
    assert ("spend", "critical") in [(m, s) for m, s, *_ in found]
    engine(frame.iloc[:-1], frame["date"].iloc[-2], "ad", None, ("act", "ad", "a1"))
    assert list(engine._models) == [("act", "ad", "a1")]


def test_children_alarming_with_their_campaign_are_one_incident_alert():
    parents = hierarchy_of(insights())
    found = anomaly_rows([
        ("act", "campaign", "c2", date(2026, 1, 5), "cpm", "high", 80.0, "nb_rate"),
        ("act", "adset", "s2", date(2026, 1, 5), "cpm", "high", 80.0, "nb_rate"),
        ("act", "ad", "a3", date(2026, 1, 5), "cpm", "high", 80.0, "nb_rate"),
        ("act", "ad", "a3", date(2026, 1, 6), "cpm", "high", 80.0, "nb_rate"),
    ])
    result = score_alarms(found, labels(), parents, engine="t", n_ads=3, days_judged=30)
    assert result.false_alarms == 4
    assert result.incident_alerts == 2 and result.incident_precision == 0.0
    assert result.false_incident_alerts_per_ad_month == pytest.approx(2 / 3)


def test_calendar_days_keep_only_high_and_critical_anomalies():
    events = pd.DataFrame([
        {"date": "2026-01-02", "account_id": "act", "kind": "holiday_shopping"},
        {"date": "2026-01-03", "account_id": "act", "kind": "budget_change"},
    ])
    calendar = calendar_of(events)
    assert calendar == {("act", date(2026, 1, 2))}
    anomalies = pd.DataFrame([
        {"account_id": "act", "date": date(2026, 1, 2), "severity": "medium"},
        {"account_id": "act", "date": date(2026, 1, 2), "severity": "high"},
        {"account_id": "act", "date": date(2026, 1, 3), "severity": "medium"},
        {"account_id": "other", "date": date(2026, 1, 2), "severity": "medium"},
    ])
    kept = apply_calendar(anomalies, calendar)
    assert kept.to_dict("records") == anomalies.iloc[1:].to_dict("records")
