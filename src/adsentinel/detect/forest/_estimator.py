"""The estimator: :class:`IsolationForest` with scikit-learn's contract, and its plain state."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import validate_data

from adsentinel.detect.forest._batch import forest_mean_depth
from adsentinel.detect.forest._builder import grow_forest
from adsentinel.detect.forest._maths import (
    LEAF_C,
    FloatArray,
    IntArray,
    average_path_length_scalar,
    scores_from_depth,
)
from adsentinel.detect.forest._streams import (
    PROBLEMS,
    STREAM_SCORING_ROWS,
    Kinds,
    kinds_dtype,
    leaf_marker,
    tree_starts,
)

__all__ = ["ForestState", "IsolationForest", "sorted_quantiles"]

#: what seeds the trees, as in sklearn: None (fresh entropy), an int, a RandomState or a Generator
RandomSeed = int | np.random.RandomState | np.random.Generator | None

_STREAM_SCORING_ROWS = STREAM_SCORING_ROWS
_NOT_FITTED = ("This IsolationForest instance is not fitted yet. Call 'fit' with appropriate "
               "arguments before using this estimator.")


@dataclass(frozen=True)
class ForestState:
    """Everything a fitted :class:`IsolationForest` is, as plain values and arrays.

    ``kinds`` (uint8 for up to 255 features, wider beyond: see
    :func:`adsentinel.detect.forest._streams.kinds_dtype`), ``codes`` (uint16) and ``sizes``
    (uint8) are the preorder streams; ``bounds`` is the ``(n_features, 2)`` float64 box of the
    training data.
    """

    n_estimators: int
    max_samples: int
    n_features: int
    offset: float
    bounds: np.ndarray
    kinds: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return int(self.bounds.nbytes + self.kinds.nbytes + self.codes.nbytes + self.sizes.nbytes)


def sorted_quantiles(sorted_values: npt.ArrayLike, probabilities: npt.ArrayLike) -> FloatArray:
    """``np.quantile(values, probabilities)`` (linear method) of already sorted values, fast."""
    values = np.asarray(sorted_values, dtype=np.float64)
    position = np.asarray(probabilities, dtype=np.float64) * (values.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, values.size - 1)
    return values[below] + (values[above] - values[below]) * (position - below)


def _max_depth(max_samples: int) -> int:
    return math.ceil(math.log2(max(max_samples, 2)))


def _seed_from(random_state: object) -> int:
    """A 64-bit seed from sklearn-style ``random_state`` (None, int, RandomState or Generator)."""
    if random_state is None:
        return int.from_bytes(os.urandom(8), "little")
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state!r}")
        return int(random_state) & 0xFFFFFFFFFFFFFFFF
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise ValueError(
        "random_state must be None, an int, a numpy RandomState or Generator, "
        f"got {random_state!r}"
    )


def _checked_n_estimators(value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"n_estimators must be a positive integer, got {value!r}")
    return int(value)


def _checked_max_samples(value: object, n: int) -> int:
    """Rows drawn per tree for ``n`` training rows."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"max_samples must be 'auto', an int or a float, got {value!r}")
        return min(256, n)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"max_samples must be a positive integer, got {value!r}")
        return min(int(value), n)
    if isinstance(value, numbers.Real):
        share = float(value)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"max_samples must be in (0, 1], got {value!r}")
        return max(1, int(share * n))
    raise ValueError(f"max_samples must be 'auto', an int or a float, got {value!r}")


def _check_contamination(value: object) -> None:
    if isinstance(value, str) and value == "auto":
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 < float(value) <= 0.5:
        return
    raise ValueError(f"contamination must be 'auto' or in (0, 0.5], got {value!r}")


# scikit-learn ships no type information, so its base classes are Any to mypy
class IsolationForest(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Isolation Forest anomaly detector with scikit-learn's interface and sign conventions.

    A scikit-learn estimator (``get_params``, ``clone``, pipelines): ``__init__`` only stores
    the parameters, :meth:`fit` validates and learns, learned state ends in ``_``.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees.
    max_samples : "auto", int or float, default="auto"
        Rows drawn (without replacement) to grow each tree: ``"auto"`` is ``min(256, n_samples)``,
        an int is a count (capped at ``n_samples``), a float in ``(0, 1]`` a fraction.
    contamination : "auto" or float, default="auto"
        Sets :attr:`offset_`, the cut between inliers and outliers used by
        :meth:`decision_function` and :meth:`predict`: ``"auto"`` gives ``-0.5`` as in the
        original paper; a float in ``(0, 0.5]`` makes that fraction of the training rows outliers.
    random_state : None, int, RandomState or Generator, default=None
        Seed of the subsampling and of the splits. The same seed and data give the same trees.

    Attributes
    ----------
    n_estimators_ : int
    max_samples_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Set when ``X`` given to :meth:`fit` has string column names (a DataFrame).
    offset_ : float
    bounds_ : ndarray of shape (n_features, 2)
        Range of each feature in the training data; the root box of every tree.
    split_kinds_, split_codes_, leaf_sizes_ : ndarray
        The trees as preorder streams (see :class:`ForestState`).
    tree_starts_ : ndarray of shape (n_estimators, 3)
        Where each tree starts in the three streams (checked when the streams are set).
    training_scores_ : ndarray of shape (n_samples,)
        :meth:`score_samples` of the training rows (set by :meth:`fit` only, not by
        :meth:`from_state`), e.g. to calibrate scores onto a common scale.
    """

    def __init__(self, n_estimators: int = 100, max_samples: int | float | str = "auto",
                 contamination: float | str = "auto", random_state: RandomSeed = None) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.random_state = random_state

    # -- fitting --

    def fit(self, X: npt.ArrayLike, y: object = None) -> IsolationForest:
        """Grow the forest on ``X`` of shape (n_samples, n_features); ``y`` is ignored.

        Returns
        -------
        self : IsolationForest
        """
        X = self._validated_rows(X, reset=True)
        n, d = X.shape
        n_estimators = _checked_n_estimators(self.n_estimators)
        max_samples = _checked_max_samples(self.max_samples, n)
        _check_contamination(self.contamination)
        bounds = np.column_stack([X.min(axis=0), X.max(axis=0)])
        dtype = kinds_dtype(d)
        kinds = np.empty(n_estimators * (2 * max_samples - 1), dtype)
        n_kinds, codes, sizes, starts, depth_sum, _ = grow_forest(
            np.ascontiguousarray(X.T), np.uint64(_seed_from(self.random_state)), n_estimators,
            max_samples, _max_depth(max_samples), bounds, kinds, leaf_marker(dtype),
        )
        self._set_fitted(n_estimators, max_samples, d, -0.5, bounds, kinds[:n_kinds].copy(),
                         codes, sizes, starts)
        if max_samples == n:  # every tree holds every row: the training scores are known already
            self.training_scores_ = self._scores_from_depth(depth_sum / n_estimators)
        else:
            self.training_scores_ = self.score_samples(X)
        if self.contamination != "auto":
            self.offset_ = float(sorted_quantiles(np.sort(self.training_scores_),
                                                  [self.contamination])[0])
        return self

    def _set_fitted(self, n_estimators: int, max_samples: int, n_features: int, offset: float,
                    bounds: FloatArray, kinds: Kinds, codes: npt.NDArray[np.uint16],
                    sizes: npt.NDArray[np.uint8], starts: IntArray | None = None) -> None:
        """Set the learned attributes. Streams of unknown origin (``starts`` not given) are
        checked first: raises ``ValueError`` if they are malformed."""
        if starts is None:
            status, starts = tree_starts(kinds, codes.size, sizes.size, n_features, n_estimators,
                                         _max_depth(max_samples), leaf_marker(kinds.dtype))
            if status:
                raise ValueError(f"malformed forest state: {PROBLEMS[status]}")
        self.n_estimators_ = n_estimators
        self.max_samples_ = max_samples
        self.n_features_in_ = n_features
        self.offset_ = float(offset)
        self.bounds_ = bounds
        self.split_kinds_ = kinds
        self.split_codes_ = codes
        self.leaf_sizes_ = sizes
        self.tree_starts_ = starts

    # -- scoring --

    def score_samples(self, X: npt.ArrayLike) -> FloatArray:
        """Anomaly score of each row of ``X``, in ``[-1, 0]``: the lower, the more abnormal.

        This is the opposite of the paper's score ``2 ** (-E[h(x)] / c(max_samples))``, as in
        sklearn. Shape (n_samples,).
        """
        return self._scores_from_depth(self._mean_depth(self._validated_rows(X)))

    def decision_function(self, X: npt.ArrayLike) -> FloatArray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int_]:
        """``-1`` for each outlier row of ``X`` and ``1`` for each inlier, as sklearn."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def _mean_depth(self, X: FloatArray) -> FloatArray:
        """Mean isolation depth of each row (see :func:`._batch.forest_mean_depth`; decoding,
        when it does, is per call, so scoring never changes the estimator)."""
        depth: FloatArray = forest_mean_depth(
            X, self.split_kinds_, self.split_codes_, self.leaf_sizes_, self.bounds_,
            self.tree_starts_, _max_depth(self.max_samples_), LEAF_C,
            leaf_marker(self.split_kinds_.dtype))
        return depth

    def _scores_from_depth(self, mean_depth: FloatArray) -> FloatArray:
        expected = average_path_length_scalar(self.max_samples_)
        if expected == 0.0:  # one row per tree: no split, nothing is isolated sooner than another
            return np.full(mean_depth.shape, -0.5)
        return scores_from_depth(np.ascontiguousarray(mean_depth, dtype=np.float64), expected)

    def _validated_rows(self, X: npt.ArrayLike, *, reset: bool = False) -> FloatArray:
        """``X`` as a C-contiguous float64 array, checked as scikit-learn's ``validate_data``
        does: to fit (``reset``, which sets ``n_features_in_``), or to score with a fitted model.

        A finite, non-empty float64 ndarray (of the fitted width, without feature names) passes
        straight through, as ``validate_data`` would pass it, at a fraction of its cost (the
        hourly path scores one row per call); anything else goes through ``validate_data``,
        which converts it or raises its error.
        """
        if not reset and not hasattr(self, "tree_starts_"):
            raise NotFittedError(_NOT_FITTED)
        if (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2 and X.size > 0
                and (reset or (X.shape[1] == self.n_features_in_
                               and not hasattr(self, "feature_names_in_")))
                and np.isfinite(X).all()):
            if reset:
                self.n_features_in_ = X.shape[1]
                self.__dict__.pop("feature_names_in_", None)
            return X if X.flags.c_contiguous else np.ascontiguousarray(X)
        return np.ascontiguousarray(validate_data(self, X, dtype=np.float64, reset=reset))

    # -- state --

    def get_state(self) -> ForestState:
        """The fitted forest as a :class:`ForestState` (arrays are shared, do not modify)."""
        if not hasattr(self, "tree_starts_"):
            raise NotFittedError(_NOT_FITTED)
        return ForestState(
            n_estimators=self.n_estimators_,
            max_samples=self.max_samples_,
            n_features=self.n_features_in_,
            offset=self.offset_,
            bounds=self.bounds_,
            kinds=self.split_kinds_,
            codes=self.split_codes_,
            sizes=self.leaf_sizes_,
        )

    @classmethod
    def from_state(cls, state: ForestState) -> IsolationForest:
        """A fitted forest from a :class:`ForestState`; raises ``ValueError`` if it is malformed."""
        if state.n_estimators < 1 or state.max_samples < 1:
            raise ValueError(
                f"malformed forest state: n_estimators={state.n_estimators!r}, "
                f"max_samples={state.max_samples!r}"
            )
        if state.n_features < 1:
            raise ValueError(f"malformed forest state: n_features={state.n_features!r}")
        bounds = np.ascontiguousarray(state.bounds, dtype=np.float64)
        if bounds.shape != (state.n_features, 2) or not np.isfinite(bounds).all():
            raise ValueError(f"malformed forest state: bounds of shape {bounds.shape}")
        expected = kinds_dtype(state.n_features)
        kinds = np.asarray(state.kinds)
        if kinds.dtype != expected:  # a narrower or wider copy would change what the bytes mean
            raise ValueError(
                f"malformed forest state: kinds of dtype {kinds.dtype}, a model of "
                f"{state.n_features} features stores {expected}"
            )
        streams = [np.ascontiguousarray(kinds, dtype=expected),
                   np.ascontiguousarray(state.codes, dtype=np.uint16),
                   np.ascontiguousarray(state.sizes, dtype=np.uint8)]
        model = cls(n_estimators=state.n_estimators, max_samples=state.max_samples)
        model._set_fitted(state.n_estimators, state.max_samples, state.n_features, state.offset,
                          bounds, *streams)
        return model
