"""Isolation Forest with scikit-learn's contract, compiled with numba, stored in a few KiB.

The algorithm is Liu, Ting & Zhou's (ICDM 2008), as in :class:`sklearn.ensemble.IsolationForest`:
each tree isolates a random subsample of ``max_samples`` rows with random axis-parallel splits
(a random non-constant feature, a threshold drawn uniformly between the node's minimum and
maximum) down to ``ceil(log2(max_samples))`` levels, and a row's anomaly score comes from its
mean path length over the trees. Sign conventions are sklearn's: :meth:`IsolationForest.score_samples`
is in ``[-1, 0]`` and *lower means more abnormal*; :meth:`IsolationForest.decision_function` is
negative for outliers; :meth:`IsolationForest.predict` returns ``-1`` for outliers, ``1`` for inliers.

What differs is the representation, chosen so a per-entity model is small and safe to store:

* Each split threshold is quantised to 16 bits *inside the node's bounding box* (the box the
  ancestors' splits carve out of the training data's range), and the training rows are
  partitioned with the quantised threshold, so the leaf sizes a model stores are exact for the
  thresholds it uses. The box shrinks with depth, so the relative resolution stays fine (8 bits
  cost 0.013 ROC AUC on ODDS cardio; 16 bits are within 0.005 of sklearn on every ODDS set).
* A forest is three preorder streams (split kinds, threshold codes, leaf sizes) plus the
  ``(n_features, 2)`` float64 box of the training data (:class:`ForestState`); no child pointers
  are stored. Any number of features: the kinds are bytes up to 255 features, wider beyond.

The package follows sklearn's builder / splitter split, one step per module:

* :mod:`._maths` -- c(n), threshold codes, the random stream (small inlined kernels);
* :mod:`._builder` -- growing the trees (:func:`._builder.grow_forest`);
* :mod:`._streams` -- the streams' types, their validation, scoring a few rows straight from them;
* :mod:`._batch` -- decoding the streams into node arrays and scoring many rows block by block;
* :mod:`._packed` -- many forests' streams end to end, every row scored by its own forest in
  one call (:func:`pack_forests`, :func:`score_packed`: the hourly cycle's entities at once);
* :mod:`._estimator` -- :class:`IsolationForest` and :class:`ForestState`.

Scoring a few rows walks the streams (the hourly path: one row per entity); scoring more decodes
them per call (scoring never changes the estimator). Both give identical scores. Turning the
state into files belongs to :mod:`adsentinel.model_store.store`. Streams are validated whenever they
are set, so a malformed state raises :class:`ValueError` instead of reading out of bounds.
"""

from adsentinel.detect.forest._estimator import ForestState, IsolationForest, sorted_quantiles
from adsentinel.detect.forest._maths import ENGINE_NAME, ENGINE_VERSION
from adsentinel.detect.forest._packed import PackedForests, pack_forests, score_packed
from adsentinel.detect.forest._streams import LEAF

__all__ = [
    "ENGINE_NAME", "ENGINE_VERSION", "LEAF", "ForestState", "IsolationForest", "PackedForests",
    "pack_forests", "score_packed", "sorted_quantiles",
]
