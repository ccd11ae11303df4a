"""The isolation forest's sentence says which metrics moved together and by how much."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsentinel.detect.features import FOREST_FEATURES, isolation_forest_features
from adsentinel.detect.forest_message import change_text, combination_sentence, relative_moves


def _days(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["spend", "impressions", "clicks", "leads", "reach"])


def test_relative_moves_are_the_metrics_own_changes():
    usual = _days([(100.0, 10_000, 200, 20, 8_000)] * 10)
    today = _days([(180.0, 10_000, 110, 20, 8_000)])  # CPM x1.8, CTR -45 %
    moves = relative_moves(isolation_forest_features(today)[0], isolation_forest_features(usual),
                           FOREST_FEATURES, ["logit_ctr", "log_cpm"])
    assert moves["ctr"] == pytest.approx(110 / 200 - 1, abs=0.01)
    assert moves["cpm"] == pytest.approx(0.8, abs=0.01)
    assert list(moves) == ["ctr", "cpm"]  # the drivers' order


def test_the_sentence_names_metrics_and_changes_never_features_or_sd():
    sentence = combination_sentence({"ctr": -0.45, "cpm": 0.8}, "ad")
    assert sentence == "CTR -45 % and CPM +80 % together, unusual for this ad"
    three = combination_sentence({"cpl": 2.2, "ctr": -0.3, "frequency": 0.5}, "adset")
    assert three == "CPL x3.2, CTR -30 % and Frequency +50 % together, unusual for this ad set"
    assert combination_sentence({"spend": 0.6}, "campaign") == (
        "Spend +60 %, unusual for this campaign")
    no_leads = combination_sentence({"ctr": -0.7, "cpl": 14.7, "conversion_rate": -0.9}, "ad",
                                    no_leads=True)
    assert no_leads == "CTR -70 % and no leads together, unusual for this ad"
    for text in (sentence, three, no_leads):
        assert "log" not in text and " sd" not in text and "_" not in text


@pytest.mark.parametrize(("change", "text"), [
    (0.8, "+80 %"), (-0.45, "-45 %"), (1.0, "x2.0"), (14.7, "x15.7"), (0.001, "about unchanged"),
    (-0.999, "-100 %"),
])
def test_change_text(change, text):
    assert change_text(change) == text


def test_moves_of_a_flat_history_are_zero():
    usual = isolation_forest_features(_days([(50.0, 5_000, 50, 5, 4_000)] * 5))
    moves = relative_moves(usual[0], usual, FOREST_FEATURES, list(FOREST_FEATURES))
    assert set(moves) == {"spend", "impressions", "cpm", "ctr", "cpc", "cpl", "conversion_rate",
                          "frequency"}
    assert np.allclose(list(moves.values()), 0.0)
