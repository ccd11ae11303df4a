"""The statistical tests of every day of one entity at once: the walk-forward, vectorised.

:func:`~adsentinel.detect.statistical.run_statistical_tests` judges one day against the days
before it. A chart needs that for every day of an entity, and re-running it day by day costs a
few milliseconds a day. Here all days are judged at once, with numpy operations over a matrix
whose rows are the judged days and whose columns are the days of each one's history window
(right-aligned: the last column is the day before; days outside the window are NaN, which every
robust helper ignores, as the per-day tests ignore days they were not given).

Same gating (:func:`judged_days`: enough history with delivery, some delivery on the day), same
baselines, expected values, bounds and z as the per-day tests on complete days, with or without
the account's common move of each judged day and of the days a rate test pools with it (what
``run_statistical_tests`` takes as ``common_move`` and ``earlier_common_moves``);
``tests/detect/test_statistical_walk.py`` holds the two equal over varied histories and moves.
The per-day tests stay the reference. A day read part-way through (today's row at some hour)
is judged as the per-day tests judge it when its share of the day's delivery is given
(``day_fractions``), and several entities' frames laid end to end are walked in one call, each
row within its own entity (``series_starts``): the hourly cycle's tests of every judged
entity-day go through here (:mod:`~adsentinel.detect.account_walk`).
Bounds the per-day count and rate tests skip far inside the threshold (a quantile search they
do not need to decide) are computed too when ``all_bounds`` is asked, with the same
negative-binomial interval, so a chart can draw a continuous band.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from adsentinel.detect.features import COUNT_COLUMNS
from adsentinel.detect.statistical import (
    _BOUNDS_FROM,
    _MAX_Z,
    _MIN_LOG_SCALE,
    _MIN_OVERDISPERSION,
    FREQUENCY_DEFINITION,
    MAD_TO_SD,
    MAX_POOLED_DAYS,
    RATE_DEFINITIONS,
    MetricTest,
    nb_intervals,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Days of a rate's dispersion window (``rate_metric_test``'s default).
_DISPERSION_WINDOW = 28
#: Weekday effects are deviations from a centred median of this many days.
_WEEKDAY_WINDOW = 7
#: Least history (days with a value) a volume test needs, and least residuals.
_MIN_VOLUME_DAYS, _MIN_RESIDUALS = 7, 5


@dataclass(frozen=True)
class MetricWalk:
    """One metric's test on each walked day (arrays of shape ``(n_walked,)``).

    Values are NaN where ``tested`` is False (the day was not judged, or the metric had no
    baseline). ``pooled_days`` is 1 except for rate tests that pooled the last days
    (``nb_rate_<days>d``); ``volume`` holds, per name, what :attr:`MetricTest.volume` holds.
    """

    metric: str
    detector: str
    tested: Bools
    actual: Floats
    expected: Floats
    lower: Floats
    upper: Floats
    z: Floats
    pooled_days: Ints
    volume: dict[str, Floats] = field(default_factory=dict)

    def tests(self) -> list[MetricTest | None]:
        """Per walked day, the :class:`MetricTest` the per-day test returns (``None``: not
        tested), converted from the arrays in one pass."""
        tested = self.tested.tolist()
        days = self.pooled_days.tolist()
        values = [a.tolist() for a in (self.actual, self.expected, self.lower, self.upper,
                                        self.z)]
        volumes = {name: array.tolist() for name, array in self.volume.items()}
        return [
            MetricTest(
                metric=self.metric,
                detector=self.detector if days[i] == 1 else f"{self.detector}_{days[i]}d",
                actual=values[0][i], expected=values[1][i], lower=values[2][i],
                upper=values[3][i], z=values[4][i],
                volume={name: array[i] for name, array in volumes.items()},
            ) if tested[i] else None
            for i in range(len(tested))
        ]


@dataclass(frozen=True)
class StatisticalWalk:
    """Every metric's tests on the walked days ``positions`` (rows of the daily frame);
    ``judged``: whether detection judges each of them at all (:func:`judged_days`)."""

    positions: Ints
    judged: Bools
    metrics: dict[str, MetricWalk]

    def all_tests(self) -> list[list[MetricTest]]:
        """Per walked day, its tests in :func:`run_statistical_tests`' order (empty: the day
        was not judged)."""
        per_metric = [walk.tests() for walk in self.metrics.values()]
        return [[test for test in day if test is not None] for day in zip(*per_metric,
                                                                            strict=True)]


def judged_days(impressions: Floats, spend: Floats, *, min_history_days: int,
                history_days: int, require_delivery: bool = True) -> Bools:
    """Which rows of a daily frame detection judges, shape ``(n_days,)``.

    As :func:`~adsentinel.detect.anomaly_detector.judges_day`: at least ``min_history_days``
    days with impressions in the ``history_days`` before the day, and (``require_delivery``)
    some delivery on the day.
    """
    rows = np.arange(impressions.size)
    return _judged_rows(impressions, spend, rows, np.maximum(rows - history_days, 0),
                        min_history_days=min_history_days, require_delivery=require_delivery)


def _judged_rows(impressions: Floats, spend: Floats, rows: Ints, starts: Ints, *,
                 min_history_days: int, require_delivery: bool) -> Bools:
    """:func:`judged_days` of ``rows``, each with its history from ``starts`` on."""
    delivered_before = np.concatenate([[0], np.cumsum(impressions > 0)])
    enough = delivered_before[rows] - delivered_before[starts] >= min_history_days
    if not require_delivery:
        return np.asarray(enough, dtype=bool)
    delivering = ~((spend[rows] <= 0) & (impressions[rows] <= 0))
    return np.asarray(enough & delivering, dtype=bool)


def walk_statistical_tests(
    daily: pd.DataFrame,
    positions: npt.ArrayLike,
    *,
    z_threshold: float,
    iqr_multiplier: float,
    min_history_days: int,
    history_days: int = 90,
    level_window: int = 7,
    rate_window: int = 14,
    max_pooled_days: int = MAX_POOLED_DAYS,
    all_bounds: bool = False,
    common_moves: Mapping[str, npt.ArrayLike] | None = None,
    require_delivery: bool = True,
    day_fractions: npt.ArrayLike | None = None,
    series_starts: npt.ArrayLike | None = None,
) -> StatisticalWalk:
    """The statistical tests of the rows ``positions`` of ``daily``, each against the
    ``history_days`` rows before it, all at once.

    Parameters
    ----------
    daily : DataFrame, shape (n_days, ...)
        :func:`~adsentinel.detect.daily_table.prepare_daily_frame` output: one row per
        calendar day, columns ``date`` and :data:`~adsentinel.detect.features.COUNT_COLUMNS`.
    positions : array of int, shape (n_walked,)
        Rows to judge.
    z_threshold, iqr_multiplier, min_history_days, history_days, level_window, rate_window,
    max_pooled_days
        As :class:`~adsentinel.detect.anomaly_detector.AnomalyDetector` and
        :func:`~adsentinel.detect.statistical.run_statistical_tests` take them.
    all_bounds : bool
        Also compute the count and rate bounds the per-day tests leave NaN far inside the
        threshold (a chart's band).
    common_moves : mapping of str to array of float, shape (n_walked, n_lags), optional
        Per metric, the account's common move on each walked day (column 0: what
        ``run_statistical_tests`` takes as ``common_move[metric]``) and on the days before it
        (column ``k``: ``earlier_common_moves[k - 1][metric]``); missing metrics and columns
        are 1 (no move). :func:`lagged_common_moves` builds it from one factor per row.
    require_delivery : bool
        Judge only days with some delivery (the detector's gate); ``False`` keeps every day
        with enough history, as a campaign's tests for its account's common move do.
    day_fractions : array of float, shape (n_walked,), optional
        Each walked day's share of a full day's delivery expected by the hour its row was read
        (``run_statistical_tests``' ``day_fraction``; default 1, complete days): volumes are
        judged against their history scaled by it, rates unscaled, frequency only on complete
        days.
    series_starts : array of int, shape (n_walked,), optional
        The first row of each walked row's entity, when ``daily`` holds several entities' frames
        laid end to end (each one row per calendar day): no history window, gate or pooled day
        reaches before it. Default 0, one entity.

    Returns
    -------
    StatisticalWalk
        Per metric, what ``run_statistical_tests`` returns for each judged day (complete days).
    """
    rows = np.asarray(positions, dtype=np.int64)
    columns = {c: daily[c].to_numpy(dtype=float) for c in COUNT_COLUMNS}
    series = (np.zeros(rows.size, dtype=np.int64) if series_starts is None
              else np.asarray(series_starts, dtype=np.int64).reshape(rows.size))
    starts = np.maximum(rows - history_days, series)
    judged = _judged_rows(columns["impressions"], columns["spend"], rows, starts,
                          min_history_days=min_history_days, require_delivery=require_delivery)
    day_numbers = daily["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)[rows]
    options = _WalkOptions(z_threshold, iqr_multiplier, level_window, rate_window,
                           max_pooled_days, all_bounds)
    most_days = max(max_pooled_days, 1)
    factors = {metric: _metric_factors(common_moves or {}, metric, rows.size, most_days)
               for metric in (*VOLUME_METRICS, *RATE_DEFINITIONS, *FREQUENCY_DEFINITION)}
    fractions = (np.ones(rows.size) if day_fractions is None
                 else np.asarray(day_fractions, dtype=float).reshape(rows.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        metrics = _volume_walks(columns, rows, starts, day_numbers, options, factors,
                                fractions)
        windows = _rate_windows(columns, rows, starts, options)
        for metric in RATE_DEFINITIONS | FREQUENCY_DEFINITION:
            metrics[metric] = _rate_walk(metric, windows, columns, rows, rows - starts, options,
                                         factors[metric])
    # reach does not add up over the hours of a day: frequency is judged on complete days
    complete = fractions >= 1.0
    done = {metric: _only_judged(walk, judged & complete if metric in FREQUENCY_DEFINITION
                                 else judged)
            for metric, walk in metrics.items()}
    return StatisticalWalk(positions=rows, judged=judged, metrics=done)


@dataclass(frozen=True)
class _WalkOptions:
    z_threshold: float
    iqr_multiplier: float
    level_window: int
    rate_window: int
    max_pooled_days: int
    all_bounds: bool


#: The volume metrics, in :func:`run_statistical_tests`' order.
VOLUME_METRICS = ("spend", "impressions", "leads")


def lagged_common_moves(by_row: Mapping[str, npt.ArrayLike], positions: npt.ArrayLike,
                        days: int = MAX_POOLED_DAYS) -> dict[str, Floats]:
    """``common_moves`` for :func:`walk_statistical_tests` from one factor per row of the daily
    frame (per metric, shape ``(n_days,)``): each walked row's own factor and those of the
    ``days - 1`` rows before it (1 before the first row), shape ``(n_walked, days)``."""
    rows = np.asarray(positions, dtype=np.int64)
    lagged = rows[:, None] - np.arange(days)[None, :]
    out: dict[str, Floats] = {}
    for metric, values in by_row.items():
        factors = np.asarray(values, dtype=float)
        out[metric] = np.where(lagged >= 0, factors[np.maximum(lagged, 0)], 1.0)
    return out


def _metric_factors(common_moves: Mapping[str, npt.ArrayLike], metric: str, walked: int,
                    most_days: int) -> Floats:
    """One metric's common moves, shape ``(walked, most_days)``, 1 where none was given."""
    factors = np.ones((walked, most_days))
    if metric in common_moves and walked:
        given = np.asarray(common_moves[metric], dtype=float).reshape(walked, -1)
        known = min(given.shape[1], most_days)
        factors[:, :known] = given[:, :known]
    return factors


def _rate_windows(columns: dict[str, Floats], rows: Ints, starts: Ints,
                  options: _WalkOptions) -> dict[str, Floats]:
    """Per count column, the history windows every rate test needs, shape ``(most_days,
    n_walked, width)``: row ``d - 1`` ends before the first of ``d`` pooled days and starts no
    earlier than the walked day's history."""
    most_days = max(options.max_pooled_days, 1)
    ends = (rows[None, :] - np.arange(most_days)[:, None]).reshape(-1)
    width = max(options.rate_window, _DISPERSION_WINDOW, most_days - 1)
    return {column: _windows_before(values, ends, np.tile(starts, most_days), width)
            .reshape(most_days, rows.size, width) for column, values in columns.items()}


def _only_judged(walk: MetricWalk, judged: Bools) -> MetricWalk:
    tested = walk.tested & judged

    def kept(values: Floats) -> Floats:
        return np.where(tested, values, np.nan)

    return MetricWalk(
        metric=walk.metric, detector=walk.detector, tested=tested, actual=kept(walk.actual),
        expected=kept(walk.expected), lower=kept(walk.lower), upper=kept(walk.upper),
        z=kept(walk.z), pooled_days=walk.pooled_days,
        volume={name: kept(values) for name, values in walk.volume.items()},
    )


# --- windows and row-wise robust statistics ---------------------------------------------------


def _windows_before(values: Floats, ends: Ints, starts: Ints, width: int) -> Floats:
    """Shape ``(len(ends), width)``: row ``i`` holds ``values[ends[i] - width : ends[i]]``,
    NaN before ``starts[i]`` (and before the first day)."""
    ends = np.maximum(ends, 0)  # a pooled test before the first day has no window at all
    padded = np.concatenate([np.full(width, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)[ends]
    first_index = ends[:, None] - width + np.arange(width)[None, :]
    return np.where(first_index >= starts[:, None], windows, np.nan)


def _pick_last(values: Floats, index: Ints) -> Floats:
    """``values[..., index[...]]``: one entry of the last axis per row (``index`` has the
    shape of ``values`` without its last axis)."""
    width = values.shape[-1]
    flat = values.reshape(-1, width)
    return np.asarray(flat[np.arange(flat.shape[0]), index.reshape(-1)].reshape(index.shape))


def _row_medians(values: Floats, min_count: int = 1, empty: float = np.nan) -> Floats:
    """Median of the finite values along the last axis (``empty`` with fewer than
    ``min_count``); for each row the same as ``statistical._median`` of its finite values."""
    ordered = np.sort(values, axis=-1)  # NaN sort last: the first `counts` are the values
    counts = np.isfinite(ordered).sum(axis=-1)
    low = _pick_last(ordered, np.maximum(counts - 1, 0) // 2)
    high = _pick_last(ordered, counts // 2)
    return np.where(counts >= min_count, 0.5 * (low + high), empty)


def _row_percentiles(values: Floats, quantile: float) -> Floats:
    """``np.percentile(row[finite], 100 * quantile)`` of each row (numpy's linear method)."""
    ordered = np.sort(values, axis=-1)
    counts = np.isfinite(ordered).sum(axis=-1)
    virtual = (counts - 1) * quantile
    below = np.floor(virtual)
    gamma = virtual - below
    low_index = np.maximum(below.astype(np.int64), 0)
    low = _pick_last(ordered, low_index)
    high = _pick_last(ordered, np.minimum(low_index + 1, np.maximum(counts - 1, 0)))
    step = high - low  # numpy's _lerp, so that the result is the same to the last bit
    mixed = np.where(gamma >= 0.5, high - step * (1 - gamma), low + step * gamma)
    return np.where(counts > 0, mixed, np.nan)


def _row_robust_scales(values: Floats) -> Floats:
    """:func:`~adsentinel.detect.statistical.robust_scale` of each row (NaN under 3 values)."""
    centre = _row_medians(values)
    spread = MAD_TO_SD * _row_medians(np.abs(values - centre[..., None]))
    return np.where(np.isfinite(values).sum(axis=-1) >= 3, spread, np.nan)


def _row_overdispersions(counts: Floats, means: Floats) -> Floats:
    """:func:`~adsentinel.detect.statistical.estimate_overdispersion` of each row."""
    ok = np.isfinite(counts) & np.isfinite(means) & (means > 0)
    log_ratio = np.where(ok, np.log((counts + 0.5) / (means + 0.5)), np.nan)
    poisson_share = _row_medians(np.where(ok, 1.0 / (means + 0.5), np.nan))
    found = np.maximum(_row_robust_scales(log_ratio) ** 2 - poisson_share, _MIN_OVERDISPERSION)
    return np.where(ok.sum(axis=-1) >= 3, found, 0.25)


def _sliding_medians(values: Floats, before: int, after: int, width: int,
                     min_count: int) -> Floats:
    """Row by row, the median of every ``width`` consecutive columns of ``values`` padded with
    ``before`` NaN columns in front and ``after`` behind (``statistical._rolling_nanmedian``
    of each row)."""
    rows = values.shape[0]
    padded = np.concatenate(
        [np.full((rows, before), np.nan), values, np.full((rows, after), np.nan)], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)
    return _row_medians(windows, min_count)


# --- volumes (spend, impressions, leads) ------------------------------------------------------


def _weekday_effects(log_history: Floats, weekdays: Ints) -> Floats:
    """:func:`~adsentinel.detect.statistical.weekday_effects` of each row, shape ``(rows, 7)``.

    ``weekdays`` (same shape) must run day by day along each row, as history windows do.
    """
    half = _WEEKDAY_WINDOW // 2
    centred = _sliding_medians(log_history, half, _WEEKDAY_WINDOW - 1 - half, _WEEKDAY_WINDOW,
                               half + 1)
    deviation = log_history - centred
    # Shift each row to start on a Monday and fold it into weeks: axis 1 is then the weekday.
    rows, width = deviation.shape
    weeks = -(-(width + 6) // 7)
    by_week = np.full((rows, weeks * 7), np.nan)
    by_week[np.arange(rows)[:, None], weekdays[:, :1] + np.arange(width)[None, :]] = deviation
    by_weekday = by_week.reshape(rows, weeks, 7).transpose(0, 2, 1)
    effects = _row_medians(by_weekday, min_count=2, empty=0.0)
    return np.asarray(effects - effects.mean(axis=1, keepdims=True), dtype=float)


def _seasonal_forecasts(log_history: Floats, weekdays: Ints, target_weekdays: Ints,
                        level_window: int) -> tuple[Floats, Floats]:
    """:func:`~adsentinel.detect.statistical.seasonal_baseline` of each row: the target's
    expected log, shape ``(rows,)``, and the history's one-step forecasts, ``(rows, width)``."""
    effects = _weekday_effects(log_history, weekdays)
    history_effects = effects[np.arange(effects.shape[0])[:, None], weekdays]
    adjusted = log_history - history_effects
    # entry j: the median of the level_window days before day j; the last entry, the target's
    levels = _sliding_medians(adjusted, level_window, 0, level_window, max(2, level_window // 2))
    target_effects = effects[np.arange(effects.shape[0]), target_weekdays]
    return levels[:, -1] + target_effects, levels[:, :-1] + history_effects


def _volume_walks(columns: dict[str, Floats], rows: Ints, starts: Ints, day_numbers: Ints,
                  options: _WalkOptions, factors: Mapping[str, Floats],
                  fractions: Floats) -> dict[str, MetricWalk]:
    """The spend test and the impressions and leads count tests of every walked day (its
    calendar day: ``day_numbers``, days since 1970-01-01), each against its history scaled by
    the day's expected share of delivery (``fractions``)."""
    width = int(np.max(rows - starts, initial=1))
    # A day without any delivery is a pause: volumes skip it (run_statistical_tests' rule).
    paused = (columns["spend"] <= 0) & (columns["impressions"] <= 0)
    # one row per calendar day: the window's columns are the days before, in order
    window_days = day_numbers[:, None] - width + np.arange(width)[None, :]
    weekdays = ((window_days + 3) % 7).astype(np.int64)  # 1970-01-01: a Thursday
    target_weekdays = ((day_numbers + 3) % 7).astype(np.int64)
    walks: dict[str, MetricWalk] = {}
    for metric in VOLUME_METRICS:
        history = _windows_before(np.where(paused, np.nan, columns[metric]), rows, starts,
                                  width) * fractions[:, None]
        actual = columns[metric][rows]
        today_factor = factors[metric][:, 0]
        if metric == "spend":
            walks[metric] = _spend_walk(history, weekdays, target_weekdays, actual, options,
                                        today_factor)
        else:
            walks[metric] = _count_walk(metric, history, weekdays, target_weekdays, actual,
                                        options, today_factor)
    return walks


def _spend_walk(history: Floats, weekdays: Ints, target_weekdays: Ints, actual: Floats,
                options: _WalkOptions, common_factor: Floats) -> MetricWalk:
    """:func:`~adsentinel.detect.statistical.log_metric_test` (offset 1) of each row, its
    expected value multiplied by the row's ``common_factor``."""
    threshold = options.z_threshold
    log_history = np.log(history + 1.0)
    baseline_log, forecasts = _seasonal_forecasts(log_history, weekdays, target_weekdays,
                                                  options.level_window)
    expected_log = baseline_log + np.log(common_factor)  # + 0.0 where there is no move
    residuals = log_history - forecasts
    tested = ((np.isfinite(history).sum(axis=1) >= _MIN_VOLUME_DAYS) & np.isfinite(actual)
              & np.isfinite(baseline_log)
              & (np.isfinite(residuals).sum(axis=1) >= _MIN_RESIDUALS))
    scale = np.maximum(_row_robust_scales(residuals), _MIN_LOG_SCALE)
    q1, q3 = _row_percentiles(residuals, 0.25), _row_percentiles(residuals, 0.75)
    iqr = np.maximum(q3 - q1, _MIN_LOG_SCALE)
    fence_low = q1 - options.iqr_multiplier * iqr
    fence_high = q3 + options.iqr_multiplier * iqr
    residual = np.log(actual + 1.0) - expected_log
    z = np.clip(residual / scale, -_MAX_Z, _MAX_Z)
    inside = (fence_low <= residual) & (residual <= fence_high)
    z = np.where(inside, np.clip(z, -0.99 * threshold, 0.99 * threshold), z)
    low_log = expected_log + np.maximum(-threshold * scale, fence_low)
    high_log = expected_log + np.minimum(threshold * scale, fence_high)
    return MetricWalk(
        metric="spend", detector="robust_z+iqr", tested=tested, actual=actual,
        expected=np.maximum(np.exp(expected_log) - 1.0, 0.0),
        lower=np.maximum(np.exp(low_log) - 1.0, 0.0), upper=np.exp(high_log) - 1.0, z=z,
        pooled_days=np.ones(actual.size, dtype=np.int64),
    )


def _count_walk(metric: str, history: Floats, weekdays: Ints, target_weekdays: Ints,
                actual: Floats, options: _WalkOptions, common_factor: Floats) -> MetricWalk:
    """:func:`~adsentinel.detect.statistical.count_metric_test` of each row, its expected
    count multiplied by the row's ``common_factor``."""
    expected_log, forecasts = _seasonal_forecasts(np.log1p(history), weekdays, target_weekdays,
                                                  options.level_window)
    tested = ((np.isfinite(history).sum(axis=1) >= _MIN_VOLUME_DAYS) & np.isfinite(actual)
              & np.isfinite(expected_log))
    expected = np.expm1(expected_log) * common_factor
    overdispersion = _row_overdispersions(history, np.expm1(forecasts))
    z = nb_signed_z_array(actual, expected, overdispersion)
    lower, upper = _gated_intervals(expected, overdispersion, z, tested, options)
    return MetricWalk(
        metric=metric, detector="nb_count", tested=tested, actual=actual, expected=expected,
        lower=lower, upper=upper, z=z, pooled_days=np.ones(actual.size, dtype=np.int64),
        volume={"overdispersion": overdispersion},
    )


def _gated_intervals(means: Floats, overdispersions: Floats, z: Floats, tested: Bools,
                     options: _WalkOptions) -> tuple[Floats, Floats]:
    """Negative-binomial bounds where the per-day tests compute them (``|z|`` near or beyond
    the threshold), or on every tested day with ``all_bounds``; NaN elsewhere."""
    wanted = tested & (options.all_bounds | (np.abs(z) >= _BOUNDS_FROM * options.z_threshold))
    lower, upper = np.full(z.size, np.nan), np.full(z.size, np.nan)
    if wanted.any():
        lower[wanted], upper[wanted] = nb_intervals(
            means[wanted], overdispersions[wanted], options.z_threshold)
    return lower, upper


# --- rates (CTR, conversion rate, CPC, CPM, CPL, frequency) -----------------------------------


def _pooled_rates(counts: Floats, exposures: Floats, z_threshold: float) -> Floats:
    """:func:`~adsentinel.detect.statistical.pooled_rate` of each row (NaN: no rate)."""
    keep = np.isfinite(counts) & np.isfinite(exposures) & (exposures > 0)
    kept_exposure = np.where(keep, exposures, 0.0).sum(axis=1)
    has_rate = keep.any(axis=1) & (kept_exposure > 0)
    rate = np.where(keep, counts, 0.0).sum(axis=1) / np.where(has_rate, kept_exposure, 1.0)
    means = rate[:, None] * exposures
    phi = _row_overdispersions(np.where(keep, counts, np.nan), np.where(keep, means, np.nan))
    z = (counts - means) / np.sqrt(means + phi[:, None] * means**2 + 1e-9)
    trimmed = keep & (np.abs(z) < z_threshold)
    trimmed_exposure = np.where(trimmed, exposures, 0.0).sum(axis=1)
    use_trimmed = ((trimmed.sum(axis=1) >= np.maximum(3, keep.sum(axis=1) // 2))
                   & (trimmed_exposure > 0))
    trimmed_rate = (np.where(trimmed, counts, 0.0).sum(axis=1)
                    / np.where(use_trimmed, trimmed_exposure, 1.0))
    return np.where(has_rate, np.where(use_trimmed, trimmed_rate, rate), np.nan)


@dataclass(frozen=True)
class _RateCandidates:
    """The rate tests of every walked day: today alone (row 0) and pooled with the ``d - 1``
    days before it (row ``d - 1``), arrays of shape ``(most_days, n_walked)``."""

    count: Floats
    exposure: Floats
    rate: Floats
    overdispersion: Floats
    z: Floats  # on the count scale, before any Bonferroni correction
    tested: Bools


def _pooled_observations(today: Floats, before: Floats, most_days: int) -> Floats:
    """Today's value plus the sum of the ``d - 1`` days before it, for ``d`` = 1..most_days,
    shape ``(most_days, n_walked)`` (``before``: each walked day's window, last column the day
    before). Summed as ``_strongest_pooled`` sums: the earlier days first, then today."""
    width = before.shape[1]
    pooled = [today] + [today + before[:, width - (days - 1):].sum(axis=1)
                        for days in range(2, most_days + 1)]
    return np.stack(pooled)


def _rate_baselines(count_windows: Floats, exposure_windows: Floats,
                    options: _WalkOptions) -> tuple[Floats, Floats]:
    """The baseline rate (NaN: none) and overdispersion of each row of history windows
    (shape ``(rows, width)``, last column the day before), as ``rate_metric_test`` makes them."""
    rate = _pooled_rates(count_windows[:, -options.rate_window:],
                         exposure_windows[:, -options.rate_window:], options.z_threshold)
    overdispersion = _row_overdispersions(
        count_windows[:, -_DISPERSION_WINDOW:],
        rate[:, None] * exposure_windows[:, -_DISPERSION_WINDOW:])
    return rate, overdispersion


def _pooled_common_factors(today_exposure: Floats, exposures_before: Floats, daily: Floats, *,
                           inverse: bool) -> Floats:
    """:func:`~adsentinel.detect.statistical.pooled_common_factor` of every walked day and
    pooled run, shape ``(most_days, n_walked)``: row ``d - 1`` weighs the common moves of the
    ``d`` pooled days (``daily``, shape ``(n_walked, most_days)``, today first) by their
    exposure (``exposures_before``: each walked day's window, last column the day before)."""
    most_days = daily.shape[1]
    pooled = [daily[:, 0]]
    for days in range(2, most_days + 1):
        # today first, then the days before it, contiguous per day: summed as numpy sums a list
        weights = np.concatenate(
            [today_exposure[:, None], exposures_before[:, :-days:-1]], axis=1)
        factors = daily[:, :days]
        total = weights.sum(axis=1)
        if inverse:
            factor = total / (weights / factors).sum(axis=1)
        else:
            factor = (weights * factors).sum(axis=1) / total
        pooled.append(np.where(total > 0, factor, daily[:, 0]))
    return np.stack(pooled)


def _with_common_move(rate: Floats, factor: Floats, *, inverse: bool) -> Floats:
    """The baseline rate the account's common move expects (a cost's factor divides it)."""
    return rate / factor if inverse else rate * factor


def _rate_candidates(count_windows: Floats, exposure_windows: Floats, today_count: Floats,
                     today_exposure: Floats, history_length: Ints, common_factors: Floats,
                     inverse: bool, options: _WalkOptions) -> _RateCandidates:
    """:func:`~adsentinel.detect.statistical.rate_metric_test` of the last ``d`` days pooled
    against the days before them, for every walked day and ``d`` at once.

    ``count_windows`` and ``exposure_windows``, shape ``(most_days, n_walked, width)``: row
    ``d - 1`` holds the days before the first pooled day; ``common_factors``, shape
    ``(n_walked, most_days)``: each walked day's common move and those of the days before it.
    Pooled windows are computed only where ``_strongest_pooled`` tries them (today alone at
    ``|z| >= 1``, history long enough); elsewhere they are untested.
    """
    most_days, walked, width = count_windows.shape
    count = _pooled_observations(today_count, count_windows[0], most_days)
    exposure = _pooled_observations(today_exposure, exposure_windows[0], most_days)
    factor = _pooled_common_factors(today_exposure, exposure_windows[0], common_factors,
                                    inverse=inverse)
    rate = np.full(most_days * walked, np.nan)
    overdispersion = np.full(most_days * walked, np.nan)
    rate[:walked], overdispersion[:walked] = _rate_baselines(count_windows[0],
                                                             exposure_windows[0], options)
    one_day = nb_signed_z_array(
        count[0], np.where((exposure[0] > 0) & (rate[:walked] > 0),
                           _with_common_move(rate[:walked], factor[0], inverse=inverse)
                           * exposure[0], np.nan), overdispersion[:walked])
    tried = ((np.abs(one_day) >= 1.0)[None, :]
             & (history_length[None, :] >= options.rate_window + np.arange(most_days)[:, None]))
    tried[0] = False
    pooled = np.flatnonzero(tried.reshape(-1))
    if pooled.size:
        rate[pooled], overdispersion[pooled] = _rate_baselines(
            count_windows.reshape(-1, width)[pooled], exposure_windows.reshape(-1, width)[pooled],
            options)
    rate, overdispersion = rate.reshape(most_days, walked), overdispersion.reshape(most_days,
                                                                                   walked)
    tested = (exposure > 0) & np.isfinite(rate) & (rate > 0)  # before the common move
    rate = _with_common_move(rate, factor, inverse=inverse)
    z = np.concatenate([one_day[None, :], nb_signed_z_array(
        count[1:], np.where(tested[1:], rate[1:] * exposure[1:], np.nan), overdispersion[1:])])
    return _RateCandidates(count, exposure, rate, overdispersion, z, tested)


def _strongest_candidates(candidates: _RateCandidates, history_length: Ints,
                          rate_window: int) -> tuple[Ints, Floats]:
    """Index of the candidate each day reports and its z, as ``_strongest_pooled`` picks.

    A pooled window is tried when today alone points the same way (``|z| >= 1``) and the
    history is long enough; it wins when its Bonferroni-corrected z is stronger.
    """
    one_day = candidates.z[0]
    chosen = np.zeros(one_day.size, dtype=np.int64)
    best_z = one_day.copy()
    tries = candidates.z.shape[0] - 1
    for index in range(1, candidates.z.shape[0]):
        pooled = candidates.z[index]
        allowed = ((np.abs(one_day) >= 1.0) & candidates.tested[index]
                   & (history_length >= rate_window + index)
                   & (np.sign(pooled) == np.sign(one_day)))
        corrected = bonferroni_z_array(pooled, tries)
        stronger = allowed & (np.abs(corrected) > np.abs(best_z))
        best_z = np.where(stronger, corrected, best_z)
        chosen = np.where(stronger, index, chosen)
    return chosen, best_z


def _rate_walk(metric: str, windows: dict[str, Floats], columns: dict[str, Floats],
               rows: Ints, history_length: Ints, options: _WalkOptions,
               common_factors: Floats) -> MetricWalk:
    """A rate's test (with pooling, except frequency) of every walked day.

    ``windows`` maps each count column to its history windows, shape ``(most_days, n_walked,
    width)``, and ``common_factors`` holds the metric's common moves, shape ``(n_walked,
    most_days)``, as :func:`_rate_candidates` takes them.
    """
    count_col, exposure_col, inverse, factor = (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[metric]
    most_days = 1 if metric in FREQUENCY_DEFINITION else max(options.max_pooled_days, 1)
    candidates = _rate_candidates(windows[count_col][:most_days],
                                  windows[exposure_col][:most_days], columns[count_col][rows],
                                  columns[exposure_col][rows], history_length,
                                  common_factors[:, :most_days], inverse, options)
    chosen, z = _strongest_candidates(candidates, history_length, options.rate_window)
    walked = np.arange(rows.size)
    count, exposure = candidates.count[chosen, walked], candidates.exposure[chosen, walked]
    rate, phi = candidates.rate[chosen, walked], candidates.overdispersion[chosen, walked]
    tested = candidates.tested[0]
    if metric in FREQUENCY_DEFINITION:
        tested = tested & (count > 0)  # reach does not add up over days: tested when known
    expected_count = rate * exposure
    low, high = _gated_intervals(expected_count, phi, candidates.z[chosen, walked], tested,
                                 options)
    if inverse:  # metric = factor * exposure / count: few counts = high cost
        z, actual, expected = -z, factor * exposure / np.maximum(count, 1.0), factor / rate
        lower = np.where(high > 0, factor * exposure / high, np.nan)
        upper = np.where(low > 0, factor * exposure / low, np.nan)
    else:
        actual, expected = factor * count / exposure, factor * rate
        lower, upper = factor * low / exposure, factor * high / exposure
    return MetricWalk(
        metric=metric, detector="nb_rate", tested=tested, actual=actual, expected=expected,
        lower=lower, upper=upper, z=z, pooled_days=chosen + 1,
        volume={count_col: count, exposure_col: exposure, f"expected_{count_col}": expected_count,
                "overdispersion": phi},
    )


# --- vectorised tails -------------------------------------------------------------------------


def nb_signed_z_array(count: Floats, mean: Floats, overdispersion: Floats) -> Floats:
    """:func:`~adsentinel.detect.statistical.nb_signed_z` of arrays of one shape (0 where the
    mean is not a positive number), each tail computed only where it is needed."""
    z = np.zeros(np.shape(mean))
    usable = np.isfinite(mean) & (mean > 0)
    m, k = mean[usable], np.round(count[usable])
    n = 1.0 / np.maximum(overdispersion[usable], 1e-9)
    p = n / (n + m)
    log_pmf = (
        special.gammaln(k + n) - special.gammaln(n) - special.gammaln(k + 1)
        + n * (np.log(n) - np.log(n + m)) + k * (np.log(m) - np.log(n + m))
    )
    pmf = np.exp(log_pmf)
    above = k >= m
    tail = np.empty(m.size)
    tail[above] = special.betaincc(n[above], k[above] + 1, p[above]) + 0.5 * pmf[above]
    below = ~above
    tail[below] = special.betainc(n[below], k[below] + 1, p[below]) - 0.5 * pmf[below]
    tail = np.clip(tail, 1e-300, 0.5)
    z[usable] = np.where(above, 1.0, -1.0) * np.minimum(-special.ndtri(tail), _MAX_Z)
    return z


def bonferroni_z_array(z: Floats, tries: int) -> Floats:
    """``statistical._bonferroni_z`` of an array: the signed z of a one-sided tail
    probability multiplied by ``tries``."""
    tail = np.minimum(special.ndtr(-np.abs(z)) * tries, 0.5)
    return np.asarray(np.sign(z) * -special.ndtri(np.maximum(tail, 1e-300)), dtype=float)


__all__ = ["VOLUME_METRICS", "MetricWalk", "StatisticalWalk", "bonferroni_z_array", "judged_days",
           "lagged_common_moves", "nb_signed_z_array", "walk_statistical_tests"]
