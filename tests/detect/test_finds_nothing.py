"""The hourly cycle skips judging an entity-day whose tests and forest score say nothing:
``AnomalyDetector.finds_nothing`` must never skip a day that judging would report."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import COUNT_COLUMNS, isolation_forest_features
from adsentinel.detect.forest import IsolationForest
from adsentinel.detect.statistical_walk import walk_statistical_tests

START = date(2026, 1, 1)


def _frame() -> pd.DataFrame:
    """120 days of one ad; spend tripled on day 80, leads lost on days 95-97, an odd mix
    (cheap impressions, many clicks, few people reached) on day 110."""
    rng = np.random.default_rng(5)
    spend = 200.0 * rng.lognormal(0, 0.1, 120)
    spend[80] *= 3.0
    impressions = rng.poisson(spend * 70.0).astype(float)
    impressions[110] *= 3.0
    clicks = rng.binomial(impressions.astype(int), 0.012).astype(float)
    clicks[110] *= 4.0
    leads = rng.binomial(clicks.astype(int), 0.08).astype(float)
    leads[95:98] = 0.0
    reach = np.round(impressions / 1.4)
    reach[110] = np.round(impressions[110] / 4.0)
    return prepare_daily_frame(pd.DataFrame({
        "date": [START + timedelta(days=k) for k in range(120)], "spend": spend,
        "impressions": impressions, "clicks": clicks, "leads": leads, "reach": reach}))


def test_a_day_said_to_find_nothing_is_a_day_judging_reports_nothing():
    daily = _frame()
    detector = AnomalyDetector()
    history = daily.iloc[:60]
    forest = IsolationForest(n_estimators=50, random_state=1).fit(
        isolation_forest_features(history))
    training = forest.score_samples(isolation_forest_features(history))
    positions = np.arange(30, len(daily))
    walk = walk_statistical_tests(
        daily, positions, z_threshold=detector.z_threshold,
        iqr_multiplier=detector.iqr_multiplier, min_history_days=detector.min_history_days)
    features = isolation_forest_features(daily[list(COUNT_COLUMNS)])
    skipped = reported = 0
    forest_days = set()
    for position, tests in zip(positions, walk.all_tests(), strict=True):
        day = daily["date"].iloc[position].date()
        score = float(forest.score_samples(features[position:position + 1])[0])
        for model, scores in ((None, None), (forest, training)):
            quiet = detector.finds_nothing(tests, model=model, training_scores=scores,
                                           forest_score=score, as_of_hour=None)
            found = detector.detect_anomalies(daily, "ad", "1", analysis_date=day, model=model,
                                              training_scores=scores, forest_score=score,
                                              statistical_tests=tests)
            if quiet:
                assert found == [], (day, [(a.metric, a.severity) for a in found])
                skipped += 1
            reported += bool(found)
            forest_days |= {day for a in found if a.metric == "multivariate"}
    assert skipped > 50 and reported >= 3  # both kinds of day were there
    assert forest_days  # and days the forest reported
    # the odd mix is the forest's alone: without the forest's score the day cannot be skipped
    odd = list(positions).index(110)
    assert not detector.finds_nothing(walk.all_tests()[odd], model=forest,
                                      training_scores=training, forest_score=None,
                                      as_of_hour=None)
