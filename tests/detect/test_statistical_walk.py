"""The vectorised walk judges every day as the per-day tests do, over varied entity histories."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from adsentinel.detect.anomaly_detector import AnomalyDetector, judges_day
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.statistical import (
    FREQUENCY_DEFINITION,
    RATE_DEFINITIONS,
    MetricTest,
    _bonferroni_z,
    nb_interval,
    nb_signed_z,
    run_statistical_tests,
)
from adsentinel.detect.statistical_walk import (
    _row_percentiles,
    bonferroni_z_array,
    judged_days,
    lagged_common_moves,
    nb_signed_z_array,
    walk_statistical_tests,
)

START = date(2026, 1, 5)
WEEKDAY_SHAPE = np.array([1.0, 1.05, 1.1, 1.0, 0.95, 0.8, 0.75])


def _entity(seed: int, days: int, *, spend_level: float, leads_per_click: float,
            ) -> dict[str, np.ndarray]:
    """Daily counts of one entity with a weekday shape and noise (no events yet)."""
    rng = np.random.default_rng(seed)
    shape = WEEKDAY_SHAPE[[(START + timedelta(days=k)).weekday() for k in range(days)]]
    spend = np.round(spend_level * shape * rng.lognormal(0.0, 0.12, days), 2)
    impressions = rng.poisson(spend * 80.0).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.012).astype(float)
    leads = rng.binomial(clicks.astype(int), leads_per_click).astype(float)
    reach = np.round(impressions / rng.uniform(1.2, 1.9, days))
    return {"spend": spend, "impressions": impressions, "clicks": clicks, "leads": leads,
            "reach": reach}


def _frame(columns: dict[str, np.ndarray], drop_rows: tuple[int, ...] = ()) -> pd.DataFrame:
    days = columns["spend"].size
    frame = pd.DataFrame({"date": [START + timedelta(days=k) for k in range(days)], **columns})
    return prepare_daily_frame(frame.drop(index=list(drop_rows)))  # dropped rows: no delivery


def _quiet() -> pd.DataFrame:
    return _frame(_entity(1, 150, spend_level=120.0, leads_per_click=0.08))


def _zero_lead_days() -> pd.DataFrame:
    return _frame(_entity(2, 120, spend_level=15.0, leads_per_click=0.05))


def _new_entity() -> pd.DataFrame:
    return _frame(_entity(3, 26, spend_level=60.0, leads_per_click=0.1))


def _gaps_without_delivery() -> pd.DataFrame:
    columns = _entity(4, 140, spend_level=80.0, leads_per_click=0.07)
    for column in columns.values():
        column[40:52] = 0.0  # a twelve-day pause
        column[97] = 0.0
    columns["spend"][70] = 5.0  # spend without a single impression
    columns["impressions"][70] = columns["clicks"][70] = columns["reach"][70] = 0.0
    columns["leads"][70] = 0.0
    return _frame(columns, drop_rows=(110, 111, 112, 125))


def _spikes() -> pd.DataFrame:
    columns = _entity(5, 130, spend_level=200.0, leads_per_click=0.06)
    columns["spend"][[60, 100]] *= 4.0
    columns["impressions"][80] *= 0.1
    columns["clicks"][90:94] *= 0.3
    columns["clicks"][90:94] = np.round(columns["clicks"][90:94])
    columns["leads"][110:114] = 0.0  # a tracking break over several days: pooled rate tests
    columns["reach"][120] = 0.0
    columns["spend"][125] = 0.0  # impressions with no spend
    return _frame(columns)


HISTORIES = {"quiet": _quiet, "zero_lead_days": _zero_lead_days, "new_entity": _new_entity,
             "gaps_without_delivery": _gaps_without_delivery, "spikes": _spikes}


def _reference(daily: pd.DataFrame, position: int, *, history_days: int,
               min_history_days: int, **windows: int) -> list[MetricTest]:
    """The detector's own path for one day: its gate, then run_statistical_tests."""
    history = daily.iloc[max(0, position - history_days):position]
    target = daily.iloc[position]
    if not judges_day(history, target, min_history_days):
        return []
    return run_statistical_tests(history, target, z_threshold=3.0, iqr_multiplier=1.5,
                                 **windows)


def _close(walked: float, reference: float) -> bool:
    if math.isnan(reference) or math.isnan(walked):
        return math.isnan(reference) and math.isnan(walked)
    return math.isclose(walked, reference, rel_tol=1e-9, abs_tol=1e-12)


def _differences(walked: MetricTest, reference: MetricTest) -> list[str]:
    found = [name for name in ("actual", "expected", "lower", "upper", "z")
             if not _close(getattr(walked, name), getattr(reference, name))]
    if walked.detector != reference.detector:
        found.append(f"detector {walked.detector} != {reference.detector}")
    if walked.volume.keys() != reference.volume.keys():
        found.append(f"volume keys {sorted(walked.volume)} != {sorted(reference.volume)}")
    else:
        found += [f"volume {key}" for key, value in reference.volume.items()
                  if not _close(walked.volume[key], value)]
    return found


def _assert_walk_equals_reference(daily: pd.DataFrame, *, history_days: int,
                                  min_history_days: int, **windows: int) -> tuple[int, int]:
    """Compare every day; return how many tests were compared and how many pooled days."""
    walk = walk_statistical_tests(daily, np.arange(len(daily)), z_threshold=3.0,
                                  iqr_multiplier=1.5, min_history_days=min_history_days,
                                  history_days=history_days, **windows)
    compared = pooled = 0
    for position, walked in enumerate(walk.all_tests()):
        reference = _reference(daily, position, history_days=history_days,
                               min_history_days=min_history_days, **windows)
        assert [t.metric for t in walked] == [t.metric for t in reference], position
        for ours, theirs in zip(walked, reference, strict=True):
            assert _differences(ours, theirs) == [], (position, theirs.metric)
            compared += 1
            pooled += theirs.detector.startswith("nb_rate_")
    return compared, pooled


@pytest.mark.parametrize("history_days,min_history_days", [(90, 14), (30, 7)])
@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_the_walk_equals_the_per_day_tests(name, history_days, min_history_days):
    compared, pooled = _assert_walk_equals_reference(
        HISTORIES[name](), history_days=history_days, min_history_days=min_history_days)
    assert compared > 0
    if name == "spikes":
        assert pooled > 0  # the pooled rate tests were among those compared


@pytest.mark.parametrize("name", ["spikes", "gaps_without_delivery"])
def test_the_walk_equals_the_per_day_tests_with_other_windows(name):
    compared, _ = _assert_walk_equals_reference(
        HISTORIES[name](), history_days=60, min_history_days=10, level_window=5,
        rate_window=10, max_pooled_days=2)
    assert compared > 0


def test_all_bounds_complete_the_count_and_rate_bands_with_the_detectors_interval():
    daily = _quiet()
    positions = np.arange(60, 150)
    options = {"z_threshold": 3.0, "iqr_multiplier": 1.5, "min_history_days": 14}
    decided = walk_statistical_tests(daily, positions, **options)
    drawn = walk_statistical_tests(daily, positions, all_bounds=True, **options)
    completed = 0
    drawn_days, decided_days = drawn.all_tests(), decided.all_tests()
    for index in range(positions.size):
        for ours, theirs in zip(drawn_days[index], decided_days[index], strict=True):
            assert (ours.expected, ours.z) == (theirs.expected, theirs.z)
            if not math.isnan(theirs.lower) or "overdispersion" not in theirs.volume:
                assert _close(ours.lower, theirs.lower) and _close(ours.upper, theirs.upper)
                continue
            completed += 1
            assert _close(ours.lower, _band(theirs)[0]) and _close(ours.upper, _band(theirs)[1])
    assert completed > 100


def _band(test: MetricTest) -> tuple[float, float]:
    """The bounds a per-day test would have had at the threshold: the negative-binomial
    interval of its own expected count, turned into the metric as the rate test does."""
    phi = test.volume["overdispersion"]
    if test.detector == "nb_count":
        return nb_interval(test.expected, phi, 3.0)
    count_col, exposure_col, inverse, factor = (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[
        test.metric]
    low, high = nb_interval(test.volume[f"expected_{count_col}"], phi, 3.0)
    exposure = test.volume[exposure_col]
    if inverse:
        return (factor * exposure / high if high > 0 else math.nan,
                factor * exposure / low if low > 0 else math.nan)
    return factor * low / exposure, factor * high / exposure


def test_judged_days_are_the_detectors_gate():
    daily = _gaps_without_delivery()
    mask = judged_days(daily["impressions"].to_numpy(), daily["spend"].to_numpy(),
                       min_history_days=14, history_days=30)
    for position in range(len(daily)):
        history = daily.iloc[max(0, position - 30):position]
        assert mask[position] == judges_day(history, daily.iloc[position], 14), position


def test_vectorised_tails_equal_the_scalar_ones():
    rng = np.random.default_rng(11)
    counts = np.concatenate([rng.poisson(30.0, 300), [0, 0, 5, 1e6]]).astype(float)
    means = np.concatenate([rng.gamma(2.0, 15.0, 300), [0.0, 4.0, np.nan, 3.0]])
    phis = np.concatenate([rng.uniform(0.0, 0.8, 300), [0.1, 0.0, 0.1, 0.01]])
    walked = nb_signed_z_array(counts, means, phis)
    assert walked.tolist() == pytest.approx(
        [nb_signed_z(k, m, phi) for k, m, phi in zip(counts, means, phis, strict=True)],
        rel=1e-12, abs=1e-12)
    zs = np.concatenate([rng.normal(0.0, 4.0, 200), [0.0, 40.0, -40.0]])
    assert bonferroni_z_array(zs, 3).tolist() == pytest.approx(
        [_bonferroni_z(z, 3) for z in zs], rel=1e-12, abs=1e-12)


def test_row_percentiles_are_numpys_linear_percentiles():
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(200, 40))
    rows[rng.random(rows.shape) < 0.4] = np.nan
    for quantile in (0.25, 0.75):
        ours = _row_percentiles(rows, quantile)
        for row, value in zip(rows, ours, strict=True):
            kept = row[np.isfinite(row)]
            assert value == np.percentile(kept, 100 * quantile)


# --- with the account's common move -----------------------------------------------------------

ALL_METRICS = ("spend", "impressions", "leads", *RATE_DEFINITIONS, *FREQUENCY_DEFINITION)


def _random_moves(seed: int, days: int, share: float) -> dict[str, np.ndarray]:
    """Per metric, one common-move factor per row (1: the account did not move that day)."""
    rng = np.random.default_rng(seed)
    return {metric: np.where(rng.random(days) < share, rng.lognormal(0.0, 0.3, days), 1.0)
            for metric in ALL_METRICS}


def _moves_of_row(by_row: dict[str, np.ndarray], row: int) -> dict[str, float]:
    """The moves of one row as the account's code passes them: only the metrics that moved."""
    if row < 0:
        return {}
    return {metric: float(f[row]) for metric, f in by_row.items() if f[row] != 1.0}


def _assert_walk_with_moves_equals_reference(daily: pd.DataFrame, by_row: dict[str, np.ndarray],
                                             **options: int) -> tuple[int, int]:
    """Compare every day with moves; return how many tests moved and how many of them pooled
    days with moves of their own."""
    windows = {k: v for k, v in options.items() if k in ("max_pooled_days", "rate_window")}
    walk = walk_statistical_tests(
        daily, np.arange(len(daily)), z_threshold=3.0, iqr_multiplier=1.5,
        min_history_days=14, history_days=90,
        common_moves=lagged_common_moves(by_row, np.arange(len(daily))), **options)
    moved = pooled_with_moves = 0
    for position, walked in enumerate(walk.all_tests()):
        history = daily.iloc[max(0, position - 90):position]
        target = daily.iloc[position]
        reference = [] if not judges_day(history, target, 14) else run_statistical_tests(
            history, target, z_threshold=3.0, iqr_multiplier=1.5,
            common_move=_moves_of_row(by_row, position),
            earlier_common_moves=[_moves_of_row(by_row, position - back) for back in (1, 2, 3)],
            **windows)
        assert [t.metric for t in walked] == [t.metric for t in reference], position
        for ours, theirs in zip(walked, reference, strict=True):
            assert _differences(ours, theirs) == [], (position, theirs.metric)
            days = int(theirs.detector[-2]) if theirs.detector.startswith("nb_rate_") else 1
            factors = [by_row[theirs.metric][position - back] for back in range(days)]
            moved += any(f != 1.0 for f in factors)
            pooled_with_moves += days > 1 and len(set(factors)) > 1
    return moved, pooled_with_moves


@pytest.mark.parametrize("share", [0.3, 1.0])
@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_the_walk_with_common_moves_equals_the_per_day_tests(name, share):
    daily = HISTORIES[name]()
    moved, pooled_with_moves = _assert_walk_with_moves_equals_reference(
        daily, _random_moves(17, len(daily), share))
    assert moved > 0
    if name == "spikes":
        assert pooled_with_moves > 0  # pooled days each judged against their own move


def test_the_walk_with_common_moves_and_other_windows():
    daily = _spikes()
    moved, _ = _assert_walk_with_moves_equals_reference(
        daily, _random_moves(23, len(daily), 0.5), rate_window=10, max_pooled_days=2)
    assert moved > 0


def test_a_campaigns_move_tests_are_the_walk_without_pooling_or_the_delivery_gate():
    daily = _gaps_without_delivery()
    detector = AnomalyDetector()
    walk = walk_statistical_tests(daily, np.arange(len(daily)), z_threshold=3.0,
                                  iqr_multiplier=1.5, min_history_days=14, max_pooled_days=1,
                                  require_delivery=False)
    undelivered = 0
    for position, walked in enumerate(walk.all_tests()):
        day = pd.Timestamp(daily["date"].iloc[position]).date()
        reference = detector.campaign_move_tests(daily, day)
        assert [t.metric for t in walked] == [t.metric for t in reference], position
        for ours, theirs in zip(walked, reference, strict=True):
            assert _differences(ours, theirs) == [], (position, theirs.metric)
        undelivered += bool(reference) and daily["impressions"].iloc[position] <= 0
    assert undelivered > 0  # days without delivery were among those compared


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_the_walk_of_partial_days_equals_the_per_day_tests_at_their_hour(name):
    """Today's row read at some hour: volumes against their history scaled by the share of a
    day's delivery expected by then, rates unscaled, frequency only on complete days."""
    daily = HISTORIES[name]()
    fractions = np.random.default_rng(11).choice([0.04, 0.3, 0.65, 1.0], size=len(daily))
    walk = walk_statistical_tests(daily, np.arange(len(daily)), z_threshold=3.0,
                                  iqr_multiplier=1.5, min_history_days=14,
                                  day_fractions=fractions)
    compared = partial = 0
    for position, walked in enumerate(walk.all_tests()):
        history = daily.iloc[max(0, position - 90):position]
        target = daily.iloc[position]
        reference = (run_statistical_tests(history, target, z_threshold=3.0, iqr_multiplier=1.5,
                                           day_fraction=float(fractions[position]))
                     if judges_day(history, target, 14) else [])
        assert [t.metric for t in walked] == [t.metric for t in reference], position
        for ours, theirs in zip(walked, reference, strict=True):
            assert _differences(ours, theirs) == [], (position, theirs.metric)
            compared += 1
            partial += fractions[position] < 1.0
    assert compared > 0 and partial > 0


def test_lagged_common_moves_shift_each_rows_factor_back():
    lagged = lagged_common_moves({"cpm": np.array([2.0, 3.0, 4.0, 5.0])}, [0, 3], days=3)
    assert lagged["cpm"].tolist() == [[2.0, 1.0, 1.0], [5.0, 4.0, 3.0]]


def test_a_budget_holders_tests_are_the_walk_without_any_gate():
    daily = _gaps_without_delivery()
    walk = walk_statistical_tests(daily, np.arange(len(daily)), z_threshold=3.0,
                                  iqr_multiplier=1.5, min_history_days=0,
                                  require_delivery=False)
    compared = 0
    for position, walked in enumerate(walk.all_tests()):
        history, target = daily.iloc[max(0, position - 90):position], daily.iloc[position]
        reference = run_statistical_tests(history, target, z_threshold=3.0, iqr_multiplier=1.5)
        assert [t.metric for t in walked] == [t.metric for t in reference], position
        for ours, theirs in zip(walked, reference, strict=True):
            assert _differences(ours, theirs) == [], (position, theirs.metric)
            compared += position < 14  # days with too little history for the detector's gate
    assert compared > 0


def test_entities_laid_end_to_end_are_each_walked_as_alone():
    """Several entities' frames in one walk (``series_starts``): no window, gate or pooled day
    reaches into the entity before, and each day keeps its weekday (lengths not whole weeks)."""
    frames = [_spikes(), _new_entity(), _gaps_without_delivery(), _zero_lead_days()]
    lengths = [len(frame) for frame in frames]
    assert any(length % 7 for length in lengths)
    laid = pd.concat(frames, ignore_index=True)
    firsts = np.cumsum([0, *lengths[:-1]])
    options = {"z_threshold": 3.0, "iqr_multiplier": 1.5, "min_history_days": 14,
               "history_days": 60}
    together = walk_statistical_tests(laid, np.arange(len(laid)),
                                      series_starts=np.repeat(firsts, lengths), **options)
    walked = together.all_tests()
    compared = 0
    for first, frame in zip(firsts, frames, strict=True):
        alone = walk_statistical_tests(frame, np.arange(len(frame)), **options).all_tests()
        for position, reference in enumerate(alone):
            ours = walked[first + position]
            assert [t.metric for t in ours] == [t.metric for t in reference], position
            for mine, theirs in zip(ours, reference, strict=True):
                assert _differences(mine, theirs) == [], (first, position, theirs.metric)
                compared += 1
    assert compared > 1000
