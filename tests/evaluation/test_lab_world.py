"""The synthetic generator: determinism, invariants, honest labels, realistic structure, CLI."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adsentinel.errors import ConfigError
from adsentinel.evaluation.dataset_files import write_dataset
from adsentinel.evaluation.lab_world import (
    BASELINE_DAYS,
    INCIDENT_KINDS,
    INSIGHT_COLUMNS,
    LABEL_COLUMNS,
    LEARNING_DAYS,
    PRESETS,
    GeneratorConfig,
    generate_dataset,
    preset_config,
)

COUNTS = ["spend", "impressions", "clicks", "leads", "reach"]


@pytest.fixture(scope="module")
def evaluation():
    """The evaluation preset (3 accounts x 150 ads x 60 days), generated once for the module."""
    return generate_dataset(PRESETS["evaluation"])


@pytest.fixture(scope="module")
def demo():
    """The demo preset on a seed of its own."""
    return generate_dataset(preset_config("demo", seed=11))


def _entity_rows(insights: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
    column = {"campaign": "campaign_id", "adset": "adset_id", "ad": "ad_id"}[label.entity_type]
    return insights[insights[column] == label.entity_id]


def _daily_totals(rows: pd.DataFrame) -> pd.DataFrame:
    totals = rows.groupby("date")[COUNTS].sum()
    totals.index = pd.to_datetime(totals.index)
    return totals


def _metric(totals: pd.DataFrame, metric: str) -> float:
    """A metric over a period: daily mean for counts, ratio of sums for rates."""
    s = totals.sum()
    days = max(len(totals), 1)
    ratios = {
        "ctr": (s.clicks, s.impressions), "cpc": (s.spend, s.clicks),
        "cpm": (s.spend * 1000, s.impressions), "cpl": (s.spend, s.leads),
        "conversion_rate": (s.leads, s.clicks), "frequency": (s.impressions, s.reach),
    }
    if metric in ratios:
        num, den = ratios[metric]
        return np.inf if den == 0 else num / den
    return s[metric] / days


def _periods(insights: pd.DataFrame, label: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    totals = _daily_totals(_entity_rows(insights, label))
    start, end = pd.Timestamp(label.start_date), pd.Timestamp(label.end_date)
    baseline = totals[(totals.index >= start - pd.Timedelta(days=BASELINE_DAYS))
                      & (totals.index < start)]
    during = totals[(totals.index >= start) & (totals.index <= end)]
    return baseline, during


# ---------------------------------------------------------------------------------------------
# Determinism and file format


def test_same_seed_gives_identical_files_and_other_seeds_differ(tmp_path):
    config = preset_config("demo", seed=5)
    first = write_dataset(generate_dataset(config), tmp_path / "a")
    second = write_dataset(generate_dataset(config), tmp_path / "b")
    third = write_dataset(generate_dataset(preset_config("demo", seed=6)), tmp_path / "c")
    for name in ("insights", "labels", "events"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes()
    assert first.insights.read_bytes() != third.insights.read_bytes()
    assert first.labels.read_bytes() != third.labels.read_bytes()


def test_adding_accounts_keeps_the_existing_ones():
    one = generate_dataset(GeneratorConfig(seed=3, accounts=1, ads_per_account=15, days=40))
    two = generate_dataset(GeneratorConfig(seed=3, accounts=2, ads_per_account=15, days=40))
    first_account = one.insights["account_id"].iloc[0]
    kept = two.insights[two.insights["account_id"] == first_account].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, one.insights)


def test_files_have_the_canonical_columns_and_formats(tmp_path, demo):
    files = write_dataset(demo, tmp_path / "out")
    insights = pd.read_csv(files.insights, dtype=str)
    labels = pd.read_csv(files.labels, dtype=str, keep_default_na=False)
    assert tuple(insights.columns) == INSIGHT_COLUMNS
    assert tuple(labels.columns) == LABEL_COLUMNS
    assert insights["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert insights["account_id"].str.fullmatch(r"act_\d{10,16}").all()
    for column in ("campaign_id", "adset_id", "ad_id"):
        assert insights[column].str.fullmatch(r"\d{15,18}").all()
    assert insights["spend"].str.fullmatch(r"\d+\.\d{2}").all()
    for column in ("impressions", "clicks", "leads", "reach"):
        assert insights[column].str.fullmatch(r"\d+").all()
    assert set(labels["campaign_wide"]) <= {"true", "false"}
    assert set(labels["entity_type"]) <= {"campaign", "adset", "ad"}
    assert not list(files.insights.parent.glob(".*.tmp"))


def test_fast_insights_writer_matches_pandas_to_csv(tmp_path, demo):
    """The hand-written writer gives the bytes of ``DataFrame.to_csv``, quoting included."""
    insights = demo.insights.copy()
    first_ad = insights["ad_id"] == insights["ad_id"].iloc[0]
    insights.loc[first_ad, "ad_name"] = 'Promo, "50% off"'
    insights.loc[first_ad, "campaign_name"] = "Line\nbreak"
    dataset = replace(demo, insights=insights)
    files = write_dataset(dataset, tmp_path / "fast")
    reference = insights.to_csv(index=False, float_format="%.2f", lineterminator="\n")
    assert files.insights.read_text(encoding="utf-8") == reference


def test_write_replaces_files_atomically_and_reports_unwritable_folder(tmp_path, demo):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not_a_folder"):
        write_dataset(demo, blocker)
    out = tmp_path / "out"
    write_dataset(demo, out)
    write_dataset(demo, out)  # overwriting leaves exactly the three files
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "insights.csv", "labels.csv"]


# ---------------------------------------------------------------------------------------------
# Invariants and structure


@pytest.mark.parametrize("which", ["demo", "evaluation"])
def test_row_invariants(which, demo, evaluation):
    insights = {"demo": demo, "evaluation": evaluation}[which].insights
    assert (insights[COUNTS] >= 0).all().all()
    for column in ("impressions", "clicks", "leads", "reach"):
        assert pd.api.types.is_integer_dtype(insights[column])
    assert (insights["clicks"] <= insights["impressions"]).all()
    assert (insights["reach"] <= insights["impressions"]).all()
    assert (insights["leads"] <= insights["clicks"]).all()
    assert ((insights["impressions"] > 0) | (insights["spend"] == 0)).all()
    assert not insights.duplicated(["ad_id", "date"]).any()
    # ids are unique per level: an id never appears at two levels or under two parents
    ads = insights.drop_duplicates("ad_id")
    assert ads["ad_id"].is_unique
    assert insights.groupby("ad_id")["adset_id"].nunique().max() == 1
    assert insights.groupby("adset_id")["campaign_id"].nunique().max() == 1
    assert insights.groupby("campaign_id")["account_id"].nunique().max() == 1
    levels = [set(insights[c]) for c in ("campaign_id", "adset_id", "ad_id")]
    assert not (levels[0] & levels[1] or levels[0] & levels[2] or levels[1] & levels[2])


def test_evaluation_preset_matches_the_benchmark_scale(evaluation):
    insights, labels = evaluation.insights, evaluation.labels
    assert insights["account_id"].nunique() == 3
    assert evaluation.n_ads == 450
    assert insights["date"].nunique() == 60
    assert 60 <= len(labels) <= 80
    assert set(labels["kind"]) == set(INCIDENT_KINDS)
    assert labels["kind"].value_counts().min() >= 5
    assert labels["campaign_wide"].sum() >= 10
    assert labels["persists_to_end"].sum() >= 2
    assert labels["days"].min() == 1 and labels["days"].max() > 5


def test_demo_has_incidents_still_on_at_the_last_day(demo):
    """One per account starts in the last two days (others may also run to the end)."""
    last_day = demo.insights["date"].max()
    day_before = (dt.date.fromisoformat(last_day) - dt.timedelta(days=1)).isoformat()
    recent = demo.labels[(demo.labels["end_date"] == last_day)
                         & (demo.labels["start_date"] >= day_before)]
    assert recent["account_id"].nunique() == 2


def test_spenders_range_from_tiny_to_large_and_frequency_is_realistic(evaluation):
    delivering = evaluation.insights[evaluation.insights["impressions"] > 0]
    spend_per_ad = delivering.groupby("ad_id")["spend"].mean()
    assert spend_per_ad.min() < 5 and spend_per_ad.max() > 300
    totals = delivering.groupby("ad_id")[["impressions", "reach"]].sum()
    frequency = totals["impressions"] / totals["reach"]
    assert frequency.between(1.0, 3.6).all()
    assert 1.2 < frequency.median() < 2.5


def test_weekly_seasonality_differs_per_account(evaluation):
    dates = pd.to_datetime(evaluation.insights["date"])
    insights = evaluation.insights.assign(dow=dates.dt.day_of_week)
    by_day = insights.groupby(["account_id", "dow"])["leads"].sum().unstack()
    profiles = by_day.div(by_day.mean(axis=1), axis=0)
    values = profiles.to_numpy()
    gaps = [np.abs(values[i] - values[j]).max()
            for i in range(len(values)) for j in range(i + 1, len(values))]
    assert min(gaps) > 0.1, profiles


def test_budget_changes_persist_with_efficiency_unchanged():
    dataset = generate_dataset(GeneratorConfig(seed=2, accounts=3, ads_per_account=100, days=150,
                                               incidents_per_100_ads=0.0))
    insights = dataset.insights.assign(date=pd.to_datetime(dataset.insights["date"]))
    events = dataset.events.assign(date=pd.to_datetime(dataset.events["date"]))
    adset_events = events[events["entity_type"] != "account"]
    ad_to_adset = insights.drop_duplicates("ad_id").set_index("ad_id")["adset_id"]
    adset_of_event = adset_events["entity_id"].map(ad_to_adset).fillna(adset_events["entity_id"])
    checked = 0
    for change in events[events["kind"] == "budget_change"].itertuples():
        if abs(np.log(change.factor)) < np.log(1.5):
            continue
        others = adset_events[(adset_of_event == change.entity_id)
                              & (adset_events["date"] - change.date).dt.days.between(-14, 28)]
        if len(others) > 1:  # only clean changes: nothing else moves the ad set
            continue
        totals = _daily_totals(insights[insights["adset_id"] == change.entity_id])
        before = totals[(totals.index < change.date)
                        & (totals.index >= change.date - pd.Timedelta(days=14))]
        after = totals[(totals.index >= change.date + pd.Timedelta(days=7))
                       & (totals.index < change.date + pd.Timedelta(days=28))]
        if len(before) < 14 or len(after) < 21 or before["impressions"].sum() < 5000:
            continue
        spend_ratio = _metric(after, "spend") / _metric(before, "spend")
        cpm_ratio = _metric(after, "cpm") / _metric(before, "cpm")
        assert spend_ratio == pytest.approx(change.factor, rel=0.3), change
        assert cpm_ratio == pytest.approx(1.0, abs=0.2), change
        checked += 1
    assert checked >= 3


def test_new_ads_have_a_learning_phase_with_worse_cpl(evaluation):
    starts = evaluation.events[evaluation.events["kind"] == "ad_start"]
    start_of_ad = pd.to_datetime(starts.set_index("entity_id")["date"])
    rows = evaluation.insights[evaluation.insights["ad_id"].isin(start_of_ad.index)]
    age = (pd.to_datetime(rows["date"]) - rows["ad_id"].map(start_of_ad)).dt.days
    early = rows[age < LEARNING_DAYS][COUNTS].sum()
    late = rows[(age >= LEARNING_DAYS + 3) & (age < LEARNING_DAYS + 24)][COUNTS].sum()
    assert len(start_of_ad) > 50
    assert early.spend / early.leads > 1.3 * late.spend / late.leads


def test_black_friday_raises_cpm_in_every_account(evaluation):
    insights = evaluation.insights.assign(date=pd.to_datetime(evaluation.insights["date"]))
    daily = insights.groupby(["account_id", "date"])[["spend", "impressions"]].sum()
    cpm = (daily["spend"] * 1000 / daily["impressions"]).unstack("account_id")
    black_friday = pd.Timestamp("2025-11-28")
    weeks_before = cpm.loc[black_friday - pd.Timedelta(days=21):black_friday - pd.Timedelta(days=5)]
    assert (cpm.loc[black_friday] > 1.2 * weeks_before.median()).all()


def test_ads_start_stop_and_pause_within_the_period(evaluation):
    kinds = evaluation.events["kind"].value_counts()
    assert kinds["ad_start"] > 50 and kinds["ad_stop"] > 10 and kinds["ad_pause"] > 5
    assert kinds.filter(like="holiday").sum() > 0
    stopped = evaluation.events[evaluation.events["kind"] == "ad_stop"]
    for stop in stopped.head(10).itertuples():
        rows = evaluation.insights[evaluation.insights["ad_id"] == stop.entity_id]
        assert rows["date"].max() < stop.date


# ---------------------------------------------------------------------------------------------
# Labels are honest


def test_each_labelled_metric_moves_in_the_labelled_direction(evaluation):
    wrong = []
    for label in evaluation.labels.itertuples():
        baseline, during = _periods(evaluation.insights, label)
        assert len(baseline) == BASELINE_DAYS, label
        assert len(during) == label.days, label
        for move in label.metrics.split(";"):
            metric, direction = move.split(":")
            before, now = _metric(baseline, metric), _metric(during, metric)
            if not (now > before if direction == "up" else now < before):
                wrong.append((label.incident_id, label.kind, move, before, now))
    assert not wrong


def test_primary_metric_moves_by_about_the_injected_factor(evaluation):
    """Tracking broken: no lead at all; other kinds: the move has the injected order of size."""
    primary = {"spend_spike": "spend", "cpm_spike": "cpm", "ctr_collapse": "ctr",
               "delivery_drop": "impressions", "conversion_rate_drop": "conversion_rate",
               "frequency_spike": "frequency"}
    for label in evaluation.labels.itertuples():
        baseline, during = _periods(evaluation.insights, label)
        if label.kind == "tracking_broken":
            assert during["leads"].sum() == 0
            assert (during["spend"] > 0).all()
            # placed only where >= 4 leads a day are expected: zero is no accident
            assert baseline["leads"].mean() >= 2
            continue
        metric = primary[label.kind]
        ratio = _metric(during, metric) / _metric(baseline, metric)
        # the observed log-move is the injected one give or take the entity's daily noise
        assert 0.4 < np.log(ratio) / np.log(label.magnitude) < 2.0, (label, ratio)


def test_labels_are_in_the_data_and_well_formed(evaluation):
    labels = evaluation.labels
    assert labels["incident_id"].is_unique
    assert (labels["campaign_wide"] == (labels["entity_type"] == "campaign")).all()
    assert (labels["start_date"] <= labels["end_date"]).all()
    last_day = evaluation.insights["date"].max()
    assert (labels["persists_to_end"] == (labels["end_date"] == last_day)).all()
    for label in labels.itertuples():
        assert len(_entity_rows(evaluation.insights, label)) > 0
        assert label.metrics and all(m.split(":")[1] in ("up", "down")
                                     for m in label.metrics.split(";"))


def test_campaign_wide_incidents_affect_every_ad_of_the_campaign(evaluation):
    wide = evaluation.labels[evaluation.labels["campaign_wide"]]
    insights = evaluation.insights.assign(date=pd.to_datetime(evaluation.insights["date"]))
    tracking_seen = 0
    for label in wide.itertuples():
        rows = insights[insights["campaign_id"] == label.entity_id]
        first = pd.Timestamp(label.start_date) - pd.Timedelta(days=BASELINE_DAYS)
        around = rows[rows["date"].between(first, label.end_date)]
        during = rows[rows["date"].between(label.start_date, label.end_date)]
        delivering_ads = around.loc[around["impressions"] > 0, "ad_id"].unique()
        assert len(delivering_ads) == label.n_ads, label
        if label.kind == "tracking_broken":
            tracking_seen += 1
            assert (during["leads"] == 0).all()
        if label.kind in ("cpm_spike", "delivery_drop", "spend_spike", "ctr_collapse"):
            # every ad with real volume shows the move on its own
            metric = {"cpm_spike": "cpm", "delivery_drop": "impressions",
                      "spend_spike": "spend", "ctr_collapse": "ctr"}[label.kind]
            up = label.kind in ("cpm_spike", "spend_spike")
            start = pd.Timestamp(label.start_date)
            for _, ad_rows in rows.groupby("ad_id"):
                base = ad_rows[ad_rows["date"].between(start - pd.Timedelta(days=BASELINE_DAYS),
                                                       start - pd.Timedelta(days=1))]
                hit = ad_rows[ad_rows["date"].between(label.start_date, label.end_date)]
                if base["clicks"].sum() < 300 or hit.empty:
                    continue
                before = _metric(base[COUNTS], metric)
                now = _metric(hit[COUNTS], metric)
                assert (now > before) if up else (now < before), (label, ad_rows["ad_id"].iloc[0])
    assert tracking_seen >= 1


def test_incidents_sit_on_a_clean_baseline(evaluation):
    events = evaluation.events[~evaluation.events["kind"].str.startswith("holiday")]
    insights = evaluation.insights
    for label in evaluation.labels.itertuples():
        rows = _entity_rows(insights, label)
        adsets = set(rows["adset_id"])
        ads = set(insights.loc[insights["adset_id"].isin(adsets), "ad_id"])
        first = (dt.date.fromisoformat(label.start_date)
                 - dt.timedelta(days=BASELINE_DAYS)).isoformat()
        near = events[events["date"].between(first, label.end_date)
                      & events["entity_id"].isin(adsets | ads)]
        # an ad that stopped the day the baseline starts is simply absent from the window
        near = near[~((near["kind"] == "ad_stop") & (near["date"] == first))]
        assert near.empty, (label, near)


# ---------------------------------------------------------------------------------------------
# Parameters and CLI


def test_parameters_are_validated_with_clear_messages():
    with pytest.raises(ConfigError, match="days"):
        GeneratorConfig(days=5)
    with pytest.raises(ConfigError, match="ads_per_account"):
        GeneratorConfig(ads_per_account=0)
    with pytest.raises(ConfigError, match="ads_per_account x days"):
        GeneratorConfig(ads_per_account=20_000, days=365)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset_config("huge")


def test_generation_is_vectorised_enough_for_large_files():
    import time

    started = time.perf_counter()
    dataset = generate_dataset(GeneratorConfig(seed=1, accounts=2, ads_per_account=300,
                                               days=365, incidents_per_100_ads=5.0))
    elapsed = time.perf_counter() - started
    assert len(dataset.insights) > 150_000
    # ~400,000 rows/s on an idle 2-core machine; a loop per ad and day would be ~20x slower
    assert len(dataset.insights) / elapsed > 50_000


def test_cli_generate_writes_both_files(tmp_path):
    from adsentinel.cli import app

    out = tmp_path / "gen"
    result = CliRunner().invoke(app, ["generate", "--seed", "3", "--out", str(out), "--ads", "12",
                                      "--days", "45", "--accounts", "1",
                                      "--end-date", "2026-03-31"])
    assert result.exit_code == 0, result.output
    assert "labelled incidents" in result.output
    insights = pd.read_csv(out / "insights.csv")
    labels = pd.read_csv(out / "labels.csv")
    assert insights["date"].max() == "2026-03-31"
    assert insights["ad_id"].nunique() == 12
    assert list(labels.columns) == list(LABEL_COLUMNS)


def test_cli_generate_rejects_bad_arguments(tmp_path):
    from adsentinel.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--end-date", "31/03/2026"])
    assert result.exit_code == 2  # a bad value is a usage error
    assert "--end-date must be a date YYYY-MM-DD" in result.output
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--preset", "nope"])
    assert isinstance(result.exception, ConfigError)
    assert not (tmp_path / "insights.csv").exists()


def test_cli_lists_every_preset():
    from adsentinel.cli.generate_command import PRESET_NAMES
    from adsentinel.evaluation.lab_world import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)
