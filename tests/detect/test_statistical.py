"""Per-metric robust detectors: NB tails, seasonal medians, pooled rates, volume awareness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adsentinel.detect.statistical import (
    estimate_overdispersion,
    level_forecast,
    log_metric_test,
    nb_interval,
    nb_intervals,
    nb_signed_z,
    pooled_rate,
    rate_metric_test,
    run_statistical_tests,
    weekday_effects,
)


def daily_history(days=60, spend=300.0, cpm=20.0, ctr=0.01, cvr=0.1, seed=0, weekend_dip=0.0):
    """A steady ad: log-normal spend, Poisson/binomial counts. Weekends lower by ``weekend_dip``."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2026-01-05", periods=days, freq="D")  # a Monday
    weekday_factor = np.where(dates.day_of_week >= 5, 1.0 - weekend_dip, 1.0)
    spend_values = spend * weekday_factor * rng.lognormal(0, 0.08, days)
    impressions = rng.poisson(spend_values / cpm * 1000)
    clicks = rng.binomial(impressions, ctr)
    leads = rng.binomial(clicks, cvr)
    reach = (impressions / 1.3).astype(int)
    return pd.DataFrame(
        {"date": dates, "spend": spend_values, "impressions": impressions, "clicks": clicks,
         "leads": leads, "reach": reach}
    )


@pytest.mark.parametrize(
    "k, mean, phi", [(0, 20, 0.05), (50, 20, 0.05), (3, 4, 0.01), (0, 3000, 0.01), (12, 10, 0.2)]
)
def test_nb_signed_z_matches_scipy_nbinom_mid_p(k, mean, phi):
    n = 1 / phi
    p = n / (n + mean)
    if k >= mean:
        tail = stats.nbinom.sf(k, n, p) + 0.5 * stats.nbinom.pmf(k, n, p)
        expected = stats.norm.isf(tail)
    else:
        tail = stats.nbinom.cdf(k, n, p) - 0.5 * stats.nbinom.pmf(k, n, p)
        expected = -stats.norm.isf(tail)
    assert nb_signed_z(k, mean, phi) == pytest.approx(expected, rel=1e-6)


def test_nb_interval_widens_with_overdispersion():
    poisson_like = nb_interval(1000.0, 1e-6, 3.0)
    dispersed = nb_interval(1000.0, 0.04, 3.0)
    assert poisson_like[0] > dispersed[0] and poisson_like[1] < dispersed[1]
    assert poisson_like[0] == pytest.approx(stats.poisson.ppf(stats.norm.sf(3), 1000), abs=2)


def test_vectorised_intervals_equal_the_scalar_ones():
    rng = np.random.default_rng(7)
    means = np.concatenate([rng.gamma(1.0, 50.0, 200), [0.0, -1.0, np.nan, 1e6, 0.3]])
    phis = np.concatenate([rng.uniform(0.0, 1.0, 200), [0.1, 0.1, 0.1, 0.01, 0.0]])
    lows, highs = nb_intervals(means, phis, 3.0)
    expected = [nb_interval(m, phi, 3.0) for m, phi in zip(means, phis, strict=True)]
    assert lows.tolist() == [low for low, _ in expected]
    assert highs.tolist() == [high for _, high in expected]


def test_overdispersion_recovers_extra_variance_and_has_a_floor():
    rng = np.random.default_rng(1)
    means = np.full(200, 5000.0)
    noisy = rng.poisson(means * rng.lognormal(0, 0.3, 200))
    steady = rng.poisson(means)
    assert estimate_overdispersion(noisy, means) == pytest.approx(0.09, rel=0.35)
    assert estimate_overdispersion(steady, means) == pytest.approx(0.01)  # the floor


def test_weekday_effects_recover_a_weekend_dip():
    dates = pd.date_range("2026-01-05", periods=42, freq="D")
    values = np.where(dates.day_of_week >= 5, np.log(50.0), np.log(100.0))
    effects = weekday_effects(values, dates.day_of_week.to_numpy())
    assert effects[5] - effects[0] == pytest.approx(np.log(0.5), abs=0.01)
    assert effects.mean() == pytest.approx(0.0, abs=1e-12)


def test_level_forecast_ignores_a_single_spike_and_adopts_a_persisting_shift():
    values = np.r_[np.full(10, 1.0), 9.0, np.full(3, 1.0), np.full(6, 2.0)]
    forecast = level_forecast(values, window=7)
    assert forecast[11] == 1.0  # the spike on day 10 does not move the median
    assert forecast[-1] == 2.0  # six days of the new level become the normal
    assert np.isnan(forecast[0])


def test_pooled_rate_is_not_dragged_by_a_past_tracking_break():
    exposures = np.full(14, 300.0)
    counts = np.full(14, 20.0)
    counts[5] = 0.0
    rate, kept = pooled_rate(counts, exposures, 3.0)
    assert rate == pytest.approx(20 / 300)
    assert not kept[5] and kept.sum() == 13


def test_ctr_halving_on_three_clicks_is_noise_and_on_three_thousand_is_not():
    small = {"impressions": np.full(28, 300.0), "clicks": np.full(28, 3.0)}
    large = {"impressions": np.full(28, 300_000.0), "clicks": np.full(28, 3000.0)}
    small_z = rate_metric_test(
        "ctr", small, {"impressions": 300.0, "clicks": 1.0}, z_threshold=3.0
    ).z
    large_test = rate_metric_test(
        "ctr", large, {"impressions": 300_000.0, "clicks": 1500.0}, z_threshold=3.0
    )
    assert abs(small_z) < 3.0
    assert large_test.z < -3.0
    assert large_test.actual == pytest.approx(0.005) and large_test.expected == pytest.approx(0.01)
    assert large_test.lower < large_test.expected < large_test.upper


def test_zero_leads_with_spend_is_significant_only_when_leads_were_expected():
    history = {"spend": np.full(28, 300.0), "leads": np.full(28, 20.0)}
    big = rate_metric_test("cpl", history, {"spend": 300.0, "leads": 0.0}, z_threshold=3.0)
    assert big.z > 5.0  # CPL up: harmful
    assert big.harmful and big.direction == "up"
    assert big.actual == 300.0  # CPL with 0 leads is reported as the cost of one lead
    assert big.expected == pytest.approx(15.0)
    tiny = {"spend": np.full(28, 10.0), "leads": np.r_[np.zeros(21), np.ones(7)]}
    small = rate_metric_test("cpl", tiny, {"spend": 10.0, "leads": 0.0}, z_threshold=3.0)
    assert small is None or abs(small.z) < 3.0


def test_spend_weekday_seasonality_is_not_flagged():
    history = daily_history(days=70, weekend_dip=0.6, seed=2)
    weekdays = history["date"].dt.day_of_week.to_numpy()
    for i in range(28, 70):  # a Saturday at 40 % of a Friday is normal here
        test = log_metric_test(
            "spend", history["spend"].to_numpy()[:i], weekdays[:i],
            float(history["spend"].iloc[i]), int(weekdays[i]), z_threshold=3.0,
            iqr_multiplier=1.5,
        )
        assert abs(test.z) < 3.0, (i, test)


def test_spend_expectation_follows_the_weekend():
    history = daily_history(days=70, weekend_dip=0.6, seed=2)
    weekdays = history["date"].dt.day_of_week.to_numpy()
    saturday = 68  # day 68 of a series starting on a Monday is a Saturday
    assert weekdays[saturday] == 5
    test = log_metric_test(
        "spend", history["spend"].to_numpy()[:saturday], weekdays[:saturday],
        float(history["spend"].iloc[saturday]), 5, z_threshold=3.0, iqr_multiplier=1.5,
    )
    assert test.expected == pytest.approx(300 * 0.4, rel=0.15)
    assert test.lower < test.actual < test.upper


def test_run_statistical_tests_on_a_steady_day_flags_nothing():
    history = daily_history(days=45, seed=4)
    tests = run_statistical_tests(
        history.iloc[:-1], history.iloc[-1], z_threshold=3.0, iqr_multiplier=1.5
    )
    assert {t.metric for t in tests} == {
        "spend", "impressions", "leads", "ctr", "conversion_rate", "cpc", "cpm", "cpl", "frequency"
    }
    assert all(abs(t.z) < 3.0 for t in tests), [(t.metric, t.z) for t in tests]


def test_run_statistical_tests_scales_volumes_on_partial_days():
    history = daily_history(days=45, seed=5)
    target = history.iloc[-1].copy()
    for column in ("spend", "impressions", "clicks", "leads", "reach"):
        target[column] = target[column] * 0.4
    whole_day = {t.metric: t for t in run_statistical_tests(
        history.iloc[:-1], target, z_threshold=3.0, iqr_multiplier=1.5)}
    partial = {t.metric: t for t in run_statistical_tests(
        history.iloc[:-1], target, z_threshold=3.0, iqr_multiplier=1.5, day_fraction=0.4)}
    assert whole_day["impressions"].z < -3.0
    assert abs(partial["impressions"].z) < 3.0
    assert "frequency" not in partial
    assert partial["cpl"].z == pytest.approx(whole_day["cpl"].z)


def test_expected_day_fraction_is_a_monotone_share_of_the_day():
    from adsentinel.detect.intraday import expected_day_fraction

    hours = np.linspace(0, 24, 97)
    shares = [expected_day_fraction(h) for h in hours]
    assert shares[0] == 0.0 and shares[-1] == pytest.approx(1.0)
    assert np.all(np.diff(shares) > 0)
    assert 0.1 < expected_day_fraction(9.0) < 0.2  # mornings are quiet
    assert expected_day_fraction(12.0, profile=np.ones(24)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="local_hour must be in \\[0, 24\\], got 25"):
        expected_day_fraction(25)
    with pytest.raises(ValueError, match="profile must be 24 non-negative weights"):
        expected_day_fraction(3.0, profile=np.ones(12))
