"""Calibration: every detector's raw score onto one 0-100 scale (higher = worse) and a severity.

Detectors speak different languages: the statistical tests give a signed z-equivalent of a tail
probability, the isolation forest a path-length score. Here both become a *z-like* number first
(:class:`ForestScoreCalibrator` does it for the forest, against the entity's own training scores),
and a z-like number becomes a score with :func:`anomaly_score`, which also weighs the size of the
move: a statistically certain +8 % CPM on a huge account is not an emergency. The alert rule then
only needs :func:`severity_for_score`.

Score bands (``SEVERITY_FLOORS``): below 40 nothing is reported; 40 low, 60 medium, 75 high,
90 critical. A z exactly at the threshold scores 40.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from adsentinel.detect.statistical import MAD_TO_SD


class SeverityLevel(str, enum.Enum):
    """How bad an anomaly is, from the common score (values match the database's ``severity``)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low up to 3 for critical, for comparisons."""
        return _ORDER.index(self)


_ORDER = [SeverityLevel.LOW, SeverityLevel.MEDIUM, SeverityLevel.HIGH, SeverityLevel.CRITICAL]

#: Lowest score of each severity.
SEVERITY_FLOORS: dict[SeverityLevel, float] = {
    SeverityLevel.LOW: 40.0,
    SeverityLevel.MEDIUM: 60.0,
    SeverityLevel.HIGH: 75.0,
    SeverityLevel.CRITICAL: 90.0,
}
REPORT_FLOOR = SEVERITY_FLOORS[SeverityLevel.LOW]
#: Highest score that is still only "low" (used to cap moves that are not harmful).
LOW_CAP = SEVERITY_FLOORS[SeverityLevel.MEDIUM] - 0.01
#: Highest score that is still only "medium".
MEDIUM_CAP = SEVERITY_FLOORS[SeverityLevel.HIGH] - 0.01

_SIGNIFICANCE_SPREAD = 2.5  # z units above the threshold to cover ~63 % of the 40-100 range
_EFFECT_SPREAD = 0.45  # log-ratio units: x1.2 -> medium, x1.5 -> high, x2.5 -> critical


def significance_score(z: float | np.ndarray, z_threshold: float) -> float | np.ndarray:
    """Map ``|z|`` to 0-100: linear to 40 at the threshold, then saturating towards 100.

    ``40 + 60 * (1 - exp(-(|z| - T) / 2.5))`` above the threshold ``T``: T+1 is medium,
    T+2.5 high, T+4.6 critical.
    """
    z = np.abs(np.asarray(z, dtype=float))
    below = REPORT_FLOOR * z / z_threshold
    above = REPORT_FLOOR + 60.0 * (1.0 - np.exp(-(z - z_threshold) / _SIGNIFICANCE_SPREAD))
    out = np.where(z < z_threshold, below, above)
    return float(out) if out.ndim == 0 else out


def effect_score(actual: float, expected: float) -> float:
    """Map the size of a move (ratio of actual to expected, either way) to 40-100.

    ``40 + 60 * (1 - exp(-|ln(actual / expected)| / 0.45))``: a 20 % move reaches medium, 50 %
    high, 2.5x critical. A move to or from zero is maximal.
    """
    if not (np.isfinite(actual) and np.isfinite(expected)):
        return 100.0
    if actual <= 0 or expected <= 0:
        return 100.0 if max(actual, expected) > 0 else REPORT_FLOOR
    log_ratio = abs(float(np.log(actual / expected)))
    return float(REPORT_FLOOR + 60.0 * (1.0 - np.exp(-log_ratio / _EFFECT_SPREAD)))


def anomaly_score(z: float, actual: float, expected: float, z_threshold: float) -> float:
    """The common 0-100 score of one observation: the lesser of significance and effect size.

    Both must be there for a high score: a certain but tiny move, or a large move on three
    clicks, stay low.
    """
    significance = significance_score(z, z_threshold)
    if significance < REPORT_FLOOR:
        return float(significance)
    return float(min(significance, effect_score(actual, expected)))


def severity_for_score(score: float) -> SeverityLevel | None:
    """The severity band of ``score``; ``None`` below the reporting floor (40)."""
    found = None
    for level in _ORDER:
        if score >= SEVERITY_FLOORS[level]:
            found = level
    return found


@dataclass
class ForestScoreCalibrator:
    """Turn an isolation forest's ``score_samples`` into a z-like anomaly score.

    Fitted on the scores the entity's model gave its own training days, so that "unusual" means
    unusual *for this entity*, not "in the worst 10 %". ``score_samples`` is higher for normal
    points (scikit-learn convention); this class flips the sign, once, so that the result is
    higher = more anomalous: ``z = (-s - median) / (1.4826 * MAD)`` over the training ``-s``.
    """

    min_scale: float = 0.01

    def fit(self, training_scores: np.ndarray) -> ForestScoreCalibrator:
        """Learn the centre and robust spread of ``training_scores``, shape ``(n_samples,)``."""
        raw = -np.asarray(training_scores, dtype=float)
        raw = raw[np.isfinite(raw)]
        if raw.size < 5:
            raise ValueError(f"training_scores must hold at least 5 finite values, got {raw.size}")
        self.center_ = float(np.median(raw))
        self.scale_ = float(
            max(MAD_TO_SD * np.median(np.abs(raw - self.center_)), self.min_scale)
        )
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """z-like anomaly scores of ``scores`` (``score_samples`` output), shape ``(n,)``."""
        if not hasattr(self, "center_"):
            raise RuntimeError("ForestScoreCalibrator is not fitted; call fit(training_scores)")
        return (-np.asarray(scores, dtype=float) - self.center_) / self.scale_

    def to_dict(self) -> dict[str, float]:
        """The fitted state as plain JSON values."""
        return {"center": self.center_, "scale": self.scale_, "min_scale": self.min_scale}

    @classmethod
    def from_dict(cls, state: dict[str, float]) -> ForestScoreCalibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        calibrator = cls(min_scale=state["min_scale"])
        calibrator.center_ = float(state["center"])
        calibrator.scale_ = float(state["scale"])
        return calibrator


def forest_drivers(
    today: np.ndarray, history: np.ndarray, names: tuple[str, ...] | list[str], top: int = 3
) -> dict[str, float]:
    """The features that moved most on the scored day, as robust z against the history.

    Parameters
    ----------
    today : ndarray, shape (n_features,)
    history : ndarray, shape (n_days, n_features)
    names : feature names, length n_features
    top : how many drivers to return

    Returns
    -------
    dict
        ``{feature name: signed robust z}`` for the ``top`` largest ``|z|``, largest first.
    """
    history = np.asarray(history, dtype=float)
    centre = np.median(history, axis=0)
    scale = MAD_TO_SD * np.median(np.abs(history - centre), axis=0)
    scale = np.maximum(scale, 0.05)
    z = (np.asarray(today, dtype=float) - centre) / scale
    order = np.argsort(-np.abs(z))[:top]
    return {str(names[i]): round(float(z[i]), 2) for i in order}
