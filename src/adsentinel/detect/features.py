"""Daily features of an entity, computed from its raw counts with safe division.

Two views of the same day:

* :func:`add_ratio_metrics` adds the marketer's metrics (CTR, CPC, CPM, CPL, conversion rate,
  frequency). A ratio whose denominator is zero is ``NaN`` there ("undefined", not zero), so that
  statistical detectors can tell "no clicks" from "CTR of 0".
* :func:`isolation_forest_features` turns the counts into scale-free, always-finite features for the
  multivariate model: logs of smoothed ratios, so no ``inf``/``NaN`` ever reaches a model and
  "spend with zero leads" stays a finite, extreme value of ``log_cpl`` rather than a division error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

COUNT_COLUMNS: tuple[str, ...] = ("spend", "impressions", "clicks", "leads", "reach")
RATIO_METRICS: tuple[str, ...] = ("ctr", "cpc", "cpm", "cpl", "conversion_rate", "frequency")
FOREST_FEATURES: tuple[str, ...] = (
    "log_spend",
    "log_impressions",
    "log_cpm",
    "logit_ctr",
    "log_cpc",
    "log_cpl",
    "log_conversion_rate",
    "log_frequency",
)


def safe_divide(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``numerator / denominator`` as floats, ``NaN`` where the denominator is zero."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def add_ratio_metrics(daily: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``daily`` (columns :data:`COUNT_COLUMNS`) with :data:`RATIO_METRICS` added.

    CTR and conversion rate are fractions (0.012 = 1.2 %); CPM is per 1,000 impressions.
    """
    out = daily.copy()
    out["ctr"] = safe_divide(daily["clicks"], daily["impressions"])
    out["cpc"] = safe_divide(daily["spend"], daily["clicks"])
    out["cpm"] = safe_divide(daily["spend"] * 1000.0, daily["impressions"])
    out["cpl"] = safe_divide(daily["spend"], daily["leads"])
    out["conversion_rate"] = safe_divide(daily["leads"], daily["clicks"])
    out["frequency"] = safe_divide(daily["impressions"], daily["reach"])
    return out


def isolation_forest_features(daily: pd.DataFrame) -> np.ndarray:
    """Scale-free features for the multivariate model, shape ``(n_days, len(FOREST_FEATURES))``.

    Pseudo-counts (0.5 / 1) keep every value finite: a day with spend and no leads gets a large
    but finite ``log_cpl``; a day with no delivery at all gets small, finite values everywhere.
    """
    spend = daily["spend"].to_numpy(dtype=float)
    impressions = daily["impressions"].to_numpy(dtype=float)
    clicks = daily["clicks"].to_numpy(dtype=float)
    leads = daily["leads"].to_numpy(dtype=float)
    reach = daily["reach"].to_numpy(dtype=float)
    features = np.column_stack(
        [
            np.log1p(spend),
            np.log1p(impressions),
            np.log((spend + 0.01) * 1000.0 / (impressions + 1.0)),
            np.log((clicks + 0.5) / (np.maximum(impressions - clicks, 0.0) + 0.5)),
            np.log((spend + 0.01) / (clicks + 1.0)),
            np.log((spend + 0.01) / (leads + 1.0)),
            np.log((leads + 0.5) / (clicks + 1.0)),
            np.log((impressions + 1.0) / (reach + 1.0)),
        ]
    )
    return features
