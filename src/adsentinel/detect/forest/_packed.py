"""Scoring the rows of many forests in one compiled call: their streams laid end to end.

The hourly cycle scores one or two rows per entity, each with the entity's own forest; one
:meth:`IsolationForest.score_samples` per entity pays Python's checks and numba's dispatch on
every call. :func:`pack_forests` lays the preorder streams of many fitted forests end to end,
with where each forest starts in them (its first node, threshold code, leaf size, tree and
feature), and :func:`score_packed` scores every row with its own forest in one call.

The streams, not decoded node arrays, are what is packed: decoding a forest of 90 training days
costs about 13 walks of one row through its streams and holds 11 times its bytes (82 us against
6.3 us, 193 KB against 17 KB, on ``bench_forest.py``'s forests), so for the rows an entity has
in an hour the streams are the cheaper form (and the one its model file holds). Each forest's
rows go through :func:`~adsentinel.detect.forest._batch.forest_mean_depth`, the function its own
``score_samples`` calls (a forest with many rows is decoded there, inside the call), and the
same ``2 ** (-depth / c(max_samples))``: the scores are identical to the bit.

numba's on-disk cache does not follow calls into other modules: after a change to a kernel of
:mod:`._streams` or :mod:`._batch`, clean ``__pycache__`` (see :mod:`._maths`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from adsentinel.detect.forest._batch import forest_mean_depth
from adsentinel.detect.forest._estimator import IsolationForest, _max_depth
from adsentinel.detect.forest._maths import (
    LEAF_C,
    FloatArray,
    IntArray,
    average_path_length_scalar,
    scores_from_depth,
)
from adsentinel.detect.forest._streams import Kinds, leaf_marker

__all__ = ["PackedForests", "pack_forests", "score_packed"]


@dataclass(frozen=True)
class PackedForests:
    """Fitted forests' streams end to end (built by :func:`pack_forests`).

    Forest ``f`` is ``kinds[streams[f, 0]:streams[f + 1, 0]]``, ``codes[streams[f, 1]:streams[f
    + 1, 1]]`` and ``sizes[streams[f, 2]:streams[f + 1, 2]]``; its trees start at
    ``tree_starts[trees[f]:trees[f + 1]]`` (offsets inside its own streams); its box is
    ``bounds[features[f]:features[f + 1]]``. ``max_depth[f]`` bounds its trees' depth and
    ``expected_depth[f]`` is c(max_samples), the mean depth that scores -0.5. ``kinds`` are of
    the widest type among the forests, whose leaf marker is ``leaf``.
    """

    kinds: Kinds
    codes: npt.NDArray[np.uint16]
    sizes: npt.NDArray[np.uint8]
    bounds: FloatArray
    tree_starts: IntArray
    streams: IntArray
    trees: IntArray
    features: IntArray
    max_depth: IntArray
    expected_depth: FloatArray
    leaf: int

    @property
    def n_forests(self) -> int:
        """How many forests are packed."""
        return int(self.trees.shape[0] - 1)

    @property
    def width(self) -> int:
        """Columns a row of :func:`score_packed` needs: the largest feature count (0: none)."""
        return int(np.diff(self.features).max(initial=0))


def _offsets(counts: Sequence[int]) -> IntArray:
    """``[0, c0, c0 + c1, ...]``: where each of ``counts`` consecutive parts starts, and the end."""
    return np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)


def _widened(kinds: Kinds, dtype: np.dtype[Any]) -> Kinds:
    """``kinds`` as ``dtype`` with the leaf marker of ``dtype`` (a wider type's leaf is larger)."""
    if kinds.dtype == dtype:
        return kinds
    wide: Kinds = kinds.astype(dtype)
    wide[kinds == leaf_marker(kinds.dtype)] = leaf_marker(dtype)
    return wide


def _joined(parts: Sequence[npt.NDArray[Any]], dtype: npt.DTypeLike,
            *row_shape: int) -> npt.NDArray[Any]:
    """``parts`` end to end along their first axis (rows of ``row_shape``), as ``dtype``."""
    if not parts:
        return np.empty((0, *row_shape), dtype)
    return np.ascontiguousarray(np.concatenate(parts), dtype=dtype)


def pack_forests(forests: Sequence[IsolationForest]) -> PackedForests:
    """The streams of fitted ``forests`` end to end, forest ``f`` being ``forests[f]``.

    Raises :class:`sklearn.exceptions.NotFittedError` for a forest that is not fitted.
    """
    for forest in forests:
        if not hasattr(forest, "tree_starts_"):
            forest.get_state()  # raises NotFittedError
    dtype = max((f.split_kinds_.dtype for f in forests), key=lambda kind: kind.itemsize,
                default=np.dtype(np.uint8))
    kinds = [_widened(f.split_kinds_, dtype) for f in forests]
    codes = [f.split_codes_ for f in forests]
    sizes = [f.leaf_sizes_ for f in forests]
    bounds = [f.bounds_ for f in forests]
    starts = [f.tree_starts_ for f in forests]
    max_samples = [f.max_samples_ for f in forests]
    return PackedForests(
        kinds=_joined(kinds, dtype), codes=_joined(codes, np.uint16),
        sizes=_joined(sizes, np.uint8), bounds=_joined(bounds, np.float64, 2),
        tree_starts=_joined(starts, np.int64, 3),
        streams=np.column_stack([_offsets([part.shape[0] for part in stream])
                                 for stream in (kinds, codes, sizes)]),
        trees=_offsets([part.shape[0] for part in starts]),
        features=_offsets([part.shape[0] for part in bounds]),
        max_depth=np.array([_max_depth(n) for n in max_samples], dtype=np.int64),
        expected_depth=np.array([average_path_length_scalar(n) for n in max_samples],
                                dtype=np.float64),
        leaf=leaf_marker(dtype),
    )


def score_packed(packed: PackedForests, X: npt.ArrayLike,
                 forest_of_row: npt.ArrayLike) -> FloatArray:
    """:meth:`IsolationForest.score_samples` of each row of ``X`` by its own forest, in one call.

    Parameters
    ----------
    packed : PackedForests
    X : array-like of shape (n_rows, packed.width), finite
        Row ``r``'s features are its first ``n_features`` columns of forest ``forest_of_row[r]``
        (a forest of fewer features than ``width`` ignores the rest).
    forest_of_row : array-like of int, shape (n_rows,)
        The forest of each row, in ``[0, packed.n_forests)``; a forest may have any number of
        rows, none included, in any order.

    Returns
    -------
    ndarray of shape (n_rows,)
        In ``[-1, 0]``, lower = more abnormal: row ``r``'s score is, to the bit,
        ``forests[forest_of_row[r]].score_samples`` of it.
    """
    rows = np.ascontiguousarray(X, dtype=np.float64)
    owners = np.ascontiguousarray(forest_of_row, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] < packed.width:
        raise ValueError(f"X must have shape (n_rows, {packed.width}), got {rows.shape}")
    if owners.shape != (rows.shape[0],):
        raise ValueError(f"forest_of_row must have shape ({rows.shape[0]},), got {owners.shape}")
    if owners.size and (owners.min() < 0 or owners.max() >= packed.n_forests):
        raise ValueError(f"forest_of_row must be in [0, {packed.n_forests}), got values from "
                         f"{owners.min()} to {owners.max()}")
    if not np.isfinite(rows).all():
        raise ValueError(f"X must be finite, got NaN or infinity in row "
                         f"{int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])}")
    scores: FloatArray = _packed_scores(
        rows, owners, packed.kinds, packed.codes, packed.sizes, packed.bounds, packed.tree_starts,
        packed.streams, packed.trees, packed.features, packed.max_depth, packed.expected_depth,
        LEAF_C, packed.leaf)
    return scores


@njit(cache=True, nogil=True)
def _rows_by_forest(forest_of_row: IntArray, n_forests: int) -> tuple[IntArray, IntArray]:
    """Row indices grouped by forest (in row order within a forest), and where each group
    starts in them (``n_forests + 1`` offsets): a counting sort."""
    first = np.zeros(n_forests + 1, np.int64)
    for r in range(forest_of_row.shape[0]):
        first[forest_of_row[r] + 1] += 1
    for f in range(n_forests):
        first[f + 1] += first[f]
    fill = first[:-1].copy()
    order = np.empty(forest_of_row.shape[0], np.int64)
    for r in range(forest_of_row.shape[0]):
        f = forest_of_row[r]
        order[fill[f]] = r
        fill[f] += 1
    return order, first


@njit(cache=True, nogil=True)
def _packed_scores(X: FloatArray, forest_of_row: IntArray, kinds: Kinds,
                   codes: npt.NDArray[np.uint16], sizes: npt.NDArray[np.uint8], bounds: FloatArray,
                   tree_starts: IntArray, streams: IntArray, trees: IntArray, features: IntArray,
                   max_depth: IntArray, expected_depth: FloatArray, leaf_c: FloatArray,
                   leaf: int) -> FloatArray:
    """Each forest's rows gathered (its own columns), through :func:`forest_mean_depth` and
    the estimator's depth-to-score map, scattered back to the rows' places."""
    order, first = _rows_by_forest(forest_of_row, trees.shape[0] - 1)
    out = np.empty(X.shape[0])
    for f in range(trees.shape[0] - 1):
        rows = order[first[f]:first[f + 1]]
        if rows.shape[0] == 0:
            continue
        n_features = features[f + 1] - features[f]
        own = np.empty((rows.shape[0], n_features))
        for i in range(rows.shape[0]):
            own[i, :] = X[rows[i], :n_features]
        start, end = streams[f], streams[f + 1]
        depth = forest_mean_depth(
            own, kinds[start[0]:end[0]], codes[start[1]:end[1]], sizes[start[2]:end[2]],
            bounds[features[f]:features[f + 1]], tree_starts[trees[f]:trees[f + 1]],
            max_depth[f], leaf_c, leaf)
        if expected_depth[f] == 0.0:  # one row per tree: as the estimator, nothing is isolated
            scores = np.full(rows.shape[0], -0.5)
        else:
            scores = scores_from_depth(depth, expected_depth[f])
        for i in range(rows.shape[0]):
            out[rows[i]] = scores[i]
    return out
