"""The isolation forest's sentence for a media buyer: which metrics moved together, by how much.

The forest speaks in features (``logit_ctr``, ``log_cpm`` ...: logs of smoothed ratios, see
:mod:`adsentinel.detect.features`) and robust z-scores. A media buyer reads metrics and percent
changes: ``"CTR -45 %, CPM +80 % together, unusual for this ad"``. Every feature is a log (or a
logit, close to a log for rates of a few percent), so ``exp(today - median of the history) - 1``
is the metric's relative change against its usual day.

Pure: arrays in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: the metric each forest feature stands for, as a media buyer names it
FEATURE_LABELS: dict[str, str] = {
    "log_spend": "Spend", "log_impressions": "Impressions", "log_cpm": "CPM",
    "logit_ctr": "CTR", "log_cpc": "CPC", "log_cpl": "CPL",
    "log_conversion_rate": "Conversion rate", "log_frequency": "Frequency",
}
#: the metric's key (as elsewhere in adsentinel) of each feature
FEATURE_METRICS: dict[str, str] = {
    "log_spend": "spend", "log_impressions": "impressions", "log_cpm": "cpm",
    "logit_ctr": "ctr", "log_cpc": "cpc", "log_cpl": "cpl",
    "log_conversion_rate": "conversion_rate", "log_frequency": "frequency",
}
_LEVEL_WORDS = {"campaign": "campaign", "adset": "ad set", "ad": "ad"}


def relative_moves(today: np.ndarray, history: np.ndarray, names: Sequence[str],
                   features: Sequence[str]) -> dict[str, float]:
    """Relative change of each of ``features`` against the median of ``history``.

    Parameters
    ----------
    today : ndarray, shape (n_features,)
    history : ndarray, shape (n_days, n_features)
    names : the feature names of the columns, length n_features
    features : the features to report (the forest's drivers), in order

    Returns
    -------
    dict
        ``{metric: change}`` (``-0.45`` = 45 % lower than usual), rounded to 3 decimals.
    """
    centre = np.median(np.asarray(history, dtype=float), axis=0)
    today = np.asarray(today, dtype=float)
    moves = {}
    for feature in features:
        column = list(names).index(feature)
        change = float(np.expm1(today[column] - centre[column]))
        moves[FEATURE_METRICS.get(feature, feature)] = round(change, 3)
    return moves


def combination_sentence(moves: Mapping[str, float], level: str, *, no_leads: bool = False) -> str:
    """``"CTR -45 % and CPM +80 % together, unusual for this ad"`` from :func:`relative_moves`.

    ``no_leads``: the day has no lead at all, said as such instead of the smoothed change of
    CPL or conversion rate (which has no finite value then).
    """
    labels = {FEATURE_METRICS[feature]: label for feature, label in FEATURE_LABELS.items()}
    parts = []
    for metric, change in moves.items():
        if no_leads and metric in ("cpl", "conversion_rate"):
            if "no leads" not in parts:
                parts.append("no leads")
            continue
        parts.append(f"{labels.get(metric, metric)} {change_text(change)}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    together = listed + (" together" if len(parts) > 1 else "")
    return f"{together}, unusual for this {_LEVEL_WORDS.get(level, level)}"


def change_text(change: float) -> str:
    """A relative change as a media buyer reads it: ``+80 %``, ``-45 %``, ``x3.2`` from
    double on."""
    if change >= 1.0:
        return f"x{1.0 + change:.1f}"
    percent = round(100 * change)
    if percent == 0:
        return "about unchanged"
    return f"{percent:+d} %"
