"""Many forests scored in one call (``pack_forests`` / ``score_packed``) against each forest's
own ``score_samples``: the same scores, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from adsentinel.detect.forest import IsolationForest, pack_forests, score_packed
from adsentinel.detect.forest._streams import STREAM_SCORING_ROWS

#: (training rows, features, trees, max_samples) of forests unlike each other: one training row
#: (c(max_samples) = 0), a single feature, a feature count beyond a byte (wide kinds)
SHAPES = [(90, 8, 100, "auto"), (30, 3, 7, "auto"), (400, 12, 40, 300), (1, 2, 5, "auto"),
          (50, 1, 13, 0.5), (60, 20, 1, "auto")]


def _forests(shapes, seed: int = 0) -> list[IsolationForest]:
    rng = np.random.default_rng(seed)
    return [IsolationForest(n_estimators=trees, max_samples=samples, random_state=i)
            .fit(rng.normal(size=(n, d)) * rng.uniform(0.1, 100))
            for i, (n, d, trees, samples) in enumerate(shapes)]


def _each_forest_alone(forests, X, owners) -> np.ndarray:
    expected = np.full(len(owners), np.nan)
    for f, forest in enumerate(forests):
        rows = np.flatnonzero(owners == f)
        if rows.size:
            expected[rows] = forest.score_samples(X[rows, :forest.n_features_in_])
    return expected


@pytest.mark.parametrize("counts", [
    [1, 0, 40, 3, STREAM_SCORING_ROWS + 1, STREAM_SCORING_ROWS],  # both paths, and none
    [0, 0, 0, 0, 0, 0],
    [300, 1, 0, 2, 0, 700],  # several blocks of the decoded walk
])
def test_every_row_scores_as_its_own_forest_to_the_bit(counts):
    forests = _forests(SHAPES)
    packed = pack_forests(forests)
    rng = np.random.default_rng(sum(counts))
    owners = rng.permutation(np.repeat(np.arange(len(forests)), counts))  # rows in any order
    X = rng.normal(size=(owners.size, packed.width)) * 50
    scores = score_packed(packed, X, owners)
    np.testing.assert_array_equal(scores, _each_forest_alone(forests, X, owners))


def test_forests_of_one_byte_and_of_wide_kinds_pack_together():
    forests = _forests([(40, 3, 6, "auto"), (40, 300, 6, "auto"), (40, 5, 6, "auto")], seed=3)
    assert {f.split_kinds_.dtype for f in forests} == {np.dtype(np.uint8), np.dtype(np.uint16)}
    packed = pack_forests(forests)
    assert packed.kinds.dtype == np.uint16 and packed.leaf == 65535
    owners = np.array([0, 1, 2, 2, 0, 1])
    X = np.random.default_rng(4).normal(size=(owners.size, 300))
    np.testing.assert_array_equal(score_packed(packed, X, owners),
                                  _each_forest_alone(forests, X, owners))


def test_a_forest_may_be_packed_twice_and_nothing_is_packed():
    forest = _forests(SHAPES[:1])[0]
    X = np.random.default_rng(5).normal(size=(3, 8))
    twice = score_packed(pack_forests([forest, forest]), X, [1, 0, 1])
    np.testing.assert_array_equal(twice, forest.score_samples(X))
    empty = pack_forests([])
    assert empty.n_forests == 0 and empty.width == 0
    assert score_packed(empty, np.empty((0, 0)), []).shape == (0,)


def test_inputs_are_checked_and_named():
    forests = _forests(SHAPES[:2])
    packed = pack_forests(forests)
    X = np.zeros((2, 8))
    with pytest.raises(ValueError, match=r"X must have shape \(n_rows, 8\), got \(2, 3\)"):
        score_packed(packed, X[:, :3], [0, 1])
    with pytest.raises(ValueError, match=r"forest_of_row must have shape \(2,\), got \(3,\)"):
        score_packed(packed, X, [0, 1, 1])
    with pytest.raises(ValueError, match=r"forest_of_row must be in \[0, 2\), got values from 0 to 2"):
        score_packed(packed, X, [0, 2])
    X[1, 4] = np.nan
    with pytest.raises(ValueError, match="X must be finite, got NaN or infinity in row 1"):
        score_packed(packed, X, [0, 1])
    with pytest.raises(NotFittedError):
        pack_forests([forests[0], IsolationForest()])
