"""Scoring many rows: decode the streams into node arrays once, then walk them a block at a time.

The decoded trees are branch-free: a split ``i`` sends a row to ``children[i, x > threshold]``
and a leaf points to itself (both children are the leaf), so every row of a block takes the same
number of steps through a tree (the tree's depth) and the rows of a block are walked level by
level, independent of each other, which keeps the processor busy instead of waiting on one
row's next node. Trees are walked one after the other over a block of rows, so a tree stays in
the cache while the block goes through it. A row's depths are summed over the trees in the same
order as :func:`adsentinel.detect.forest._streams.stream_path_length`, so both give identical
scores.
"""

from __future__ import annotations

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
from adsentinel.detect.forest._streams import STREAM_SCORING_ROWS, Kinds, stream_path_length

_BLOCK_ROWS = 256  # rows walked together through one tree

#: the scratch arrays of decoding a tree: the stack's nodes, depths and box-log marks, the box log
_DecodeWork = tuple[IntArray, IntArray, IntArray, BoxLog]
#: decoded trees: split feature, threshold, children, leaf value per node; depth per tree
DecodedTrees = tuple[npt.NDArray[np.int32], FloatArray, npt.NDArray[np.int32],
                     FloatArray, IntArray]


@njit(inline="always", nogil=True)
def _decode_leaf(pos: int, depth: int, size: int, children: npt.NDArray[np.int32],
                 value: FloatArray, leaf_c: FloatArray) -> None:
    """A leaf: its isolation depth, and both children pointing back to itself."""
    value[pos] = depth + leaf_c[size]
    children[pos, 0] = pos
    children[pos, 1] = pos


@njit(inline="always", nogil=True)
def _decode_tree(kinds: Kinds, codes: npt.NDArray[np.uint16], sizes: npt.NDArray[np.uint8],
                 start: IntArray, lo: FloatArray, hi: FloatArray, work: _DecodeWork,
                 feature: npt.NDArray[np.int32], thresholds: FloatArray,
                 children: npt.NDArray[np.int32], value: FloatArray, leaf_c: FloatArray,
                 leaf: int) -> int:
    """Decode the tree at stream offsets ``start`` into the node arrays; returns its depth.

    ``(lo, hi)`` is the root box; it is narrowed along the walk and restored at the end.
    """
    stack_node, stack_depth, stack_mark, log = work
    pos, i_code, i_size = start[0], start[1], start[2]
    depth = 0
    deepest = 0
    top = -1
    n_log = 0
    while True:
        kind = kinds[pos]
        if kind == leaf:
            _decode_leaf(pos, depth, sizes[i_size], children, value, leaf_c)
            i_size += 1
            deepest = max(deepest, depth)
            pos += 1
            if top < 0:
                break
            parent = stack_node[top]  # the next node is the right child of the parent on top
            children[parent, 1] = pos
            depth = stack_depth[top]
            n_log = restore_bounds(lo, hi, log, n_log, stack_mark[top])
            n_log = save_bounds(lo, hi, feature[parent], log, n_log)
            lo[feature[parent]] = thresholds[parent]
            top -= 1
            continue
        cut = threshold(lo[kind], hi[kind], codes[i_code])
        i_code += 1
        feature[pos] = kind
        thresholds[pos] = cut
        children[pos, 0] = pos + 1
        top += 1
        stack_node[top], stack_depth[top], stack_mark[top] = pos, depth + 1, n_log
        n_log = save_bounds(lo, hi, kind, log, n_log)
        hi[kind] = cut
        depth += 1
        pos += 1
    restore_bounds(lo, hi, log, n_log, 0)
    return deepest


@njit(cache=True, nogil=True)
def decode_forest(kinds: Kinds, codes: npt.NDArray[np.uint16], sizes: npt.NDArray[np.uint8],
                  bounds: FloatArray, starts: IntArray, max_depth: int, leaf_c: FloatArray,
                  leaf: int) -> DecodedTrees:
    """Node arrays ``(feature, thresholds, children, value, tree_depth)`` of validated streams.

    ``feature[i]``/``thresholds[i]`` are node ``i``'s split (0 at a leaf), ``children[i]`` its
    left and right child (itself at a leaf), ``value[i]`` a leaf's depth + c(size); a tree
    starts at node ``starts[t, 0]`` and is ``tree_depth[t]`` levels deep. Requires streams that
    passed :func:`adsentinel.detect.forest._streams.tree_starts`.
    """
    n_nodes = kinds.shape[0]
    n_trees = starts.shape[0]
    feature = np.zeros(n_nodes, np.int32)
    thresholds = np.zeros(n_nodes)
    children = np.empty((n_nodes, 2), np.int32)
    value = np.zeros(n_nodes)
    tree_depth = np.empty(n_trees, np.int64)
    slots = max_depth + 1
    work = (np.empty(slots, np.int64), np.empty(slots, np.int64), np.empty(slots, np.int64),
            box_log(slots))
    lo = bounds[:, 0].copy()
    hi = bounds[:, 1].copy()
    for t in range(n_trees):
        tree_depth[t] = _decode_tree(kinds, codes, sizes, starts[t], lo, hi, work, feature,
                                     thresholds, children, value, leaf_c, leaf)
    return feature, thresholds, children, value, tree_depth


@njit(inline="always", nogil=True)
def _walk_block(X: FloatArray, first: int, n_rows: int, node: IntArray, root: int, levels: int,
                feature: npt.NDArray[np.int32], thresholds: FloatArray,
                children: npt.NDArray[np.int32]) -> None:
    """Move rows ``first .. first + n_rows`` of ``X`` from ``root`` down ``levels`` levels."""
    for r in range(n_rows):
        node[r] = root
    for _ in range(levels):
        for r in range(n_rows):
            i = node[r]
            node[r] = children[i, int(X[first + r, feature[i]] > thresholds[i])]


@njit(cache=True, nogil=True)
def batch_path_length(X: FloatArray, feature: npt.NDArray[np.int32], thresholds: FloatArray,
                      children: npt.NDArray[np.int32], value: FloatArray, roots: IntArray,
                      tree_depth: IntArray) -> FloatArray:
    """Mean isolation depth of each row of ``X`` over the decoded trees (see the module doc)."""
    n = X.shape[0]
    n_trees = roots.shape[0]
    out = np.empty(n)
    node = np.empty(_BLOCK_ROWS, np.int64)
    total = np.empty(_BLOCK_ROWS)
    for first in range(0, n, _BLOCK_ROWS):
        n_rows = min(_BLOCK_ROWS, n - first)
        total[:n_rows] = 0.0
        for t in range(n_trees):
            _walk_block(X, first, n_rows, node, roots[t], tree_depth[t], feature, thresholds,
                        children)
            for r in range(n_rows):
                total[r] += value[node[r]]
        for r in range(n_rows):
            out[first + r] = total[r] / n_trees
    return out


@njit(cache=True, nogil=True)
def forest_mean_depth(X: FloatArray, kinds: Kinds, codes: npt.NDArray[np.uint16],
                      sizes: npt.NDArray[np.uint8], bounds: FloatArray, starts: IntArray,
                      max_depth: int, leaf_c: FloatArray, leaf: int) -> FloatArray:
    """Mean isolation depth of each row of ``X`` over one forest's validated streams: walks the
    streams for up to :data:`~adsentinel.detect.forest._streams.STREAM_SCORING_ROWS` rows (a
    fraction of one decode each), else decodes them and walks blocks of rows. Both give the
    same depths; this is the one choice every scorer of a forest makes."""
    if X.shape[0] <= STREAM_SCORING_ROWS:
        return stream_path_length(X, kinds, codes, sizes, bounds, starts, leaf_c, leaf)
    feature, thresholds, children, value, tree_depth = decode_forest(
        kinds, codes, sizes, bounds, starts, max_depth, leaf_c, leaf)
    return batch_path_length(X, feature, thresholds, children, value, starts[:, 0].copy(),
                             tree_depth)
