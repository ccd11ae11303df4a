"""The compiled Isolation Forest against scikit-learn, its reference."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import IsolationForest as SklearnIsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from adsentinel.detect.forest import LEAF, ForestState, IsolationForest
from adsentinel.detect.forest import _estimator as forest_estimator
from adsentinel.detect.forest._maths import (
    average_path_length as _average_path_length,
)
from adsentinel.detect.forest._maths import (
    average_path_length_scalar as _average_path_length_scalar,
)


def _odds_dir() -> Path:
    """The published ODDS sets: ``ADSENTINEL_TEST_ODDS_DIR``, else ``shared/`` beside this
    checkout, else the workplace's ``/work/shared`` (a clone elsewhere has no sibling)."""
    if os.environ.get("ADSENTINEL_TEST_ODDS_DIR"):
        return Path(os.environ["ADSENTINEL_TEST_ODDS_DIR"])
    candidates = [Path(__file__).resolve().parents[2].parent / "shared" / "data" / "odds",
                  Path("/work/shared/data/odds")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


ODDS_DIR = _odds_dir()
ODDS_SETS = ["4_breastw", "29_Pima", "18_Ionosphere", "6_cardio", "38_thyroid"]


def _odds(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = ODDS_DIR / f"{name}.npz"
    if not path.exists():
        message = f"ODDS benchmark file {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    data = np.load(path)
    return data["X"], data["y"]


@pytest.mark.parametrize("name", ODDS_SETS)
def test_auc_matches_sklearn_on_odds(name):
    X, y = _odds(name)
    ours = [roc_auc_score(y, -IsolationForest(random_state=s).fit(X).score_samples(X))
            for s in range(3)]
    reference = [
        roc_auc_score(y, -SklearnIsolationForest(random_state=s).fit(X).score_samples(X))
        for s in range(3)
    ]
    assert abs(np.mean(ours) - np.mean(reference)) <= 0.02, (np.mean(ours), np.mean(reference))


def test_auc_matches_sklearn_on_daily_entity_shape():
    """90 days x 8 features with a few shifted days, the shape of one entity's history."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(90, 8))
    y = np.zeros(90, dtype=int)
    y[[10, 40, 70, 85]] = 1
    X[y == 1] += rng.choice([-4.0, 4.0], size=(4, 8))
    ours = np.mean([roc_auc_score(y, -IsolationForest(random_state=s).fit(X).score_samples(X))
                    for s in range(3)])
    reference = np.mean([
        roc_auc_score(y, -SklearnIsolationForest(random_state=s).fit(X).score_samples(X))
        for s in range(3)
    ])
    assert abs(ours - reference) <= 0.02


def test_average_path_length_matches_sklearn():
    from sklearn.ensemble._iforest import _average_path_length as sklearn_c

    n = np.array([0, 1, 2, 3, 10, 90, 255, 256])
    np.testing.assert_allclose(_average_path_length(n), sklearn_c(n))
    for value in n:
        assert _average_path_length_scalar(int(value)) == pytest.approx(sklearn_c([value])[0])


def test_same_seed_same_model_and_scores():
    X = np.random.default_rng(0).normal(size=(120, 5))
    a = IsolationForest(random_state=42).fit(X)
    b = IsolationForest(random_state=42).fit(X)
    c = IsolationForest(random_state=43).fit(X)
    for left, right in zip(a.get_state().__dict__.values(), b.get_state().__dict__.values(), strict=True):
        np.testing.assert_array_equal(left, right)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert not np.array_equal(a.score_samples(X), c.score_samples(X))


def test_sign_conventions_follow_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    model = IsolationForest(random_state=0).fit(X)
    outlier, inlier = np.array([[8.0, -8.0, 8.0]]), np.zeros((1, 3))
    scores = model.score_samples(np.vstack([outlier, inlier]))
    assert np.all((scores >= -1.0) & (scores <= 0.0))
    assert scores[0] < scores[1]  # lower = more abnormal
    assert model.offset_ == -0.5
    np.testing.assert_allclose(model.decision_function(outlier), scores[:1] + 0.5)
    assert model.predict(outlier)[0] == -1
    assert model.predict(inlier)[0] == 1


def test_training_scores_equal_score_samples():
    X = np.random.default_rng(2).normal(size=(90, 8))
    model = IsolationForest(random_state=3).fit(X)  # max_samples == n: scores from the growth
    np.testing.assert_allclose(model.training_scores_, model.score_samples(X), rtol=0, atol=1e-12)
    big = np.random.default_rng(2).normal(size=(400, 4))
    model = IsolationForest(random_state=3).fit(big)  # subsampled: scored afterwards
    np.testing.assert_allclose(model.training_scores_, model.score_samples(big))


def test_contamination_sets_offset_like_sklearn():
    X = np.random.default_rng(4).normal(size=(300, 4))
    model = IsolationForest(contamination=0.1, random_state=0).fit(X)
    assert model.offset_ == pytest.approx(np.percentile(model.score_samples(X), 10.0))
    assert np.mean(model.predict(X) == -1) == pytest.approx(0.1, abs=0.01)


def test_state_round_trip_gives_identical_scores():
    X = np.random.default_rng(5).normal(size=(90, 8))
    model = IsolationForest(random_state=9).fit(X)
    state = model.get_state()
    copy = IsolationForest.from_state(
        ForestState(**{k: (np.array(v) if isinstance(v, np.ndarray) else v)
                       for k, v in state.__dict__.items()})
    )
    np.testing.assert_array_equal(copy.score_samples(X), model.score_samples(X))
    assert copy.offset_ == model.offset_


def test_malformed_state_is_refused_not_read_out_of_bounds():
    X = np.random.default_rng(6).normal(size=(60, 3))
    state = IsolationForest(n_estimators=5, random_state=0).fit(X).get_state()
    truncated = ForestState(**{**state.__dict__, "kinds": state.kinds[:-3]})
    with pytest.raises(ValueError, match="malformed forest state"):
        IsolationForest.from_state(truncated)
    bad_feature = state.kinds.copy()
    bad_feature[0] = 7
    with pytest.raises(ValueError, match="feature"):
        IsolationForest.from_state(ForestState(**{**state.__dict__, "kinds": bad_feature}))
    with pytest.raises(ValueError, match="malformed"):
        IsolationForest.from_state(ForestState(**{**state.__dict__, "n_estimators": 50}))


def test_fitted_model_is_small():
    X = np.random.default_rng(8).normal(size=(90, 8))
    state = IsolationForest(random_state=0).fit(X).get_state()
    assert state.nbytes < 24 * 1024


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_estimators": 0}, "n_estimators must be a positive integer, got 0"),
        ({"max_samples": 1.5}, r"max_samples must be in \(0, 1\], got 1.5"),
        ({"max_samples": "all"}, "max_samples must be 'auto'"),
        ({"contamination": 0.9}, "contamination must be 'auto' or in"),
        ({"random_state": -1}, "random_state must be a non-negative integer, got -1"),
    ],
)
def test_invalid_parameters_name_parameter_and_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IsolationForest(**kwargs).fit(np.zeros((10, 2)) + np.arange(10)[:, None])


def test_input_checks():
    model = IsolationForest(random_state=0)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.score_samples(np.zeros((1, 2)))
    with pytest.raises(NotFittedError):
        model.get_state()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        model.fit(np.arange(5.0))
    with pytest.raises(ValueError, match="0 sample"):
        model.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        model.fit(np.ones((4, 2), dtype=complex))
    with pytest.raises(TypeError, match="dense data is required"):
        from scipy import sparse

        model.fit(sparse.csr_matrix(np.eye(4)))
    model.fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but IsolationForest is expecting 2"):
        model.score_samples(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.score_samples(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        model.predict(np.zeros(2))


def test_constant_data_gives_single_leaf_trees():
    model = IsolationForest(n_estimators=3, random_state=0).fit(np.ones((30, 2)))
    assert set(model.get_state().kinds.tolist()) == {LEAF}
    scores = model.score_samples(np.array([[1.0, 1.0], [5.0, 5.0]]))
    assert scores[0] == scores[1]


def test_sorted_quantiles_match_numpy():
    from adsentinel.detect.forest import sorted_quantiles

    values = np.random.default_rng(0).normal(size=97)
    q = np.linspace(0, 1, 101)
    np.testing.assert_allclose(sorted_quantiles(np.sort(values), q), np.quantile(values, q))


def test_stream_scoring_equals_decoded_scoring():
    X = np.random.default_rng(10).normal(size=(90, 8))
    rows = np.random.default_rng(11).normal(size=(40, 8)) * 2
    model = IsolationForest(random_state=5).fit(X)
    state = model.get_state()
    fresh = IsolationForest.from_state(state)
    few = np.vstack([fresh.score_samples(rows[i:i + 1]) for i in range(len(rows))]).ravel()
    many = fresh.score_samples(rows)  # more than _STREAM_SCORING_ROWS: decoded arrays
    assert len(rows) > forest_estimator._STREAM_SCORING_ROWS
    np.testing.assert_array_equal(few, many)
    # blocks of the batch walker: a batch longer than one block, and its tail
    long = np.random.default_rng(12).normal(size=(700, 8)) * 2
    np.testing.assert_array_equal(
        fresh.score_samples(long),
        np.concatenate([fresh.score_samples(long[i:i + 10]) for i in range(0, 700, 10)]))


# --- the scikit-learn estimator contract ---------------------------------------------------------


def test_passes_sklearn_check_estimator():
    """Every check of scikit-learn's own suite passes on the class itself (none expected to
    fail, so no ``expected_failed_checks``)."""
    results = check_estimator(IsolationForest(), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    assert len(results) >= 40
    assert failed == {}


def test_clone_pipeline_and_params():
    X = np.random.default_rng(13).normal(size=(200, 4))
    model = IsolationForest(n_estimators=20, random_state=3)
    assert model.get_params() == {"n_estimators": 20, "max_samples": "auto",
                                  "contamination": "auto", "random_state": 3}
    copy = clone(model).set_params(n_estimators=30)
    assert copy.n_estimators == 30 and not hasattr(copy, "offset_")
    pipeline = make_pipeline(StandardScaler(), model).fit(X)
    scaled = StandardScaler().fit(X).transform(X)
    np.testing.assert_array_equal(pipeline.score_samples(X),
                                  clone(model).fit(scaled).score_samples(scaled))


@pytest.mark.parametrize("n_rows", [1, 16, 17, 300])
def test_scoring_leaves_the_estimator_unchanged(n_rows):
    """Both scoring paths (streams for a few rows, decoded trees for more) keep no cache."""
    X = np.random.default_rng(14).normal(size=(300, 5))
    model = IsolationForest(n_estimators=10, random_state=0).fit(X)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in model.__dict__.items()}
    model.predict(X[:n_rows])
    model.score_samples(X[:n_rows])
    assert model.__dict__.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(model.__dict__[key], value, err_msg=key)


def test_feature_names_from_a_dataframe_are_checked():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.random.default_rng(15).normal(size=(50, 3)), columns=["a", "b", "c"])
    model = IsolationForest(n_estimators=10, random_state=0).fit(frame)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(model.score_samples(frame), model.score_samples(frame.values))
    with pytest.raises(ValueError, match="feature names"):
        model.score_samples(frame[["c", "b", "a"]])
    model.fit(frame.values)  # refitting on an array forgets the names
    assert not hasattr(model, "feature_names_in_")


# --- same trees and scores as every model stored so far -----------------------------------------

#: sha256 prefixes of the streams and of the scores. The streams' are ENGINE_VERSION "1" as it
#: was before the estimator became a package (commit 378fc47): a change there changes stored
#: models. The scores' were recomputed when the last steps of scoring (c(n)'s ``log``, the final
#: ``2 ** -x``) moved from numpy's ufuncs, which numpy picks by CPU (AVX-512 or not) and which
#: differed in the last bit between machines, to the C library's ``log`` and ``pow``: the same
#: trees now score the same, to the bit, on every machine.
GOLDEN = {
    "entity": ((90, 8, "auto"), "312b7a2c2ac15cff6bec02e9", "2842a38286dfa4e7ee263823"),
    "subsampled": ((700, 5, "auto"), "16f62301e81daacf2fa5e0e0", "3895f78307c1f85cbd8b8eb4"),
    "wider": ((300, 40, 128), "c5295576fe0c4db29b0a5fb0", "44db8c820cc4922519e9fce3"),
}


def test_trees_and_scores_identical_to_engine_version_1():
    rng = np.random.default_rng(123)
    for name, ((n, d, max_samples), streams_digest, scores_digest) in GOLDEN.items():
        X = rng.normal(size=(n, d))
        X[:5] += 4
        model = IsolationForest(random_state=17, max_samples=max_samples).fit(X)
        state = model.get_state()
        digest = hashlib.sha256()
        for stream in (state.kinds, state.codes, state.sizes):
            digest.update(np.ascontiguousarray(stream).tobytes())
        scores = model.score_samples(X)
        assert digest.hexdigest()[:24] == streams_digest, name
        assert hashlib.sha256(scores.tobytes()).hexdigest()[:24] == scores_digest, name
        few = np.concatenate([model.score_samples(X[i:i + 1]) for i in range(10)])
        np.testing.assert_array_equal(few, scores[:10])


# --- any number of features ----------------------------------------------------------------------


def _wide_set(n=452, d=274, seed=16):
    """The shape of ODDS arrhythmia (452 x 274, 15 % outliers): a few informative columns among
    many noisy ones, outliers shifted on some of the informative ones."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.zeros(n, dtype=int)
    outliers = rng.choice(n, size=int(0.15 * n), replace=False)
    y[outliers] = 1
    informative = rng.choice(d, size=30, replace=False)
    X[np.ix_(outliers, informative)] += rng.choice([-2.5, 2.5], size=(outliers.size, 30))
    return X, y


# The wide tests are marked slow: they compile the kernels for uint16 split kinds (~30 s with a
# cold numba cache, well under a second with a warm one).


@pytest.mark.slow
def test_more_than_255_features_fit_score_and_match_sklearn():
    X, y = _wide_set()
    ours = [IsolationForest(random_state=s).fit(X) for s in range(3)]
    assert ours[0].get_state().kinds.dtype == np.uint16
    assert int(ours[0].get_state().kinds[ours[0].get_state().kinds < 65535].max()) > 255
    auc = np.mean([roc_auc_score(y, -m.score_samples(X)) for m in ours])
    reference = np.mean([
        roc_auc_score(y, -SklearnIsolationForest(random_state=s).fit(X).score_samples(X))
        for s in range(3)
    ])
    assert auc > 0.8
    assert abs(auc - reference) <= 0.02, (auc, reference)
    copy = IsolationForest.from_state(ours[0].get_state())
    np.testing.assert_array_equal(copy.score_samples(X[:5]), ours[0].score_samples(X[:5]))
    np.testing.assert_array_equal(copy.score_samples(X), ours[0].score_samples(X))


@pytest.mark.slow
def test_255_and_256_features_take_the_narrow_and_the_wide_kinds():
    rng = np.random.default_rng(17)
    narrow = IsolationForest(n_estimators=5, random_state=0).fit(rng.normal(size=(40, 255)))
    wide = IsolationForest(n_estimators=5, random_state=0).fit(rng.normal(size=(40, 256)))
    assert narrow.get_state().kinds.dtype == np.uint8
    assert wide.get_state().kinds.dtype == np.uint16
    state = wide.get_state()
    with pytest.raises(ValueError, match="kinds of dtype uint8, a model of 256 features stores"):
        IsolationForest.from_state(ForestState(**{**state.__dict__,
                                                  "kinds": state.kinds.astype(np.uint8)}))


@pytest.mark.slow
def test_wide_model_round_trips_through_the_model_store(tmp_path):
    from adsentinel.model_store.store import ModelMetadata, ModelStore, load_signing_key

    X, _ = _wide_set(n=120, d=300)
    model = IsolationForest(n_estimators=20, random_state=1).fit(X)
    store = ModelStore(tmp_path / "models", load_signing_key(tmp_path / "models"), cache=None)
    metadata = ModelMetadata(
        account_id=1, entity_type="ad", entity_id="wide",
        feature_names=tuple(f"f{i}" for i in range(300)), n_samples=120,
        training_first_day="2026-01-01", training_last_day="2026-04-30",
        score_quantiles=tuple(np.quantile(model.training_scores_, np.linspace(0, 1, 101))),
    )
    store.save(model, metadata)
    loaded = store.load(1, "ad", "wide").model
    assert loaded.get_state().kinds.dtype == np.uint16
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.score_samples(X[:3]), model.score_samples(X[:3]))


def test_one_training_row_gives_neutral_scores():
    """One row per tree isolates nothing: every score is the paper's neutral 0.5, not NaN."""
    model = IsolationForest(n_estimators=5, random_state=0).fit(np.array([[1.0, 2.0]]))
    scores = model.score_samples(np.array([[1.0, 2.0], [50.0, -50.0]]))
    np.testing.assert_array_equal(scores, [-0.5, -0.5])
    np.testing.assert_array_equal(model.training_scores_, [-0.5])
