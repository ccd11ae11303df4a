"""Same decisions: the walk-forward with every entity's tests computed at once (the vectorised
statistical walk) reports exactly the anomalies of the per-day reference on labelled worlds."""

from __future__ import annotations

import pandas as pd
import pytest

from adsentinel.evaluation.walk import walk_accounts
from adsentinel.evaluation.worlds import world_dataset

#: What an anomaly is, for "the same anomalies": who, when, what, how bad, and what it says.
DECISION = ["account_id", "entity_type", "entity_id", "date", "metric", "severity", "score",
            "detector", "message"]


def _walked(insights: pd.DataFrame, *, statistical_walk: bool) -> pd.DataFrame:
    found = walk_accounts(insights, workers=1, retrain_every=None,
                          statistical_walk=statistical_walk)
    return found[DECISION].sort_values(DECISION[:5]).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("world", ["lab", "field"])
def test_the_vectorised_walk_reports_the_per_day_references_anomalies(world):
    insights = world_dataset(world, 1, size="demo").insights
    vectorised = _walked(insights, statistical_walk=True)
    reference = _walked(insights, statistical_walk=False)
    assert len(reference) > 0
    assert reference["detector"].str.startswith("nb_rate_").any()  # pooled days were judged
    pd.testing.assert_frame_equal(vectorised, reference, check_exact=True)
