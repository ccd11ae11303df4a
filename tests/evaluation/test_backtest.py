"""Backtest: walk-forward over a CSV, never looking ahead, with the importer's checks."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest

from adsentinel.errors import InputFileError
from adsentinel.evaluation.dataset_files import write_dataset
from adsentinel.evaluation.lab_world import generate_dataset, preset_config
from adsentinel.evaluation.walk import backtest_csv

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
    with pytest.raises(InputFileError, match=re.escape("bad.csv:2 column 'spend'")):
        backtest_csv(bad, start=date(2026, 10, 1), end=date(2026, 10, 2))


def _backtest_cli(full, out, tmp_path, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    console = str(Path(sys.executable).with_name("adsentinel"))
    done = subprocess.run(
        [console, "backtest", "--input", str(full), "--start", "2026-10-20", "--end",
         "2026-10-31", "--output", str(out), "--retrain-every", "7"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "ADSENTINEL_DATA_DIR": str(tmp_path / "data"), **env})
    assert done.returncode == 0, done.stderr
    return done.stdout, pd.read_json(out, lines=True) if out.stat().st_size else pd.DataFrame(
        columns=["detector", "score"])


@pytest.mark.slow
def test_backtest_follows_the_settings_and_says_which(dataset_files, tmp_path):
    full, _ = dataset_files
    said, default = _backtest_cli(full, tmp_path / "a.jsonl", tmp_path)
    assert "settings: z threshold 3, IQR x1.5" in said and "forest on" in said
    said, strict = _backtest_cli(full, tmp_path / "b.jsonl", tmp_path,
                                 ADSENTINEL_USE_ISOLATION_FOREST="false",
                                 ADSENTINEL_ANOMALY_Z_THRESHOLD="6")
    assert "settings: z threshold 6" in said and "forest off" in said
    assert default["detector"].str.contains("isolation_forest").any()
    assert not strict["detector"].str.contains("isolation_forest").any()
    assert len(strict) < len(default)
