"""Evaluation harness: walk-forward without look-ahead, and the counting of recall and alarms."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from adsentinel.evaluation.walk import (
    NaiveEngine,
    entity_frames,
    hierarchy_of,
    walk_accounts,
    walk_forward,
    walk_naive,
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


def test_walk_forward_never_shows_the_engine_a_later_day():
    frames = entity_frames(insights(days=10))
    seen = []

    def engine(frame, day, level, parent=None, entity=""):
        assert frame["date"].iloc[-1] == day
        if parent is not None:
            assert parent["date"].max() <= day
        seen.append((entity, day))
        return [("spend", "medium", 61.0, "test")] if entity[2] == "a1" and day.day == 5 else []

    holders = {("act", "ad", "a1"): frames[("act", "adset", "s1")]}
    out = walk_forward(frames, engine, budget_parents=holders)
    assert len(seen) == len(frames) * 10
    assert out[["entity_id", "date", "metric"]].values.tolist() == [["a1", date(2026, 1, 5), "spend"]]


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


def test_the_naive_walk_over_processes_equals_the_walk_in_one():
    frames = entity_frames(insights(days=30))
    one = walk_naive(frames, workers=1)
    two = walk_naive(frames, workers=2)
    key = ["entity_id", "date", "metric"]
    pd.testing.assert_frame_equal(one.sort_values(key).reset_index(drop=True),
                                  two.sort_values(key).reset_index(drop=True))


def test_the_account_walk_never_reads_a_later_day():
    rows = insights(days=40)
    spike = (rows["date"] == "2026-02-05") & (rows["ad_id"] == "a3")
    rows.loc[spike, ["spend", "impressions"]] = [60.0, 1000]  # CPM x6 on the last campaign
    later = rows.copy()
    extra = later[later["date"] == later["date"].max()].copy()
    extra["date"] = "2026-02-10"
    extra["spend"] = 500.0
    with_future = walk_accounts(pd.concat([later, extra]), workers=1, retrain_every=None,
                                first_day=pd.Timestamp("2026-01-20"))
    without = walk_accounts(rows, workers=1, retrain_every=None,
                            first_day=pd.Timestamp("2026-01-20"))
    before = with_future[pd.to_datetime(with_future["date"]) < pd.Timestamp("2026-02-10")]
    assert len(without) > 0 and (pd.to_datetime(without["date"]) == "2026-02-05").any()
    pd.testing.assert_frame_equal(before.reset_index(drop=True), without.reset_index(drop=True),
                                  check_dtype=False)
