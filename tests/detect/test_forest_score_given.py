"""The detector given the day's forest score already computed (``forest_score``, the hourly
cycle's batched scores) judges with it instead of scoring the day itself."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.features import isolation_forest_features
from adsentinel.detect.forest import IsolationForest


def _ad_days(seed: int, days: int = 70) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = 300.0 * rng.lognormal(0, 0.08, days)
    impressions = rng.poisson(spend / 20 * 1000).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.01).astype(float)
    return pd.DataFrame({"date": pd.date_range("2026-01-05", periods=days), "spend": spend,
                         "impressions": impressions, "clicks": clicks,
                         "leads": rng.binomial(clicks.astype(int), 0.1).astype(float),
                         "reach": np.floor(impressions / 1.3)})


def test_the_given_score_is_what_the_forest_says_of_the_day():
    df = _ad_days(seed=4)
    df.loc[df.index[-1], ["leads", "clicks"]] = [0.0, df["clicks"].iloc[-1] // 4]  # a broken day
    model = IsolationForest(random_state=0).fit(isolation_forest_features(df.iloc[:-1]))
    training = np.quantile(model.training_scores_, np.linspace(0, 1, 101))
    detector = AnomalyDetector()
    own = model.score_samples(isolation_forest_features(df.iloc[-1:]))[0]
    judged = [detector.detect_anomalies(df, "ad", "a", model=model, training_scores=training,
                                        forest_score=score) for score in (None, own)]
    assert judged[0] == judged[1]
    assert any(a.metric == "multivariate" for a in judged[1])
    # the detector reads the given score, not the model: an ordinary score clears the day
    quiet = detector.detect_anomalies(df, "ad", "a", model=model, training_scores=training,
                                      forest_score=float(np.median(training)))
    assert not any(a.metric == "multivariate" for a in quiet)
