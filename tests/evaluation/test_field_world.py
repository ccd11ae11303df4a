"""The field world: deterministic, varied between seeds, honestly labelled, importable."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adsentinel.errors import ConfigError
from adsentinel.evaluation.field_world import (
    FIELD_WORLD_KINDS,
    HISTORY_DAYS,
    field_world_config,
    generate_field_world,
)
from adsentinel.evaluation.lab_world import (
    EVENT_COLUMNS,
    INSIGHT_COLUMNS,
    LABEL_COLUMNS,
    SyntheticDataset,
    generate_dataset,
    preset_config,
)

SEEDS = (1, 2, 3, 4)
METRICS = {"spend", "impressions", "clicks", "leads", "reach", "ctr", "cpc", "cpm", "cpl",
           "conversion_rate", "frequency"}
ENTITY_COLUMN = {"campaign": "campaign_id", "adset": "adset_id", "ad": "ad_id"}


@functools.cache
def world(seed: int, size: str = "evaluation") -> SyntheticDataset:
    return generate_field_world(field_world_config(seed, size))


def entity_days(dataset: SyntheticDataset, entity_type: str, entity_id: str) -> pd.DataFrame:
    rows = dataset.insights[dataset.insights[ENTITY_COLUMN[entity_type]] == entity_id]
    return rows.groupby("date")[["spend", "impressions", "clicks", "leads", "reach"]].sum()


def shifted(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def test_same_seed_gives_identical_frames():
    first = generate_field_world(field_world_config(3))
    second = generate_field_world(field_world_config(3))
    for name in ("insights", "labels", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert not first.insights.equals(world(4).insights)


def test_seeds_draw_different_assumptions():
    accounts = [field_world_config(seed).accounts[0] for seed in SEEDS]
    for name in ("lead_dispersion", "click_dispersion", "cpm_ar_coef", "cpm_noise_sd",
                 "cbo_share", "weekday_cvr", "learning_days", "zero_row_share"):
        values = [getattr(account, name) for account in accounts]
        assert len(set(values)) > 1, name
    assert len({field_world_config(seed).level_mix for seed in SEEDS}) == len(SEEDS)


def test_sizes_and_unknown_size():
    config = field_world_config(1)
    assert 2 <= len(config.accounts) <= 3 and 15 <= config.n_incidents <= 25
    assert 150 <= world(1).n_ads <= 250
    assert world(1).insights["date"].nunique() == 90
    assert world(1).insights["date"].max() == "2026-03-29"
    demo = world(1, "demo")
    assert demo.insights["account_id"].nunique() == 1 and 30 <= demo.n_ads <= 50
    with pytest.raises(ConfigError, match="size must be one of"):
        field_world_config(1, "huge")


def test_evaluation_size_generates_within_five_seconds():
    started = time.perf_counter()
    generate_field_world(field_world_config(11))
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize("seed", SEEDS)
def test_frames_have_the_shared_columns_and_sane_numbers(seed):
    dataset = world(seed)
    assert tuple(dataset.insights.columns) == INSIGHT_COLUMNS
    assert tuple(dataset.labels.columns) == LABEL_COLUMNS
    assert tuple(dataset.events.columns) == EVENT_COLUMNS
    rows = dataset.insights
    for column in ("impressions", "clicks", "leads", "reach"):
        assert pd.api.types.is_integer_dtype(rows[column]), column
        assert (rows[column] >= 0).all(), column
    assert np.allclose(rows["spend"] * 100, (rows["spend"] * 100).round())  # 2 decimals
    assert (rows["spend"] >= 0).all()
    assert (rows["clicks"] <= rows["impressions"]).all()
    assert (rows["reach"] <= rows["impressions"]).all()
    assert (rows["leads"] <= rows["clicks"]).all()
    assert not rows.duplicated(["date", "ad_id"]).any()
    assert list(rows["date"]) == sorted(rows["date"])
    assert rows.groupby("ad_id")["adset_id"].nunique().max() == 1
    assert rows.groupby("adset_id")["campaign_id"].nunique().max() == 1
    for column in ("account_id", "campaign_id", "adset_id", "ad_id"):
        assert rows[column].str.fullmatch(r"\d{15,18}").all(), column
    # a wide spread of volumes
    daily = rows[rows["spend"] > 0].groupby("ad_id")[["impressions", "leads"]].mean()
    assert daily["impressions"].min() < 1_000 and daily["impressions"].max() > 20_000
    assert (daily["leads"] < 2).any() and (daily["leads"] > 10).any()


def test_ids_do_not_clash_with_the_lab_world():
    lab = generate_dataset(preset_config("demo", seed=1)).insights
    field = world(1).insights
    for column in ("account_id", "campaign_id", "adset_id", "ad_id"):
        assert not set(lab[column]) & set(field[column]), column


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_reference_existing_entities_and_dates(seed):
    dataset = world(seed)
    rows, labels = dataset.insights, dataset.labels
    first, last = rows["date"].min(), rows["date"].max()
    assert labels["incident_id"].is_unique
    for label in labels.itertuples():
        assert label.kind in FIELD_WORLD_KINDS
        hit = rows[rows[ENTITY_COLUMN[label.entity_type]] == label.entity_id]
        assert not hit.empty, label.incident_id
        assert set(hit["account_id"]) == {label.account_id}
        assert set(hit["campaign_id"]) == {label.campaign_id}
        if label.entity_type != "campaign":
            assert set(hit["adset_id"]) == {label.adset_id}
        if label.entity_type == "ad":
            assert set(hit["ad_id"]) == {label.ad_id}
        assert shifted(first, HISTORY_DAYS) <= label.start_date <= label.end_date <= last
        assert label.days == (dt.date.fromisoformat(label.end_date)
                              - dt.date.fromisoformat(label.start_date)).days + 1
        assert label.persists_to_end == (label.end_date == last)
        assert label.campaign_wide == (label.entity_type == "campaign")
        window = hit[(hit["date"] >= label.start_date) & (hit["date"] <= label.end_date)]
        assert window["impressions"].gt(0).any(), label.incident_id  # it was delivering
        assert 1 <= label.n_ads <= hit["ad_id"].nunique()
        for move in label.metrics.split(";"):
            metric, direction = move.split(":")
            assert metric in METRICS and direction in {"up", "down"}, move


def test_incidents_of_one_entity_tree_do_not_overlap():
    for seed in SEEDS:
        labels = world(seed).labels
        for a in labels.itertuples():
            for b in labels.itertuples():
                if a.incident_id >= b.incident_id or a.campaign_id != b.campaign_id:
                    continue
                if a.start_date > b.end_date or b.start_date > a.end_date:
                    continue
                # overlapping in time: only on different branches of the campaign
                assert "campaign" not in (a.entity_type, b.entity_type)
                assert a.adset_id != b.adset_id or (a.ad_id and b.ad_id and a.ad_id != b.ad_id)


def test_every_kind_and_level_appears_over_seeds_1_to_4():
    labels = pd.concat([world(seed).labels for seed in SEEDS])
    assert set(labels["kind"]) == set(FIELD_WORLD_KINDS)
    assert set(labels["entity_type"]) == {"ad", "adset", "campaign"}
    tracking = labels[labels["kind"] == "tracking_broken"]
    assert (tracking["campaign_wide"] & (tracking["entity_type"] == "campaign")).any()
    assert labels["persists_to_end"].any()
    spikes = labels[labels["kind"] == "spend_spike"]["magnitude"]
    assert spikes.between(2.5, 5.0).all()


def test_joint_drift_lowers_ctr_by_about_a_quarter():
    ratios = []
    for seed in SEEDS:
        dataset = world(seed)
        for label in dataset.labels[dataset.labels["kind"] == "joint_drift"].itertuples():
            assert label.metrics == "ctr:down;cpc:up;conversion_rate:down"
            assert 0.7 <= label.magnitude <= 0.8
            days = entity_days(dataset, label.entity_type, label.entity_id)
            during = days.loc[label.start_date:label.end_date]
            before = days.loc[shifted(label.start_date, -14):shifted(label.start_date, -1)]
            if during["clicks"].sum() < 200 or before["clicks"].sum() < 200:
                continue  # too few clicks to read a CTR from
            ratio = ((during["clicks"].sum() / during["impressions"].sum())
                     / (before["clicks"].sum() / before["impressions"].sum()))
            assert 0.55 <= ratio <= 0.92, (seed, label.incident_id, ratio)
            ratios.append(ratio)
    assert len(ratios) >= 2
    assert 0.65 <= statistics.median(ratios) <= 0.85


@pytest.mark.parametrize("seed", (1, 2))
def test_account_shock_moves_every_campaign_of_the_account(seed):
    config = field_world_config(seed)
    shocked = world(seed)
    calm = generate_field_world(dataclasses.replace(config, unlabelled_shocks=False))
    pd.testing.assert_frame_equal(shocked.labels, calm.labels)  # never labelled
    shocks = shocked.events[shocked.events["kind"] == "account_shock"]
    assert not shocks.empty and calm.events["kind"].ne("account_shock").all()
    assert not shocks["description"].str.contains("holiday", case=False).any()

    def by_campaign(dataset):
        return dataset.insights.groupby(["account_id", "date", "campaign_id"])[
            ["spend", "impressions"]].sum()

    on, off = by_campaign(shocked), by_campaign(calm)
    checked = 0
    for shock in shocks.itertuples():
        day_on = on.loc[(shock.account_id, shock.date)]
        day_off = off.loc[(shock.account_id, shock.date)]
        delivering = day_off[day_off["impressions"] > 0].index
        assert len(delivering) >= 2
        for campaign in delivering:
            a, b = day_on.loc[campaign], day_off.loc[campaign]
            cpm = (a["spend"] / a["impressions"]) / (b["spend"] / b["impressions"])
            if shock.description.startswith("auction"):
                assert a["spend"] / b["spend"] >= 1.1, (shock.date, campaign)
                assert cpm >= 1.08, (shock.date, campaign)
            else:
                assert 0.8 <= cpm / shock.factor <= 1.25, (shock.date, campaign)
            checked += 1
    assert checked >= 10


def test_paused_ads_leave_missing_rows_and_zero_rows():
    zero_rows = missing_rows = 0
    for seed in (1, 2):
        dataset = world(seed)
        pauses = dataset.events[dataset.events["kind"] == "ad_pause"]
        for pause in pauses.itertuples():
            length = int(pause.description.split(" for ")[1].split()[0])
            days = {shifted(pause.date, k) for k in range(length)}
            rows = dataset.insights[(dataset.insights["ad_id"] == pause.entity_id)
                                    & dataset.insights["date"].isin(days)]
            assert (rows["spend"] == 0).all() and (rows["impressions"] == 0).all()
            zero_rows += len(rows)
            missing_rows += len(days) - len(rows)
    assert zero_rows > 0 and missing_rows > 0


def test_events_are_the_lab_kinds_plus_account_shocks():
    events = pd.concat([world(seed).events for seed in SEEDS])
    assert set(events["kind"]) == {"budget_change", "ad_start", "ad_stop", "ad_pause",
                                   "account_shock"}
    budget = events[events["kind"] == "budget_change"]
    assert budget["factor"].notna().all()
    assert set(budget["entity_type"]) == {"campaign", "adset"}  # CBO and ABO
    assert (budget["factor"] < 1).any() and (budget["factor"] >= 2).any()


def test_cli_writes_a_field_world_that_imports(tmp_path):
    cli = Path(sys.executable).with_name("adsentinel")
    assert cli.exists(), cli
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    environment.update({"ADSENTINEL_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), *args], capture_output=True, text=True,
                              env=environment, cwd=tmp_path, timeout=300)

    out = tmp_path / "field"
    result = run("generate", "--world", "field", "--out", str(out), "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "world field" in result.stdout
    expected = generate_field_world(field_world_config(1, "demo"))
    written = pd.read_csv(out / "insights.csv", dtype={c: str for c in (
        "account_id", "campaign_id", "adset_id", "ad_id")})
    assert tuple(written.columns) == INSIGHT_COLUMNS
    assert len(written) == len(expected.insights)
    assert np.allclose(written["spend"], expected.insights["spend"])
    assert len(pd.read_csv(out / "labels.csv")) == len(expected.labels)

    result = run("import", str(out / "insights.csv"))
    assert result.returncode == 0, result.stderr
    assert "rows imported" in result.stdout


def test_cli_field_world_arguments(tmp_path):
    from adsentinel.cli import app
    from adsentinel.cli.generate_command import FIELD_PRESET_NAMES
    from adsentinel.evaluation.field_world import SIZES

    assert set(FIELD_PRESET_NAMES) == set(SIZES)
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--world", "field", "--out", str(tmp_path / "a"),
                                 "--end-date", "2026-06-30", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "a" / "insights.csv")["date"].max() == "2026-06-30"
    for args, message in (
        (["--accounts", "2", "--days", "30"], "--world field does not take --accounts, --days"),
        (["--preset", "benchmark"], "--preset must be one of demo, evaluation"),
    ):
        result = runner.invoke(app, ["generate", "--world", "field", "--out",
                                     str(tmp_path / "b"), *args])
        assert isinstance(result.exception, ConfigError)
        assert message in result.exception.message
    result = runner.invoke(app, ["generate", "--world", "moon", "--out", str(tmp_path / "b")])
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "b").exists()
