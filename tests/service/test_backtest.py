"""Backtest: walk-forward over a CSV, never looking ahead, with the importer's checks."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from adsentinel.errors import InputFileError
from adsentinel.ingest.synthetic import generate_dataset, preset_config, write_dataset
from adsentinel.service.evaluation import backtest_csv

END = date(2026, 10, 31)


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    dataset = generate_dataset(preset_config("demo", seed=5, accounts=1, ads_per_account=8,
                                             days=70, end_date=END))
    folder = tmp_path_factory.mktemp("bt")
    full = write_dataset(dataset, folder / "full").insights
    cut = folder / "cut.csv"
    insights = pd.read_csv(full, dtype=str)
    insights[insights["date"] <= "2026-10-29"].to_csv(cut, index=False)
    return full, cut


def test_results_do_not_depend_on_later_days(dataset_files):
    full, cut = dataset_files
    kwargs = {"start": date(2026, 10, 27), "end": date(2026, 10, 29), "retrain_every": 2,
              "workers": 1}
    with_future = backtest_csv(full, **kwargs)
    without = backtest_csv(cut, **kwargs)
    assert len(with_future) > 0
    pd.testing.assert_frame_equal(with_future, without)
    assert set(with_future["date"].astype(str)) <= {"2026-10-27", "2026-10-28", "2026-10-29"}
    assert {"account_id", "entity_type", "entity_id", "date", "metric", "detector", "severity",
            "score", "actual", "expected", "message"} <= set(with_future.columns)


def test_forest_takes_part_when_retrained(dataset_files):
    full, _ = dataset_files
    found = backtest_csv(full, start=date(2026, 10, 20), end=date(2026, 10, 31),
                         retrain_every=1, workers=1)
    assert found["detector"].str.contains("isolation_forest").any()


def test_bad_file_is_refused_with_its_location(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("date,account_id,campaign_id,adset_id,ad_id,spend,impressions,clicks,leads,"
                   "reach\n2026-10-01,act_1,c,s,a,x,1,0,0,1\n")
    with pytest.raises(InputFileError, match="bad.csv:2 column 'spend'"):
        backtest_csv(bad, start=date(2026, 10, 1), end=date(2026, 10, 2))
