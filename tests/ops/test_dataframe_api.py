"""`from adsentinel import detect_frame`: the README's notebook example runs, the answer is
what `adsentinel backtest` finds on the same data, and bad frames are refused clearly."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).parents[2] / "README.md"


def readme_example() -> str:
    """The python block of the README's "Python API for notebooks" section."""
    section = README.read_text().split("## Python API for notebooks", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(capsys):
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "is conversion tracking broken?" in printed
    anomalies = namespace["anomalies"]
    assert list(anomalies.columns) == ["account_id", "entity_type", "entity_id", "date",
                                       "metric", "detector", "severity", "score", "actual",
                                       "expected", "message"]
    assert set(anomalies["date"]) == {namespace["last_day"]}


def small_frame(seed: int = 11, days: int = 70) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for adset, ads in (("s1", ("a1", "a2")), ("s2", ("a3",))):
        for ad in ads:
            for day in pd.date_range("2026-08-01", periods=days):
                impressions = int(rng.normal(8_000, 400))
                spend = float(round(rng.normal(150, 6), 2))
                if ad == "a3" and day >= pd.Timestamp("2026-10-05"):
                    spend *= 3  # a budget typo
                rows.append({"date": day.date().isoformat(), "account_id": "act_9",
                             "campaign_id": "c1", "adset_id": adset, "ad_id": ad,
                             "spend": spend, "impressions": impressions,
                             "clicks": int(impressions * 0.011),
                             "leads": int(rng.poisson(10)), "reach": impressions // 2})
    return pd.DataFrame(rows)


def test_detect_frame_finds_what_backtest_finds_on_the_same_rows(tmp_path):
    from adsentinel import detect_frame
    from adsentinel.evaluation.walk import backtest_csv

    frame = small_frame()
    csv_file = tmp_path / "insights.csv"
    frame.to_csv(csv_file, index=False)
    start, end = date(2026, 9, 25), date(2026, 10, 9)

    ours = detect_frame(frame, start=start, end=end, retrain_every=7)
    theirs = backtest_csv(csv_file, start=start, end=end, retrain_every=7, workers=1)

    assert not ours.empty and (ours["entity_id"] == "a3").any()
    key = ["entity_type", "entity_id", "date", "metric", "severity", "detector"]
    assert ours[key].to_dict("records") == theirs[key].to_dict("records")
    np.testing.assert_allclose(ours["score"], theirs["score"], rtol=1e-9)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns="leads"), "lack the column(s) leads"),
    (lambda f: f.assign(spend=f["spend"].where(f.index != 5, -1.0)),
     "row 5, column 'spend': -1.0 is negative"),
    (lambda f: f.assign(clicks=f["clicks"].astype(object).where(f.index != 3, "lots")),
     "row 3, column 'clicks': 'lots' is not a number"),
    (lambda f: f.assign(date=f["date"].where(f.index != 2, "yesterday")),
     "row 2, column 'date': 'yesterday' is not a date"),
    (lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True), "appears twice on the same day"),
    (lambda f: f.assign(adset_id=f["adset_id"].where(f.index != 0, "s9")),
     "is under more than one ad set"),
])
def test_a_bad_frame_is_refused_saying_where(change, message):
    from adsentinel import detect_frame

    with pytest.raises(ValueError) as refused:
        detect_frame(change(small_frame(days=20)), retrain_every=None)
    assert message in str(refused.value)


def test_no_rows_in_range_gives_an_empty_frame_with_the_columns():
    from adsentinel import detect_frame

    found = detect_frame(small_frame(days=20), end="2020-01-01", retrain_every=None)
    assert found.empty and "severity" in found.columns
