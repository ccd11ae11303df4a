"""The detector of one entity: what is reported, how severe, and how it is said."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from adsentinel.config import Settings
from adsentinel.detect.anomaly_detector import (
    AnomalyDetector,
    DetectedAnomaly,
    SeverityLevel,
    format_money,
    get_anomaly_detector,
)
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import isolation_forest_features


def ad_history(days=60, spend=300.0, cpm=20.0, ctr=0.01, cvr=0.1, freq=1.3, seed=0,
               weekend_dip=0.0):
    """One ad's daily rows with realistic day-to-day noise; starts on Monday 2026-01-05."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2026-01-05", periods=days, freq="D")
    weekday = np.where(dates.day_of_week >= 5, 1.0 - weekend_dip, 1.0)
    spend_values = spend * weekday * rng.lognormal(0, 0.08, days)
    impressions = rng.poisson(spend_values / cpm * 1000 * rng.lognormal(0, 0.05, days))
    clicks = rng.binomial(impressions, np.clip(ctr * rng.lognormal(0, 0.08, days), 0, 1))
    leads = rng.binomial(clicks, np.clip(cvr * rng.lognormal(0, 0.1, days), 0, 1))
    reach = (impressions / (freq * rng.lognormal(0, 0.03, days))).astype(int)
    return pd.DataFrame(
        {"date": dates, "spend": spend_values, "impressions": impressions, "clicks": clicks,
         "leads": leads, "reach": reach}
    ).astype({c: float for c in ("impressions", "clicks", "leads", "reach")})


def worst(anomalies: list[DetectedAnomaly], metric: str | None = None) -> DetectedAnomaly | None:
    chosen = [a for a in anomalies if metric is None or a.metric == metric]
    return max(chosen, key=lambda a: a.score) if chosen else None


def rank(anomalies: list[DetectedAnomaly]) -> int:
    """Highest severity rank reported (-1 when nothing)."""
    return max((a.severity.rank for a in anomalies), default=-1)


def test_defaults_are_the_settings_defaults():
    detector = get_anomaly_detector()
    defaults = Settings.model_fields
    assert detector.z_threshold == defaults["anomaly_z_threshold"].default
    assert detector.iqr_multiplier == defaults["anomaly_iqr_multiplier"].default
    assert detector.min_history_days == defaults["anomaly_min_history_days"].default
    assert detector.use_isolation_forest == defaults["use_isolation_forest"].default
    assert detector.frequency_ideal == defaults["frequency_ideal"].default
    with pytest.raises(ValueError, match="z_threshold must be > 0, got -1"):
        AnomalyDetector(z_threshold=-1)


def test_tracking_break_on_a_large_ad_is_critical_with_a_plain_message():
    df = ad_history(spend=2000.0, seed=1)
    df.loc[df.index[-1], "leads"] = 0
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "ad-1", currency="BRL")
    cpl = worst(anomalies, "cpl")
    assert cpl is not None and cpl.severity in (SeverityLevel.HIGH, SeverityLevel.CRITICAL)
    assert cpl.direction == "up" and cpl.harmful
    assert cpl.detectors == ["nb_rate"]
    assert "0 leads on R$ " in cpl.message and "CPL R$ " in cpl.message
    assert cpl.drivers["zero_leads_with_spend"] is True
    assert cpl.expected == pytest.approx(2000 / 0.01 / 1000 * 0.2 / 0 if False else 20.0, rel=0.25)
    assert anomalies[0].score >= anomalies[-1].score  # worst first
    assert cpl.date == df["date"].iloc[-1].date()


def test_the_same_relative_move_on_a_three_click_ad_is_not_alerted():
    df = ad_history(spend=3.0, cpm=10.0, ctr=0.01, seed=2)  # ~3 clicks a day
    df.loc[df.index[-1], "clicks"] = 0
    df.loc[df.index[-1], "leads"] = 0
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "tiny")
    assert [a for a in anomalies if a.metric in ("ctr", "cpc", "cpl", "conversion_rate")] == []
    big = ad_history(spend=3000.0, cpm=10.0, ctr=0.01, seed=2)
    big.loc[big.index[-1], ["clicks", "leads"]] = 0
    assert rank(AnomalyDetector().detect_anomalies(big, "ad", "big")) == SeverityLevel.CRITICAL.rank


def test_weekday_seasonality_does_not_alarm():
    df = ad_history(days=90, weekend_dip=0.6, seed=3)
    detector = AnomalyDetector()
    for day in df["date"].iloc[30:]:
        anomalies = detector.detect_anomalies(df, "ad", "seasonal", analysis_date=day.date())
        assert rank(anomalies) < SeverityLevel.MEDIUM.rank, (day, anomalies)


def test_steady_ad_has_few_low_alerts_and_no_medium_ones():
    df = ad_history(days=120, seed=4)
    detector = AnomalyDetector()
    days_alerted = 0
    for day in df["date"].iloc[30:]:
        anomalies = detector.detect_anomalies(df, "ad", "steady", analysis_date=day.date())
        assert rank(anomalies) < SeverityLevel.MEDIUM.rank
        days_alerted += bool(anomalies)
    assert days_alerted <= 4


def test_persisting_budget_doubling_with_unchanged_efficiency_is_at_most_low():
    df = ad_history(days=60, seed=5)
    change = 50
    scale = np.where(np.arange(60) >= change, 2.0, 1.0)
    for column in ("spend", "impressions", "clicks", "leads", "reach"):
        df[column] = df[column] * scale
    df[["impressions", "clicks", "leads", "reach"]] = df[
        ["impressions", "clicks", "leads", "reach"]].round()
    detector = AnomalyDetector()
    first = detector.detect_anomalies(df, "ad", "a", analysis_date=df["date"][change].date())
    spend = worst(first, "spend")
    assert spend is not None and spend.severity == SeverityLevel.LOW and spend.direction == "up"
    assert "budget change" in spend.message
    assert rank(first) == SeverityLevel.LOW.rank
    for later in range(change + 4, 60):  # the new level is the new normal
        anomalies = detector.detect_anomalies(df, "ad", "a", analysis_date=df["date"][later].date())
        assert worst(anomalies, "spend") is None, later


def test_spend_spike_with_worse_cpl_is_not_a_budget_change():
    df = ad_history(days=45, seed=6)
    last = df.index[-1]
    df.loc[last, "spend"] *= 3
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "a", currency="USD")
    assert worst(anomalies, "spend").severity.rank >= SeverityLevel.HIGH.rank
    cpm = worst(anomalies, "cpm")
    assert cpm.severity == SeverityLevel.CRITICAL and cpm.message.startswith("CPM $ ")
    assert "(3.0x)" in cpm.message


def test_good_news_is_at_most_low():
    df = ad_history(days=45, spend=2000.0, seed=7)
    df.loc[df.index[-1], "leads"] *= 3  # CPL a third of usual
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "a")
    assert worst(anomalies, "cpl").direction == "down"
    assert rank(anomalies) == SeverityLevel.LOW.rank


def test_frequency_spike_is_saturation_only_above_the_ideal():
    df = ad_history(days=45, freq=1.3, seed=8)
    df.loc[df.index[-1], "reach"] = df["impressions"].iloc[-1] / 4.5
    above = worst(AnomalyDetector().detect_anomalies(df, "ad", "a"), "frequency")
    assert above.severity.rank >= SeverityLevel.MEDIUM.rank and above.direction == "up"
    relaxed = worst(AnomalyDetector(frequency_ideal=5.0).detect_anomalies(df, "ad", "a"), "frequency")
    assert relaxed.severity == SeverityLevel.LOW


def test_short_history_reports_nothing():
    df = ad_history(days=12, seed=9)
    df.loc[df.index[-1], "leads"] = 0
    assert AnomalyDetector().detect_anomalies(df, "ad", "new") == []
    assert AnomalyDetector().detect_anomalies(df.iloc[:0], "ad", "none") == []


def test_partial_day_is_not_a_drop_because_the_day_is_not_over():
    df = ad_history(days=45, spend=1000.0, seed=10)
    last = df.index[-1]
    detector = AnomalyDetector()
    hour = 14.0
    from adsentinel.detect.intraday import expected_day_fraction

    fraction = expected_day_fraction(hour)
    for column in ("spend", "impressions", "clicks", "leads", "reach"):
        df.loc[last, column] = round(df.loc[last, column] * fraction, 2)
    as_partial = detector.detect_anomalies(df, "ad", "a", as_of_hour=hour)
    as_complete = detector.detect_anomalies(df, "ad", "a")
    assert rank(as_partial) < SeverityLevel.LOW.rank
    assert worst(as_complete, "impressions").direction == "down"  # judged as a whole day: a drop
    # but a real break is still seen by the same hour
    df.loc[last, "leads"] = 0
    broken = worst(detector.detect_anomalies(df, "ad", "a", as_of_hour=hour, currency="BRL"), "cpl")
    assert broken.is_partial_day and broken.severity.rank >= SeverityLevel.HIGH.rank
    assert "partial day" in broken.message


def test_early_morning_drop_is_not_judged():
    df = ad_history(days=45, spend=1000.0, seed=11)
    last = df.index[-1]
    df.loc[last, ["spend", "impressions", "clicks", "leads", "reach"]] = [1.0, 40, 0, 0, 35]
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "a", as_of_hour=3.0)
    assert [a for a in anomalies if a.metric in ("spend", "impressions", "leads")] == []


def test_isolation_forest_flags_a_broken_day_and_names_the_drivers():
    df = ad_history(days=80, seed=12)
    history = df.iloc[:-1]
    model = IsolationForest(n_estimators=200, random_state=0).fit(isolation_forest_features(history))
    detector = AnomalyDetector()
    quiet = detector.detect_anomalies(df, "ad", "a", model=model)
    assert worst(quiet, "multivariate") is None
    last = df.index[-1]
    df.loc[last, "leads"] = 0
    df.loc[last, "clicks"] = df.loc[last, "clicks"] // 4
    broken = detector.detect_anomalies(df, "ad", "a", model=model)
    forest = worst(broken, "multivariate")
    assert forest is not None and forest.detectors == ["isolation_forest"]
    assert SeverityLevel.LOW.rank <= forest.severity.rank <= SeverityLevel.MEDIUM.rank
    assert next(iter(forest.drivers["features"])) in {"log_cpl", "logit_ctr", "log_cpc"}
    assert forest.message.startswith("CTR -7") and "no leads" in forest.message
    assert "unusual for this ad" in forest.message and "logit" not in forest.message
    off = AnomalyDetector(use_isolation_forest=False).detect_anomalies(df, "ad", "a", model=model)
    assert worst(off, "multivariate") is None


class ExtremeOnLastRow:
    """A stand-in model: every day normal (score -0.5 +- noise) except a chosen extreme one."""

    def score_samples(self, X):
        scores = -0.5 + 0.01 * np.sin(np.arange(len(X)))
        if len(X) == 1:
            return np.array([-5.0])
        return scores


def test_isolation_forest_alone_is_low_and_corroborated_is_at_most_medium():
    df = ad_history(days=60, spend=2000.0, seed=13)
    alone = AnomalyDetector().detect_anomalies(df, "ad", "a", model=ExtremeOnLastRow())
    assert [a.metric for a in alone] == ["multivariate"]
    assert alone[0].severity == SeverityLevel.LOW
    df.loc[df.index[-1], "leads"] = 0
    corroborated = AnomalyDetector().detect_anomalies(df, "ad", "a", model=ExtremeOnLastRow())
    assert worst(corroborated, "multivariate").severity == SeverityLevel.MEDIUM
    assert worst(corroborated).metric != "multivariate"
    # a model stored without training scores is calibrated on its scores of the history
    no_scores = AnomalyDetector().detect_anomalies(
        df, "ad", "a", model=ExtremeOnLastRow(), training_scores=np.array([]))
    assert worst(no_scores, "multivariate").severity == SeverityLevel.MEDIUM


def test_prepare_daily_frame_fills_gaps_and_rejects_missing_columns():
    df = ad_history(days=5)
    gappy = df.drop(index=2).rename(columns={"date": "day"})
    frame = prepare_daily_frame(gappy)
    assert len(frame) == 5 and frame.loc[2, "impressions"] == 0.0
    with pytest.raises(ValueError, match="missing \\['leads'\\]"):
        prepare_daily_frame(df.drop(columns="leads"))


def test_money_and_to_dict():
    assert format_money(1234.5, "BRL") == "R$ 1,234.50"
    assert format_money(3, "CHF") == "CHF 3.00"
    df = ad_history(spend=2000.0, seed=1)
    df.loc[df.index[-1], "leads"] = 0
    row = AnomalyDetector().detect_anomalies(df, "ad", "ad-1")[0].to_dict()
    assert row["date"] == "2026-03-05" and isinstance(row["severity"], str)
    assert {"entity_id", "metric", "detector", "score", "actual", "expected", "message"} <= set(row)
    assert date.fromisoformat(row["date"]).weekday() == 3


def test_an_ads_spend_move_explained_by_its_ad_set_is_at_most_low():
    ad = ad_history(days=45, spend=50.0, seed=14)
    sibling = ad_history(days=45, spend=250.0, seed=15)
    last = ad.index[-1]
    moved = 200.0  # the sibling stopped; its budget went to this ad
    factor = (ad.loc[last, "spend"] + moved) / ad.loc[last, "spend"]
    for column in ("spend", "impressions", "clicks", "leads", "reach"):
        ad.loc[last, column] = round(ad.loc[last, column] * factor)
        sibling.loc[last, column] = round(sibling.loc[last, column] * (1 - moved / 250.0))
    adset = ad.copy()
    adset[["spend", "impressions", "clicks", "leads", "reach"]] += sibling[
        ["spend", "impressions", "clicks", "leads", "reach"]]
    detector = AnomalyDetector()
    alone = detector.detect_anomalies(ad, "ad", "a")
    with_parent = detector.detect_anomalies(ad, "ad", "a", budget_parent=adset)
    assert worst(alone, "spend").severity.rank >= SeverityLevel.HIGH.rank  # 5x: a typo?
    shifted = worst(with_parent, "spend")
    assert shifted.severity == SeverityLevel.LOW and "budget moved towards this ad" in (
        shifted.message)
    # the same jump while the ad set's spend jumps too is the ad set's incident, reported there
    adset.loc[last, ["spend", "impressions", "clicks", "leads", "reach"]] *= 3
    assert worst(detector.detect_anomalies(adset, "adset", "s"), "spend").severity.rank >= (
        SeverityLevel.HIGH.rank)
    both = worst(detector.detect_anomalies(ad, "ad", "a", budget_parent=adset), "spend")
    assert both.severity == SeverityLevel.LOW and "the incident is the ad set's" in both.message


def test_a_resumed_ad_is_not_judged_against_its_pause_zeros():
    df = ad_history(days=45, seed=16)
    df.loc[35:41, ["spend", "impressions", "clicks", "leads", "reach"]] = 0.0  # a week's pause
    anomalies = AnomalyDetector().detect_anomalies(df, "ad", "a", analysis_date=df["date"][43].date())
    assert worst(anomalies, "spend") is None and worst(anomalies, "impressions") is None
    paused_day = AnomalyDetector().detect_anomalies(df, "ad", "a", analysis_date=df["date"][36].date())
    assert paused_day == []  # not delivering is a status, not an anomaly


def test_zero_leads_on_a_normally_delivering_day_is_at_least_medium():
    # ~9 leads a day: each lead test alone sits just past the threshold (z ~3.3, "low")
    usual = ad_history(days=45, spend=90.0, cvr=0.2, seed=21)
    usual.loc[usual.index[-1], "leads"] = 0.0
    cpl = worst(AnomalyDetector().detect_anomalies(usual, "campaign", "c"), "cpl")
    assert cpl.severity.rank >= SeverityLevel.MEDIUM.rank
    assert "conversion tracking broken" in cpl.message
    # ~2 leads a day: a day without any is ordinary
    small = ad_history(days=45, spend=90.0, cvr=0.05, seed=21)
    small.loc[small.index[-1], "leads"] = 0.0
    assert rank(AnomalyDetector().detect_anomalies(small, "campaign", "c")) < (
        SeverityLevel.MEDIUM.rank)


def test_config_id_is_deprecated_and_changes_nothing():
    df = ad_history(spend=2000.0, seed=1)
    df.loc[df.index[-1], "leads"] = 0
    without = AnomalyDetector().detect_anomalies(df, "ad", "ad-1")
    with pytest.warns(DeprecationWarning, match="config_id=.* is deprecated and ignored"):
        given = AnomalyDetector().detect_anomalies(df, "ad", "ad-1", config_id=7)
    assert without and [a.to_dict() for a in given] == [a.to_dict() for a in without]
