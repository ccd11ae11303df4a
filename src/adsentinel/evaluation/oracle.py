"""What an oracle could detect: the detectability of each labelled incident.

Some labelled incidents are below the noise: a day without leads on an ad that averages one lead
a day happens by chance about one day in three. No detector can find those without raising false
alarms on every quiet day, so recall is also reported on the incidents that an *oracle* could
detect. The oracle knows each incident's kind, entity and window; it tests only that kind's own
metric, pooled over the days that count for recall (the first two days of the incident, or one
for a one-day incident), against the entity's previous ``history_days`` delivering days, one
sided in the harmful direction. An incident is *detectable* when that p-value is below
:data:`DETECTABLE_P`.

The tests are the textbook ones for each kind of metric, with the dispersion estimated from the
entity's own history (so an oracle is not fooled into certainty by a volatile entity):

* a rate (CTR, conversion rate, cost per result, CPM, reach per impression) is a count given its
  exposure: ``count ~ NegBin(mean = baseline rate x exposure, overdispersion phi)``, ``phi`` by
  the method of moments over the history days;
* a volume with no exposure (impressions for a delivery drop) is the same with the history's mean
  daily count as the baseline;
* spend is log-normal: a two-sample z on ``log(spend)``;
* a joint drift (CTR, conversion rate and CPM each moved a little the wrong way) combines the
  three one-sided z of its rates by Stouffer's sum, ``sum(z) / sqrt(3)``.

Pure: DataFrames in, a DataFrame out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DETECTABLE_P = 1e-3
HISTORY_DAYS = 28
RECALL_WINDOW_DAYS = 2  # an incident counts as detected when found by its second day

#: count, exposure, harmful side ("low": fewer counts per exposure hurt) per rate test.
_RATE_TESTS: dict[str, tuple[str, str, str]] = {
    "ctr": ("clicks", "impressions", "low"),
    "conversion_rate": ("leads", "clicks", "low"),
    "cost_per_lead": ("leads", "spend", "low"),
    "cpm": ("impressions", "spend", "low"),
    "frequency": ("reach", "impressions", "low"),
}

#: the test that each incident kind's own metric gets.
KIND_TESTS: dict[str, tuple[str, ...]] = {
    "tracking_broken": ("cost_per_lead",),
    "conversion_rate_drop": ("conversion_rate",),
    "ctr_collapse": ("ctr",),
    "cpm_spike": ("cpm",),
    "frequency_spike": ("frequency",),
    "delivery_drop": ("impressions",),
    "spend_spike": ("spend",),
    "joint_drift": ("ctr", "conversion_rate", "cpm"),
}


@dataclass(frozen=True)
class OracleVerdict:
    """One incident's oracle test: the one-sided p-value and whether it is below the bar."""

    p_value: float
    detectable: bool


def one_sided_rate_z(history: pd.DataFrame, window: pd.DataFrame, test: str) -> float:
    """Signed z (positive = harmful) of a rate test of ``window`` against ``history``."""
    count_col, exposure_col, _side = _RATE_TESTS[test]
    counts = history[count_col].to_numpy(float)
    exposures = history[exposure_col].to_numpy(float)
    if exposures.sum() <= 0 or counts.sum() <= 0:
        return 0.0
    rate = counts.sum() / exposures.sum()
    observed = float(window[count_col].sum())
    expected = rate * float(window[exposure_col].sum())
    if expected <= 0:
        return 0.0
    phi = _moment_overdispersion(counts, rate * exposures)
    return -_nb_lower_tail_z(observed, expected, phi)


def volume_z(history: pd.DataFrame, window: pd.DataFrame, column: str) -> float:
    """Signed z (positive = harmful: fewer) of ``window``'s daily ``column`` against history."""
    counts = history[column].to_numpy(float)
    mean = counts.mean() if counts.size else 0.0
    if mean <= 0:
        return 0.0
    phi = _moment_overdispersion(counts, np.full(counts.size, mean))
    days = len(window)
    # the sum of `days` independent NB(mean, phi) days is NB(days * mean, phi / days)
    return -_nb_lower_tail_z(float(window[column].sum()), days * mean, phi / days)


def spend_z(history: pd.DataFrame, window: pd.DataFrame) -> float:
    """Signed z (positive = harmful: more spend) of the window's log spend against history."""
    past = np.log(history["spend"].to_numpy(float))
    now = np.log(window["spend"].to_numpy(float))
    if past.size < 3 or now.size == 0:
        return 0.0
    spread = max(float(past.std(ddof=1)), 1e-3)
    return float((now.mean() - past.mean()) / (spread * np.sqrt(1 / now.size + 1 / past.size)))


def oracle_verdict(frame: pd.DataFrame, kind: str, start: pd.Timestamp,
                   days: int) -> OracleVerdict:
    """The oracle's test of one incident of ``kind`` starting on ``start``, lasting ``days``.

    ``frame`` is the incident entity's daily counts (``date`` and the count columns), one row per
    day. Days without delivery are left out of the history.
    """
    dates = pd.to_datetime(frame["date"])
    recall_days = min(int(days), RECALL_WINDOW_DAYS)
    in_window = (dates >= start) & (dates < start + pd.Timedelta(days=recall_days))
    delivering = frame["impressions"].to_numpy(float) > 0
    before = (dates < start).to_numpy() & delivering
    history = frame[before].tail(HISTORY_DAYS)
    window = frame[in_window.to_numpy()]
    if len(history) < 7 or window.empty:
        return OracleVerdict(p_value=1.0, detectable=False)
    z = _kind_z(kind, history, window[window["impressions"] > 0] if kind != "delivery_drop"
                else window)
    p_value = float(stats.norm.sf(z))
    return OracleVerdict(p_value=p_value, detectable=p_value < DETECTABLE_P)


def oracle_table(labels: pd.DataFrame,
                 frames: Mapping[tuple[str, str, str], pd.DataFrame]) -> pd.DataFrame:
    """``incident_id, kind, p_value, detectable`` of every label, from the entities' frames.

    ``frames`` maps ``(account_id, entity_type, entity_id)`` to that entity's daily counts.
    """
    rows = []
    for label in labels.itertuples(index=False):
        key = (str(label.account_id), str(label.entity_type), str(label.entity_id))
        frame = frames.get(key)
        verdict = (OracleVerdict(1.0, False) if frame is None else oracle_verdict(
            frame, str(label.kind), pd.Timestamp(str(label.start_date)), int(label.days)))
        rows.append((str(label.incident_id), str(label.kind), verdict.p_value, verdict.detectable))
    return pd.DataFrame(rows, columns=["incident_id", "kind", "p_value", "detectable"])


def _kind_z(kind: str, history: pd.DataFrame, window: pd.DataFrame) -> float:
    if window.empty:
        return 0.0
    tests = KIND_TESTS.get(kind)
    if tests is None:
        raise ValueError(f"no oracle test for incident kind {kind!r}; known: {sorted(KIND_TESTS)}")
    zs = []
    for test in tests:
        if test == "spend":
            zs.append(spend_z(history, window))
        elif test == "impressions":
            zs.append(volume_z(history, window, "impressions"))
        else:
            zs.append(one_sided_rate_z(history, window, test))
    return float(sum(zs) / np.sqrt(len(zs)))


def _moment_overdispersion(counts: np.ndarray, means: np.ndarray) -> float:
    """Method-of-moments ``phi`` of ``Var = mu + phi mu^2``: mean of ``((k-mu)^2 - mu) / mu^2``
    weighted by ``mu^2``; at least 0."""
    ok = means > 0
    if ok.sum() < 3:
        return 0.0
    k, mu = counts[ok], means[ok]
    return float(max(((k - mu) ** 2 - mu).sum() / (mu**2).sum(), 0.0))


def _nb_lower_tail_z(observed: float, expected: float, phi: float) -> float:
    """Signed z of ``P(X <= observed)`` (mid-p) for ``X ~ NegBin(expected, phi)``: negative when
    the observation is low."""
    k = float(np.round(observed))
    if phi <= 1e-9:
        distribution = stats.poisson(expected)
    else:
        n = 1.0 / phi
        distribution = stats.nbinom(n, n / (n + expected))
    lower = float(distribution.cdf(k) - 0.5 * distribution.pmf(k))
    return float(stats.norm.ppf(np.clip(lower, 1e-300, 1 - 1e-16)))
