"""Calibration onto the common 0-100 scale, severities, and the forest's own-entity calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from adsentinel.detect.calibration import (
    ForestScoreCalibrator,
    SeverityLevel,
    anomaly_score,
    effect_score,
    forest_drivers,
    severity_for_score,
    significance_score,
)


def test_significance_score_is_40_at_threshold_monotone_and_bounded():
    z = np.linspace(0, 40, 400)
    scores = significance_score(z, 3.0)
    assert significance_score(3.0, 3.0) == pytest.approx(40.0)
    assert np.all(np.diff(scores) > 0)
    assert scores.max() <= 100.0
    assert significance_score(-5.0, 3.0) == significance_score(5.0, 3.0)  # sign is direction only
    assert severity_for_score(significance_score(4.0, 3.0)) == SeverityLevel.LOW
    assert severity_for_score(significance_score(4.2, 3.0)) == SeverityLevel.MEDIUM
    assert severity_for_score(significance_score(5.6, 3.0)) == SeverityLevel.HIGH
    assert severity_for_score(significance_score(7.7, 3.0)) == SeverityLevel.CRITICAL


@pytest.mark.parametrize(
    "ratio, severity",
    [(1.1, SeverityLevel.LOW), (1.3, SeverityLevel.MEDIUM), (1.8, SeverityLevel.HIGH),
     (3.0, SeverityLevel.CRITICAL), (1 / 3.0, SeverityLevel.CRITICAL)],
)
def test_effect_score_bands_are_symmetric_in_log_ratio(ratio, severity):
    assert severity_for_score(effect_score(10.0 * ratio, 10.0)) == severity


def test_moves_to_zero_are_maximal_effects():
    assert effect_score(0.0, 20.0) == 100.0
    assert effect_score(0.0, 0.0) == 40.0


def test_anomaly_score_needs_both_significance_and_size():
    certain_but_tiny = anomaly_score(z=30.0, actual=10.8, expected=10.0, z_threshold=3.0)
    large_but_noisy = anomaly_score(z=2.0, actual=30.0, expected=10.0, z_threshold=3.0)
    both = anomaly_score(z=12.0, actual=30.0, expected=10.0, z_threshold=3.0)
    assert severity_for_score(certain_but_tiny) == SeverityLevel.LOW
    assert severity_for_score(large_but_noisy) is None
    assert severity_for_score(both) == SeverityLevel.CRITICAL


def test_severity_for_score_floors():
    assert severity_for_score(39.99) is None
    assert [severity_for_score(s) for s in (40, 60, 75, 90, 100)] == [
        SeverityLevel.LOW, SeverityLevel.MEDIUM, SeverityLevel.HIGH, SeverityLevel.CRITICAL,
        SeverityLevel.CRITICAL,
    ]
    assert SeverityLevel.CRITICAL.rank > SeverityLevel.LOW.rank


def _fitted_forest(seed: int = 0):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(120, 4))
    model = IsolationForest(n_estimators=200, random_state=seed).fit(train)
    return model, train


def test_forest_calibration_uses_the_entity_training_distribution_not_a_fixed_share():
    model, train = _fitted_forest()
    calibrator = ForestScoreCalibrator().fit(model.score_samples(train))
    rng = np.random.default_rng(1)
    fresh_normal = calibrator.transform(model.score_samples(rng.normal(size=(500, 4))))
    outliers = calibrator.transform(model.score_samples(np.full((3, 4), 6.0)))
    # contamination=0.1 would label 10 % of normal days; here few normal days pass z >= 3
    assert np.mean(fresh_normal >= 3.0) < 0.03
    assert np.all(outliers > 3.0)


def test_forest_calibration_sign_convention_and_round_trip():
    model, train = _fitted_forest()
    scores = model.score_samples(train)
    calibrator = ForestScoreCalibrator().fit(scores)
    z = calibrator.transform(scores)
    assert z[np.argmin(scores)] == z.max()  # lowest score_samples = most anomalous
    restored = ForestScoreCalibrator.from_dict(calibrator.to_dict())
    np.testing.assert_array_equal(restored.transform(scores), z)


def test_forest_calibrator_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="not fitted"):
        ForestScoreCalibrator().transform(np.zeros(3))
    with pytest.raises(ValueError, match="at least 5 finite values, got 2"):
        ForestScoreCalibrator().fit(np.array([0.1, np.nan, 0.2]))


def test_forest_drivers_name_the_feature_that_moved():
    rng = np.random.default_rng(3)
    history = rng.normal(size=(60, 3))
    today = np.array([0.1, -8.0, 0.2])
    drivers = forest_drivers(today, history, ["log_cpm", "logit_ctr", "log_cpl"], top=2)
    assert next(iter(drivers)) == "logit_ctr"
    assert drivers["logit_ctr"] < -5
    assert len(drivers) == 2
