"""Scoring per ad-day and the oracle's view of what is detectable."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from adsentinel.evaluation.oracle import DETECTABLE_P, oracle_verdict
from adsentinel.evaluation.scoring import Hierarchy, score_run

START = date(2026, 1, 1)


def insights(days=10) -> pd.DataFrame:
    """c1 > s1 > (a1, a2, a3) and c2 > s2 > a4; a3 pauses on day 5."""
    rows = []
    for offset in range(days):
        day = START + timedelta(days=offset)
        for campaign, adset, ad in (("c1", "s1", "a1"), ("c1", "s1", "a2"), ("c1", "s1", "a3"),
                                    ("c2", "s2", "a4")):
            live = not (ad == "a3" and offset == 5)
            rows.append({"date": day.isoformat(), "account_id": "act", "campaign_id": campaign,
                         "adset_id": adset, "ad_id": ad, "impressions": 1000 if live else 0})
    return pd.DataFrame(rows)


def labels() -> pd.DataFrame:
    return pd.DataFrame([{"incident_id": "i1", "account_id": "act", "entity_type": "ad",
                          "entity_id": "a1", "kind": "ctr_collapse", "start_date": "2026-01-04",
                          "end_date": "2026-01-05", "magnitude": 0.3}])


def alarms(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": "act", "entity_type": level, "entity_id": entity,
                          "date": START + timedelta(days=offset), "metric": "ctr",
                          "severity": severity, "score": 70.0}
                         for level, entity, offset, severity in rows])


def test_a_parents_alarm_counts_once_for_each_of_its_delivering_ads():
    hierarchy = Hierarchy.from_insights(insights())
    found = alarms(("campaign", "c1", 3, "medium"), ("ad", "a1", 3, "high"),
                   ("adset", "s1", 5, "medium"), ("ad", "a4", 7, "medium"),
                   ("ad", "a2", 8, "low"))
    counts = score_run(found, labels(), hierarchy, first_day=START,
                       last_day=START + timedelta(days=9))
    summary = counts.summary()
    # campaign day 3: a1 (true), a2, a3 (false); ad set day 5: a1 true (end + 1), a2; a3 paused
    assert counts.alarmed_ad_days == {"campaign": 3, "ad": 2, "adset": 2}
    assert counts.true_ad_days == {"campaign": 1, "ad": 1, "adset": 1}
    assert summary["precision_campaign"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["precision"] == pytest.approx(3 / 7, abs=1e-3)
    assert summary["false_alarms_per_ad_month"] == pytest.approx(4 / (39 / 30), abs=1e-3)
    # the ad's alarm is shown under its campaign's: 3 incident alerts, 2 of them true
    assert (counts.incident_alerts, counts.true_incident_alerts) == (3, 2)
    assert summary["recall"] == 1.0 and counts.delays == [0]
    assert summary["recall_in_window"] == 1.0
    assert counts.false_by_metric == {"ctr": 1}  # only a4 on day 7 touches no incident


def test_recall_needs_an_alarm_by_the_second_day_and_is_also_given_on_detectable_ones():
    hierarchy = Hierarchy.from_insights(insights())
    late = alarms(("ad", "a1", 5, "medium"))  # the incident started on day 3
    counts = score_run(late, labels(), hierarchy, first_day=START,
                       last_day=START + timedelta(days=9), detectable={"i1": True})
    assert counts.summary()["recall"] == 0.0
    assert counts.summary()["recall_in_window"] == 1.0  # found, but on its third day
    assert counts.summary()["recall_detectable"] == 0.0
    assert counts.missed == ["i1 ctr_collapse ad x0.3"]
    early = alarms(("adset", "s1", 4, "medium"))
    counts = score_run(early, labels(), hierarchy, first_day=START,
                       last_day=START + timedelta(days=9), detectable={"i1": False})
    assert counts.summary()["recall"] == 1.0
    assert counts.summary()["recall_detectable"] is None  # nothing was detectable


def test_scores_of_several_runs_pool_by_adding_counts():
    hierarchy = Hierarchy.from_insights(insights())
    one = score_run(alarms(("ad", "a1", 3, "medium")), labels(), hierarchy, first_day=START,
                    last_day=START + timedelta(days=9))
    two = score_run(alarms(("ad", "a4", 3, "medium")), labels(), hierarchy, first_day=START,
                    last_day=START + timedelta(days=9))
    pooled = one + two
    assert pooled.incidents == 2 and pooled.detected == 1
    assert pooled.summary()["precision"] == 0.5


def daily(leads_per_day: float, days=40, seed=0, break_from=None, break_days=1):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "date": pd.date_range("2026-01-01", periods=days, freq="D"),
        "spend": 100.0, "impressions": 10_000.0, "clicks": 200.0,
        "leads": rng.poisson(leads_per_day, days).astype(float), "reach": 8000.0})
    if break_from is not None:
        frame.loc[break_from:break_from + break_days - 1, "leads"] = 0.0
    return frame


def test_a_day_without_leads_at_one_lead_a_day_is_below_the_noise():
    frame = daily(1.0, break_from=30)
    verdict = oracle_verdict(frame, "tracking_broken", frame["date"][30], days=1)
    assert not verdict.detectable and verdict.p_value > 0.05


def test_two_days_without_leads_at_twenty_a_day_are_detectable():
    frame = daily(20.0, break_from=30, break_days=2)
    verdict = oracle_verdict(frame, "tracking_broken", frame["date"][30], days=2)
    assert verdict.detectable and verdict.p_value < DETECTABLE_P


def test_the_oracle_refuses_a_kind_it_does_not_know():
    frame = daily(20.0)
    with pytest.raises(ValueError, match="no oracle test for incident kind 'mystery'"):
        oracle_verdict(frame, "mystery", frame["date"][30], days=1)
