"""The preorder streams a fitted forest is: their element types, their validation, and scoring a
few rows by walking them directly.

A forest is three streams in preorder: ``kinds`` (the split feature of each node, or the leaf
marker), ``codes`` (uint16 threshold code of every split) and ``sizes`` (uint8 training rows per
leaf, capped at 255). ``kinds`` is uint8 for up to 255 features (leaf 255, the encoding of every
model so far), uint16 for up to 65,535 and uint32 beyond; the leaf marker is the type's largest
value. No child pointers are stored: preorder plus the leaf marker is enough to rebuild the trees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from adsentinel.detect.forest._maths import (
    BoxLog,
    FloatArray,
    IntArray,
    box_log,
    restore_bounds,
    save_bounds,
    threshold,
)

LEAF = 255  # leaf marker of uint8 ``kinds`` (models of at most 255 features)

STREAM_SCORING_ROWS = 16  # up to this many rows, score from the streams instead of decoding

_MAX_LEVELS = 64  # no tree is deeper: max_samples < 2 ** 63

PROBLEMS = {
    1: "fewer trees than declared",
    2: "a tree is cut short",
    3: "fewer leaf sizes than leaves",
    4: "a split names a feature the model does not have",
    5: "fewer threshold codes than splits",
    6: "a tree is deeper than max_samples allows",
    7: "bytes left over after the last tree",
}


#: the split kinds of a forest: unsigned integers of :func:`kinds_dtype`
Kinds = npt.NDArray[np.unsignedinteger[Any]]

_KINDS_TYPES: tuple[np.dtype[np.unsignedinteger[Any]], ...] = (
    np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))
_LEAF_OF = {dtype: int(np.iinfo(dtype).max) for dtype in _KINDS_TYPES}


def kinds_dtype(n_features: int) -> np.dtype[np.unsignedinteger[Any]]:
    """The narrowest unsigned type that holds every feature index of the model plus the leaf."""
    for dtype in _KINDS_TYPES:
        if n_features <= _LEAF_OF[dtype]:
            return dtype
    raise ValueError(f"a forest holds at most {_LEAF_OF[_KINDS_TYPES[-1]]} features, "
                     f"got {n_features}")


def leaf_marker(dtype: np.dtype[Any]) -> int:
    """The ``kinds`` value of a leaf in streams of ``dtype`` (its largest value)."""
    return _LEAF_OF[dtype]


@njit(cache=True, nogil=True)
def tree_starts(kinds: Kinds, n_codes: int, n_sizes: int, n_features: int, n_trees: int,
                max_depth: int, leaf: int) -> tuple[int, IntArray]:
    """Check the preorder streams and find where each tree starts in them.

    Returns ``(status, starts)`` with ``starts[t] = (kind, code, size)`` offsets of tree ``t``;
    ``status`` is 0 when well formed, else a :data:`PROBLEMS` key. Reads nothing out of
    bounds, allocates only the result: cheap enough to run on every load.
    """
    n_nodes = kinds.shape[0]
    starts = np.zeros((n_trees, 3), np.int64)
    stack_depth = np.empty(max_depth + 1, np.int64)
    pos = 0
    i_code = 0
    i_size = 0
    for tree in range(n_trees):
        if pos >= n_nodes:
            return 1, starts
        starts[tree, 0], starts[tree, 1], starts[tree, 2] = pos, i_code, i_size
        depth = 0
        top = -1
        while True:
            if pos >= n_nodes:
                return 2, starts
            kind = kinds[pos]
            pos += 1
            if kind == leaf:
                i_size += 1
                if i_size > n_sizes:
                    return 3, starts
                if top < 0:
                    break
                depth = stack_depth[top]
                top -= 1
                continue
            if kind >= n_features:
                return 4, starts
            i_code += 1
            if i_code > n_codes:
                return 5, starts
            if depth >= max_depth:
                return 6, starts
            top += 1
            depth += 1
            stack_depth[top] = depth
    if pos != n_nodes or i_code != n_codes or i_size != n_sizes:
        return 7, starts
    return 0, starts


@njit(inline="always", nogil=True)
def _skip_subtree(kinds: Kinds, pos: int, leaf: int) -> tuple[int, int, int]:
    """Where the subtree starting at ``pos`` ends, with its numbers of splits and leaves."""
    pending = 1
    splits = 0
    while pending > 0:
        if kinds[pos] == leaf:
            pending -= 1
        else:
            pending += 1
            splits += 1
        pos += 1
    return pos, splits, splits + 1


@njit(inline="always", nogil=True)
def _stream_tree_depth(x: FloatArray, kinds: Kinds, codes: npt.NDArray[np.uint16],
                       sizes: npt.NDArray[np.uint8], start: IntArray, lo: FloatArray,
                       hi: FloatArray, log: BoxLog, leaf_c: FloatArray, leaf: int) -> float:
    """Isolation depth (depth + c(leaf size)) of the row ``x`` in the tree at offsets ``start``.

    The box ``(lo, hi)`` is narrowed on the way down and restored from ``log`` before returning.
    """
    pos, i_code, i_size = start[0], start[1], start[2]
    depth = 0
    n_log = 0
    while kinds[pos] != leaf:
        kind = kinds[pos]
        cut = threshold(lo[kind], hi[kind], codes[i_code])
        depth += 1
        n_log = save_bounds(lo, hi, kind, log, n_log)
        if x[kind] <= cut:
            hi[kind] = cut
            pos += 1
            i_code += 1
        else:  # a right turn skips the left subtree, a byte per node
            lo[kind] = cut
            pos, splits, leaves = _skip_subtree(kinds, pos + 1, leaf)
            i_code += 1 + splits
            i_size += leaves
    restore_bounds(lo, hi, log, n_log, 0)
    leaf_depth: float = leaf_c[sizes[i_size]]
    return depth + leaf_depth


@njit(cache=True, nogil=True)
def stream_path_length(X: FloatArray, kinds: Kinds, codes: npt.NDArray[np.uint16],
                       sizes: npt.NDArray[np.uint8], bounds: FloatArray, starts: IntArray,
                       leaf_c: FloatArray, leaf: int) -> FloatArray:
    """Mean isolation depth of each row, walking the preorder streams without decoding them.

    One row costs a fraction of one decode: the fast path for scoring the latest day of an
    entity. Requires streams that passed :func:`tree_starts`.
    """
    n = X.shape[0]
    n_trees = starts.shape[0]
    out = np.empty(n)
    lo = bounds[:, 0].copy()
    hi = bounds[:, 1].copy()
    log = box_log(_MAX_LEVELS)
    for s in range(n):
        total = 0.0
        for t in range(n_trees):
            total += _stream_tree_depth(X[s], kinds, codes, sizes, starts[t], lo, hi, log,
                                        leaf_c, leaf)
        out[s] = total / n_trees
    return out
