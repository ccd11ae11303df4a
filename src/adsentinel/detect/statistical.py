"""Robust per-metric detectors for one entity's daily history.

Each test looks at one day (the *target*) of one metric against a baseline learnt only from the
days before it, and returns a :class:`MetricTest`: actual, expected, bounds and a signed
z-equivalent (``z > 0``: the metric is above what was expected). Turning ``z`` into a 0-100 score
and a severity is :mod:`adsentinel.detect.calibration`'s job; deciding what to report is
:mod:`adsentinel.detect.anomaly_detector`'s.

Two families of tests:

* **Volumes** (spend, impressions, leads) follow a *level x weekday* baseline on the log scale:
  the level is the median of the last ``level_window`` weekday-adjusted days (a past spike does not
  move a median; a change that persists for more than half the window becomes the new normal), the
  weekday effect is the median deviation of each weekday from a centred weekly median. Spend is
  judged on a robust z (MAD of one-step-ahead residuals) and the IQR fence of those residuals;
  impressions and leads are counts, judged by a negative-binomial tail (Poisson noise plus the
  entity's own extra day-to-day variance), so 2 leads instead of 4 is not news but 20 instead of 400
  is.
* **Rates** (CTR, conversion rate, CPC, CPM, CPL) are tests on a count given its exposure, e.g. CPL
  is "how many leads did this spend buy?": expected leads = spend x baseline leads-per-currency,
  and the negative-binomial tail of the observed leads says how surprising the day is. A CPL on
  3 leads can hardly be significant, one on 300 easily is; 0 leads on a spend that used to buy 20
  is extreme on its own ("spend with zero leads" needs no special case). The baseline rate is the
  pooled rate of the last ``rate_window`` days after dropping days that were themselves outliers.
* **Frequency** (impressions / reach) is a rate too: the people reached given the impressions,
  so a frequency of 14 on 14 impressions is not news.

Every z here is *signed* and *two-sided*; which direction is harmful is :data:`HARMFUL_DIRECTION`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

from adsentinel.detect.features import COUNT_COLUMNS

#: The direction of a move that hurts the advertiser, per metric.
HARMFUL_DIRECTION: dict[str, str] = {
    "spend": "up",
    "impressions": "down",
    "leads": "down",
    "ctr": "down",
    "conversion_rate": "down",
    "cpc": "up",
    "cpm": "up",
    "cpl": "up",
    "frequency": "up",
}

#: Rate metrics as (count, exposure, metric = count/exposure or exposure/count, scale factor).
#: ``inverse`` metrics (costs) go up when the count per unit of exposure goes down.
RATE_DEFINITIONS: dict[str, tuple[str, str, bool, float]] = {
    "ctr": ("clicks", "impressions", False, 1.0),
    "conversion_rate": ("leads", "clicks", False, 1.0),
    "cpc": ("clicks", "spend", True, 1.0),
    "cpm": ("impressions", "spend", True, 1000.0),
    "cpl": ("leads", "spend", True, 1.0),
}

#: Frequency (impressions / reach) as "how many people did these impressions reach": few people
#: for the impressions = high frequency. Kept apart: reach does not add up over days.
FREQUENCY_DEFINITION: dict[str, tuple[str, str, bool, float]] = {
    "frequency": ("reach", "impressions", True, 1.0),
}

MAD_TO_SD = 1.4826
_MIN_LOG_SCALE = 0.05  # a volume never counts as more stable than +-5 % a day
_MIN_OVERDISPERSION = 0.01  # nor a rate as more stable than +-10 % beyond Poisson noise
_MAX_Z = 40.0
_BOUNDS_FROM = 0.8  # NB bounds (a slow quantile search) only near or beyond the threshold


@dataclass(frozen=True)
class MetricTest:
    """The outcome of one detector on one metric and day.

    ``z`` is the signed z-equivalent of the observation's tail probability under the baseline
    (positive: above expected). ``lower``/``upper`` bound the metric's normal range at the
    threshold the test was run with (``nan`` when unbounded, e.g. a CPL with 0 leads allowed,
    and for count tests far inside the threshold, where they are not computed).
    ``volume`` holds the counts the test was made on, for messages.
    """

    metric: str
    detector: str
    actual: float
    expected: float
    lower: float
    upper: float
    z: float
    volume: dict[str, float] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        """``"up"`` or ``"down"``: where the actual value sits relative to the expected one."""
        return "up" if self.z > 0 else "down"

    @property
    def harmful(self) -> bool:
        """True when the move is in the direction that hurts (:data:`HARMFUL_DIRECTION`)."""
        return HARMFUL_DIRECTION.get(self.metric, "up") == self.direction


# --- small robust helpers ---------------------------------------------------------------------


def _median(values: np.ndarray) -> float:
    """Median of a non-empty 1-D array of finite values.

    Equal to ``np.median`` (mean of the two middle values) without its dispatch overhead, which
    dominates on the short series detection works with (tens of values, called ~100 times per
    entity and day).
    """
    ordered = np.sort(values)
    n = ordered.size
    return float(0.5 * (ordered[(n - 1) // 2] + ordered[n // 2]))


def robust_scale(values: np.ndarray) -> float:
    """MAD-based standard deviation of ``values`` (NaN ignored); ``nan`` if fewer than 3."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return float("nan")
    return float(MAD_TO_SD * _median(np.abs(values - _median(values))))


def weekday_effects(log_values: np.ndarray, weekdays: np.ndarray, window: int = 7) -> np.ndarray:
    """Additive weekday effects on the log scale, shape ``(7,)``, indexed by ``date.weekday()``.

    Each day's deviation from the centred ``window``-day median, medianed per weekday. Weekdays
    seen fewer than twice get 0 (no evidence of seasonality yet). The effects are centred so that
    they average to zero.
    """
    values = np.asarray(log_values, dtype=float)
    weekdays = np.asarray(weekdays)
    centred = _rolling_nanmedian(values, window, min_periods=window // 2 + 1, centred=True)
    deviation = values - centred
    effects = np.zeros(7)
    usable = np.isfinite(deviation)
    for day in range(7):
        picked = deviation[usable & (weekdays == day)]
        if picked.size >= 2:
            effects[day] = _median(picked)
    return effects - float(effects.mean())


def _rolling_nanmedian(
    values: np.ndarray, window: int, min_periods: int, centred: bool = False
) -> np.ndarray:
    """Median of each (trailing or centred) ``window`` of ``values``, NaN-aware, shape kept.

    Same result as ``pd.Series(values).rolling(window, min_periods, center).median()``, in one
    vectorised call (a test holds it against pandas).
    """
    n = values.size
    before = window // 2 if centred else window - 1
    after = window - 1 - before
    padded = np.concatenate([np.full(before, np.nan), values, np.full(after, np.nan)])
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, window)[:n], axis=1)
    counts = np.isfinite(windows).sum(axis=1)  # NaN sort last: the first `counts` are the values
    low = np.take_along_axis(windows, np.maximum(counts - 1, 0)[:, None] // 2, axis=1)[:, 0]
    high = np.take_along_axis(windows, (counts // 2)[:, None], axis=1)[:, 0]
    return np.where(counts >= min_periods, 0.5 * (low + high), np.nan)


def level_forecast(adjusted: np.ndarray, window: int) -> np.ndarray:
    """One-step-ahead level: for each index, the median of the ``window`` values before it.

    Shape ``(n + 1,)``: entry ``t`` uses values ``t - window .. t - 1`` only (NaN ignored),
    entry ``n`` is the forecast for the day after the last one. NaN when fewer than half the
    window is available.
    """
    values = np.asarray(adjusted, dtype=float)
    trailing = _rolling_nanmedian(values, window, min_periods=max(2, window // 2))
    return np.concatenate([[np.nan], trailing])


def nb_signed_z(count: float, mean: float, overdispersion: float) -> float:
    """Signed z-equivalent of observing ``count`` under a negative binomial of ``mean``.

    Variance ``mean + overdispersion * mean**2`` (Poisson when ``overdispersion`` is 0). Uses the
    mid-p tail so that discrete counts are not over-penalised; ``0`` when the count sits in the
    middle of the distribution, positive when above, negative when below. (Computed with the
    regularised incomplete beta function, as ``scipy.stats.nbinom`` does, without its overhead;
    a test holds it against ``nbinom``.)
    """
    if not np.isfinite(mean) or mean <= 0:
        return 0.0
    k = float(np.round(count))
    n = 1.0 / max(overdispersion, 1e-9)
    p = n / (n + mean)
    log_pmf = (
        special.gammaln(k + n) - special.gammaln(n) - special.gammaln(k + 1)
        + n * (np.log(n) - np.log(n + mean)) + k * (np.log(mean) - np.log(n + mean))
    )
    pmf = float(np.exp(log_pmf))
    if k >= mean:
        tail = float(special.betaincc(n, k + 1, p)) + 0.5 * pmf  # P(X > k) + pmf / 2
        sign = 1.0
    else:
        tail = float(special.betainc(n, k + 1, p)) - 0.5 * pmf  # P(X <= k) - pmf / 2
        sign = -1.0
    tail = float(np.clip(tail, 1e-300, 0.5))
    return sign * float(min(-special.ndtri(tail), _MAX_Z))


def nb_interval(mean: float, overdispersion: float, z_threshold: float) -> tuple[float, float]:
    """Counts between which a negative binomial of ``mean`` stays, two-sided at ``z_threshold``."""
    if not np.isfinite(mean) or mean <= 0:
        return 0.0, 0.0
    n = 1.0 / max(overdispersion, 1e-9)
    p = n / (n + mean)
    alpha = stats.norm.sf(z_threshold)
    return float(stats.nbinom.ppf(alpha, n, p)), float(stats.nbinom.isf(alpha, n, p))


def nb_intervals(
    means: npt.ArrayLike, overdispersions: npt.ArrayLike, z_threshold: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`nb_interval` of arrays (same shapes), in two scipy calls.

    A chart completes hundreds of intervals at once; one vectorised ``ppf``/``isf`` instead of
    one scalar call each. A test holds it equal to the scalar function.
    """
    mean_values = np.asarray(means, dtype=float)
    n = 1.0 / np.maximum(np.asarray(overdispersions, dtype=float), 1e-9)
    usable = np.isfinite(mean_values) & (mean_values > 0)
    p = n / (n + np.where(usable, mean_values, 1.0))
    alpha = stats.norm.sf(z_threshold)
    low = np.where(usable, stats.nbinom.ppf(alpha, n, p), 0.0)
    high = np.where(usable, stats.nbinom.isf(alpha, n, p), 0.0)
    return low.astype(float), high.astype(float)


def estimate_overdispersion(counts: np.ndarray, means: np.ndarray) -> float:
    """Extra-Poisson relative variance of ``counts`` around ``means`` (robust, floored).

    The squared robust scale of ``log((k + 0.5) / (mu + 0.5))`` minus its Poisson share
    ``1 / (mu + 0.5)``; at least ``_MIN_OVERDISPERSION``.
    """
    counts = np.asarray(counts, dtype=float)
    means = np.asarray(means, dtype=float)
    ok = np.isfinite(counts) & np.isfinite(means) & (means > 0)
    if ok.sum() < 3:
        return 0.25  # no evidence: assume a volatile entity (+-50 %)
    log_ratio = np.log((counts[ok] + 0.5) / (means[ok] + 0.5))
    scale = robust_scale(log_ratio)
    poisson_share = _median(1.0 / (means[ok] + 0.5))
    return float(max(scale**2 - poisson_share, _MIN_OVERDISPERSION))


# --- volume tests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonalBaseline:
    """Level x weekday baseline of one log-series, with one-step-ahead residuals of the history.

    ``expected_log`` is the forecast for the target day; ``residuals`` (history days only) are
    what the same forecast got wrong on each past day.
    """

    expected_log: float
    residuals: np.ndarray
    history_forecasts: np.ndarray


def seasonal_baseline(
    history_log: np.ndarray,
    history_weekdays: np.ndarray,
    target_weekday: int,
    level_window: int = 7,
) -> SeasonalBaseline:
    """Fit the level x weekday baseline on ``history_log`` (shape ``(n,)``) and forecast.

    Weekday effects come from the history only; the level is the median of the last
    ``level_window`` weekday-adjusted values.
    """
    effects = weekday_effects(history_log, history_weekdays)
    adjusted = history_log - effects[history_weekdays]
    levels = level_forecast(adjusted, level_window)
    history_forecasts = levels[:-1] + effects[history_weekdays]
    return SeasonalBaseline(
        expected_log=float(levels[-1] + effects[target_weekday]),
        residuals=history_log - history_forecasts,
        history_forecasts=history_forecasts,
    )


def log_metric_test(
    metric: str,
    history: np.ndarray,
    history_weekdays: np.ndarray,
    actual: float,
    target_weekday: int,
    *,
    z_threshold: float,
    iqr_multiplier: float,
    level_window: int = 7,
    offset: float = 1.0,
    common_factor: float = 1.0,
) -> MetricTest | None:
    """Robust z and IQR test of a continuous positive metric on ``log(value + offset)``.

    ``z`` is the residual divided by the MAD scale of past one-step residuals; a day also has to
    fall outside the IQR fence (``iqr_multiplier``) of those residuals, otherwise ``z`` is shrunk
    to just below ``z_threshold``'s side of zero (the two robust rules must agree). ``None`` when
    the history is too short for a baseline. ``common_factor`` multiplies the expected value (what
    the rest of the account did the same day, see :mod:`adsentinel.detect.common_move`).
    """
    history = np.asarray(history, dtype=float)
    ok = np.isfinite(history)
    if ok.sum() < 7 or not np.isfinite(actual):
        return None
    log_hist = np.log(history + offset)
    base = seasonal_baseline(log_hist, history_weekdays, target_weekday, level_window)
    residuals = base.residuals[np.isfinite(base.residuals)]
    if not np.isfinite(base.expected_log) or residuals.size < 5:
        return None
    if common_factor != 1.0:
        base = replace(base, expected_log=base.expected_log + float(np.log(common_factor)))
    scale = max(robust_scale(residuals), _MIN_LOG_SCALE)
    q1, q3 = np.percentile(residuals, [25, 75])
    iqr = max(q3 - q1, _MIN_LOG_SCALE)
    fence_low, fence_high = q1 - iqr_multiplier * iqr, q3 + iqr_multiplier * iqr
    residual = np.log(actual + offset) - base.expected_log
    z = float(np.clip(residual / scale, -_MAX_Z, _MAX_Z))
    if fence_low <= residual <= fence_high:
        z = float(np.clip(z, -0.99 * z_threshold, 0.99 * z_threshold))
    low_log = base.expected_log + max(-z_threshold * scale, fence_low)
    high_log = base.expected_log + min(z_threshold * scale, fence_high)
    half = np.array([low_log, high_log])
    lower, upper = np.exp(half) - offset
    return MetricTest(
        metric=metric,
        detector="robust_z+iqr",
        actual=float(actual),
        expected=float(max(np.exp(base.expected_log) - offset, 0.0)),
        lower=float(max(lower, 0.0)),
        upper=float(upper),
        z=z,
    )


def count_metric_test(
    metric: str,
    history: np.ndarray,
    history_weekdays: np.ndarray,
    actual: float,
    target_weekday: int,
    *,
    z_threshold: float,
    level_window: int = 7,
    common_factor: float = 1.0,
) -> MetricTest | None:
    """Negative-binomial test of a daily count (impressions, leads) against its seasonal level.

    The expected count comes from the level x weekday baseline of ``log(count + 1)``; the
    overdispersion from how well that baseline predicted the past. ``None`` without a baseline.
    """
    history = np.asarray(history, dtype=float)
    if np.isfinite(history).sum() < 7 or not np.isfinite(actual):
        return None
    log_hist = np.log1p(history)
    base = seasonal_baseline(log_hist, history_weekdays, target_weekday, level_window)
    if not np.isfinite(base.expected_log):
        return None
    expected = float(np.expm1(base.expected_log)) * common_factor
    phi = estimate_overdispersion(history, np.expm1(base.history_forecasts))
    z = nb_signed_z(actual, expected, phi)
    lower, upper = (
        nb_interval(expected, phi, z_threshold)
        if abs(z) >= _BOUNDS_FROM * z_threshold
        else (float("nan"), float("nan"))
    )
    return MetricTest(
        metric=metric,
        detector="nb_count",
        actual=float(actual),
        expected=expected,
        lower=lower,
        upper=upper,
        z=z,
        volume={"overdispersion": phi},
    )


# --- rate tests -------------------------------------------------------------------------------


def pooled_rate(
    counts: np.ndarray, exposures: np.ndarray, z_threshold: float
) -> tuple[float, np.ndarray]:
    """Pooled ``sum(counts) / sum(exposures)`` after dropping days that are outliers to it.

    One trimming pass: days whose own count is beyond ``z_threshold`` standard deviations of a
    negative binomial around the first pooled rate (overdispersion estimated robustly from the
    same days) are dropped, so that a past tracking break does not drag the baseline. Returns
    the rate and the mask of days kept, both over the arrays of shape ``(n_days,)``.
    """
    counts = np.asarray(counts, dtype=float)
    exposures = np.asarray(exposures, dtype=float)
    keep = np.isfinite(counts) & np.isfinite(exposures) & (exposures > 0)
    if not keep.any() or exposures[keep].sum() <= 0:
        return float("nan"), keep
    rate = counts[keep].sum() / exposures[keep].sum()
    means = rate * exposures
    phi = estimate_overdispersion(counts[keep], means[keep])
    z = (counts - means) / np.sqrt(means + phi * means**2 + 1e-9)
    trimmed = keep & (np.abs(z) < z_threshold)
    if trimmed.sum() >= max(3, keep.sum() // 2) and exposures[trimmed].sum() > 0:
        return counts[trimmed].sum() / exposures[trimmed].sum(), trimmed
    return rate, keep


def rate_metric_test(
    metric: str,
    history: dict[str, np.ndarray],
    target: dict[str, float],
    *,
    z_threshold: float,
    rate_window: int = 14,
    dispersion_window: int = 28,
    common_factor: float = 1.0,
) -> MetricTest | None:
    """Test a rate metric (:data:`RATE_DEFINITIONS`) as a count given its exposure.

    ``history`` maps count columns to arrays of shape ``(n_days,)`` (days before the target,
    oldest first), ``target`` maps them to the target day's values. ``None`` when the target
    has no exposure or the history has no baseline rate. ``common_factor`` multiplies the
    expected *metric* (a CPM factor of 1.4 means 1.4x the cost, so fewer impressions per spend).
    """
    count_col, exposure_col, inverse, factor = (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[metric]
    exposure = float(target[exposure_col])
    count = float(target[count_col])
    if exposure <= 0:
        return None
    counts = np.asarray(history[count_col], dtype=float)
    exposures = np.asarray(history[exposure_col], dtype=float)
    rate, _kept = pooled_rate(counts[-rate_window:], exposures[-rate_window:], z_threshold)
    if not np.isfinite(rate) or rate <= 0:
        return None
    phi = estimate_overdispersion(
        counts[-dispersion_window:], rate * exposures[-dispersion_window:]
    )
    rate = rate / common_factor if inverse else rate * common_factor
    expected_count = rate * exposure
    z = nb_signed_z(count, expected_count, phi)
    low_count, high_count = (
        nb_interval(expected_count, phi, z_threshold)
        if abs(z) >= _BOUNDS_FROM * z_threshold
        else (float("nan"), float("nan"))
    )
    if inverse:
        # metric = factor * exposure / count: few counts = high cost.
        z = -z
        actual = factor * exposure / max(count, 1.0)  # 0 counts: report the cost of one
        expected = factor / rate
        lower = factor * exposure / high_count if high_count > 0 else float("nan")
        upper = factor * exposure / low_count if low_count > 0 else float("nan")
    else:
        actual = factor * count / exposure
        expected = factor * rate
        lower = factor * low_count / exposure
        upper = factor * high_count / exposure
    return MetricTest(
        metric=metric,
        detector="nb_rate",
        actual=float(actual),
        expected=float(expected),
        lower=float(lower),
        upper=float(upper),
        z=float(z),
        volume={
            count_col: count,
            exposure_col: exposure,
            f"expected_{count_col}": float(expected_count),
            "overdispersion": phi,
        },
    )


#: Longest run of days a rate test pools (today and the days just before it).
MAX_POOLED_DAYS = 4


def pooled_days(detector: str) -> int:
    """How many days a test's detector name says it pooled (``nb_rate_3d`` -> 3; else 1)."""
    if detector.endswith("d") and detector[-3:-2] == "_" and detector[-2].isdigit():
        return int(detector[-2])
    return 1


def _strongest_pooled(
    one_day: MetricTest | None,
    metric: str,
    columns: dict[str, np.ndarray],
    today: dict[str, float],
    z_threshold: float,
    rate_window: int,
    daily_factors: Sequence[float] = (1.0,),
    max_days: int = MAX_POOLED_DAYS,
) -> MetricTest | None:
    """The rate test over the last 2..``max_days`` days pooled, when it is the stronger evidence.

    Sequential evidence: a break on a small entity (2 leads a day) cannot be significant in one
    day; three days of it can. The pooled days leave the baseline and join the observation. Each
    window's tail probability is multiplied by the number of windows tried (Bonferroni), so that
    looking at several windows does not buy false alarms. Used only when today alone already
    points the same way (``|z| >= 1``), so that an old move is not repeated on a normal day. The
    detector is then ``nb_rate_<days>d``. ``daily_factors`` are the account's common move of
    the metric today and on the days before (today first; missing days: 1): a pooled window is
    judged against each of its days' own common move (:func:`pooled_common_factor`).
    """
    if one_day is None or abs(one_day.z) < 1.0:
        return one_day
    exposure_column = (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[metric][1]
    inverse = (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[metric][2]
    windows = range(2, max_days + 1)
    best = one_day
    for days in windows:
        if columns["spend"].size < rate_window + days - 1:
            break
        before = {c: v[: -(days - 1)] for c, v in columns.items()}
        pooled = {c: today[c] + float(columns[c][-(days - 1):].sum()) for c in today}
        exposures = [today[exposure_column], *columns[exposure_column][-(days - 1):][::-1]]
        factor = pooled_common_factor(exposures, daily_factors, inverse=inverse)
        test = rate_metric_test(metric, before, pooled, z_threshold=z_threshold,
                                rate_window=rate_window, common_factor=factor)
        if test is None or np.sign(test.z) != np.sign(one_day.z):
            continue
        corrected = _bonferroni_z(test.z, len(windows))
        if abs(corrected) > abs(best.z):
            best = replace(test, z=corrected, detector=f"nb_rate_{days}d")
    return best


def pooled_common_factor(exposures: Sequence[float], daily_factors: Sequence[float], *,
                         inverse: bool) -> float:
    """The common move of a rate over pooled days, each day's factor weighted by its exposure.

    ``exposures`` and ``daily_factors`` run from today back (a day without a factor: 1). A rate
    (CTR: clicks per impression) expects ``sum(exposure_d * rate * factor_d)`` counts, so its
    factor is the exposure-weighted mean; a cost (CPM: spend per impression) expects
    ``sum(exposure_d * rate / factor_d)`` counts, so its factor is the weighted harmonic mean.
    """
    weights = np.asarray(exposures, dtype=float)
    factors = np.ones_like(weights)
    known = min(len(daily_factors), len(factors))
    factors[:known] = np.asarray(daily_factors[:known], dtype=float)
    total = float(weights.sum())
    if total <= 0:
        return float(factors[0])
    if inverse:
        return total / float((weights / factors).sum())
    return float((weights * factors).sum()) / total


def _bonferroni_z(z: float, tries: int) -> float:
    """The signed z of a one-sided tail probability multiplied by ``tries``."""
    tail = min(float(special.ndtr(-abs(z))) * tries, 0.5)
    return float(np.sign(z) * -special.ndtri(max(tail, 1e-300)))


def run_statistical_tests(
    history: pd.DataFrame,
    target: pd.Series,
    *,
    z_threshold: float,
    iqr_multiplier: float,
    level_window: int = 7,
    rate_window: int = 14,
    day_fraction: float = 1.0,
    common_move: Mapping[str, float] | None = None,
    earlier_common_moves: Sequence[Mapping[str, float]] = (),
    max_pooled_days: int = MAX_POOLED_DAYS,
) -> list[MetricTest]:
    """All per-metric tests of ``target`` against ``history``.

    Parameters
    ----------
    history : DataFrame, shape (n_days, ...)
        Days strictly before the target, sorted, one row per day, with columns ``date`` and
        :data:`adsentinel.detect.features.COUNT_COLUMNS`. Missing days should be rows of zeros.
    target : Series
        The target day, same columns.
    z_threshold, iqr_multiplier : float
        The alert threshold on ``|z|`` and the IQR fence multiplier (the settings
        ``ANOMALY_Z_THRESHOLD`` and ``ANOMALY_IQR_MULTIPLIER``).
    day_fraction : float
        Share of a full day's delivery expected in ``target`` (1 for a complete day). Volumes are
        compared with the history scaled by it; rates need no scaling; frequency (reach does not
        add up over hours) is only tested on complete days.
    common_move : mapping, optional
        Per metric, the factor by which the rest of the account moved the same day
        (:mod:`adsentinel.detect.common_move`); the expected value is multiplied by it, so that
        the entity is judged against what its account did. Missing metrics: 1.
    earlier_common_moves : sequence of mappings
        The same for the days before, yesterday first: a rate test pooling several days is
        judged against each pooled day's own common move.
    max_pooled_days : int
        Longest run of days a rate test may pool (1: today alone, as the account's common move
        needs: a factor is what the account did today, not over the last days).

    Returns
    -------
    list of MetricTest
        One per metric that could be tested (never filtered by the threshold).
    """
    days_since_epoch = history["date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    weekdays = (days_since_epoch + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    target_weekday = int(pd.Timestamp(target["date"]).weekday())
    columns = {c: history[c].to_numpy(dtype=float) for c in COUNT_COLUMNS}
    today = {c: float(target[c]) for c in COUNT_COLUMNS}
    # A day without any delivery is a pause (a status, not a level): volumes skip it, so that
    # resuming is judged against the days before the pause, not against zeros.
    paused = (columns["spend"] <= 0) & (columns["impressions"] <= 0)
    volumes = {c: np.where(paused, np.nan, columns[c]) for c in ("spend", "impressions", "leads")}
    factor = dict(common_move or {})
    tests: list[MetricTest | None] = [
        log_metric_test(
            "spend",
            volumes["spend"] * day_fraction,
            weekdays,
            today["spend"],
            target_weekday,
            z_threshold=z_threshold,
            iqr_multiplier=iqr_multiplier,
            level_window=level_window,
            common_factor=factor.get("spend", 1.0),
        )
    ]
    for metric in ("impressions", "leads"):
        tests.append(
            count_metric_test(
                metric,
                volumes[metric] * day_fraction,
                weekdays,
                today[metric],
                target_weekday,
                z_threshold=z_threshold,
                level_window=level_window,
                common_factor=factor.get(metric, 1.0),
            )
        )
    for metric in RATE_DEFINITIONS:
        one_day = rate_metric_test(
            metric, columns, today, z_threshold=z_threshold, rate_window=rate_window,
            common_factor=factor.get(metric, 1.0),
        )
        daily_factors = [factor.get(metric, 1.0),
                         *(dict(move).get(metric, 1.0) for move in earlier_common_moves)]
        tests.append(_strongest_pooled(one_day, metric, columns, today, z_threshold,
                                       rate_window, daily_factors, max_pooled_days))
    if today["reach"] > 0 and day_fraction >= 1.0:  # reach does not add up over hours or days
        tests.append(
            rate_metric_test(
                "frequency", columns, today, z_threshold=z_threshold, rate_window=rate_window,
                common_factor=factor.get("frequency", 1.0),
            )
        )
    return [test for test in tests if test is not None]
