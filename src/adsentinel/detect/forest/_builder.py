"""Growing the quantised isolation trees, in the manner of sklearn's builder / splitter split.

:func:`grow_forest` draws each tree's subsample and hands it to :func:`_grow_tree`, which grows
one tree in preorder with an explicit stack; each step is a small kernel: pick the split feature
(:func:`_pick_feature`), draw and quantise the cut (:func:`_quantised_cut`), partition the node's
rows (:func:`_partition`), record a leaf (:func:`_record_leaf`). The random draws happen in a
fixed order, so the same seed and data give the same trees (and so the same streams and scores)
as every earlier version of :data:`ENGINE_VERSION` ``"1"``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from adsentinel.detect.forest._maths import (
    LEVELS_PLUS,
    MAX_CODE,
    MIX1,
    BoxLog,
    FloatArray,
    IntArray,
    average_path_length_scalar,
    below,
    box_log,
    next_u64,
    restore_bounds,
    save_bounds,
    threshold,
    uniform,
)
from adsentinel.detect.forest._streams import Kinds

_MAX_STORED_SIZE = 255  # leaf sizes are stored as uint8

#: a tree's stack: each slot's row range start and end, depth, box-log mark, split feature, cut
_GrowStack = tuple[IntArray, IntArray, IntArray, IntArray, IntArray,
                   FloatArray]
#: the scratch arrays of growing a tree: feature order, partition scratch, stack, box log
_GrowWork = tuple[IntArray, IntArray, _GrowStack, BoxLog]


@njit(inline="always", nogil=True)
def _draw_subsample(state: npt.NDArray[np.uint64], rows: IntArray, sample: IntArray, n: int) -> None:
    """Draw ``sample.size`` distinct rows of ``n`` (a partial Fisher-Yates over ``rows``)."""
    for i in range(sample.shape[0]):
        j = i + below(state, n - i)
        rows[i], rows[j] = rows[j], rows[i]
        sample[i] = rows[i]


@njit(inline="always", nogil=True)
def _column_range(column: FloatArray, sample: IntArray, start: int,
                  end: int) -> tuple[float, float]:
    """Minimum and maximum of ``column`` over the rows ``sample[start:end]``."""
    pmin = column[sample[start]]
    pmax = pmin
    for p in range(start + 1, end):
        v = column[sample[p]]
        pmin = min(pmin, v)
        pmax = max(pmax, v)
    return pmin, pmax


@njit(inline="always", nogil=True)
def _pick_feature(XT: FloatArray, sample: IntArray, start: int, end: int, features: IntArray,
                  state: npt.NDArray[np.uint64]) -> tuple[int, float, float]:
    """The first non-constant feature of the node in a random order, with its range, or -1."""
    d = XT.shape[0]
    for k in range(d):
        j = k + below(state, d - k)
        features[k], features[j] = features[j], features[k]
        f = features[k]
        pmin, pmax = _column_range(XT[f], sample, start, end)
        if pmax > pmin:
            return f, pmin, pmax
    return -1, 0.0, 0.0


@njit(inline="always", nogil=True)
def _quantised_cut(state: npt.NDArray[np.uint64], pmin: float, pmax: float, box_lo: float,
                   box_hi: float) -> tuple[int, float]:
    """A uniform cut in ``[pmin, pmax)`` as a threshold code of the box, and the value it means.

    The code moves until the cut separates the node's rows, when one code can.
    """
    t = pmin + uniform(state) * (pmax - pmin)
    # int(): the compiled kernel's integer type stated, as it was when the trees were checked
    code = int(math.floor((t - box_lo) / (box_hi - box_lo) * LEVELS_PLUS)) - 1  # noqa: RUF046
    code = min(max(code, 0), MAX_CODE)
    while code < MAX_CODE and threshold(box_lo, box_hi, code) < pmin:
        code += 1
    while code > 0 and threshold(box_lo, box_hi, code) >= pmax:
        code -= 1
    return code, threshold(box_lo, box_hi, code)


@njit(inline="always", nogil=True)
def _partition(column: FloatArray, sample: IntArray, scratch: IntArray, start: int, end: int,
               cut: float) -> int:
    """Stable branch-free partition of ``sample[start:end]``, rows <= cut first; returns where
    the right part starts."""
    size = end - start
    n_left = 0
    back = size - 1
    for p in range(start, end):
        r = sample[p]
        goes_left = column[r] <= cut
        scratch[n_left] = r
        scratch[back] = r
        n_left += goes_left
        back -= 1 - goes_left
    for p in range(n_left):
        sample[start + p] = scratch[p]
    for p in range(n_left, size):  # the right part was written in reverse
        sample[start + p] = scratch[size - 1 - (p - n_left)]
    return start + n_left


@njit(inline="always", nogil=True)
def _record_leaf(kinds: Kinds, sizes: npt.NDArray[np.uint8], n_kinds: int, n_sizes: int,
                 leaf: int, sample: IntArray, start: int, end: int, depth: int,
                 depth_sum: FloatArray, depth_count: IntArray) -> tuple[int, int]:
    """Write a leaf to the streams and add its isolation depth to each of its training rows."""
    size = min(end - start, _MAX_STORED_SIZE)
    kinds[n_kinds] = leaf
    sizes[n_sizes] = size
    leaf_value = depth + average_path_length_scalar(size)
    for p in range(start, end):
        depth_sum[sample[p]] += leaf_value
        depth_count[sample[p]] += 1
    return n_kinds + 1, n_sizes + 1


@njit(inline="always", nogil=True)  # inlined: a call would count references of ~20 arrays
def _grow_tree(XT: FloatArray, sample: IntArray, state: npt.NDArray[np.uint64], lo: FloatArray,
               hi: FloatArray, max_depth: int, leaf: int, kinds: Kinds,
               codes: npt.NDArray[np.uint16], sizes: npt.NDArray[np.uint8],
               written: tuple[int, int, int], depth_sum: FloatArray,
               depth_count: IntArray, work: _GrowWork) -> tuple[int, int, int]:
    """Grow one tree on the rows in ``sample`` inside the box ``(lo, hi)``, in preorder.

    ``written`` counts the kinds, codes and sizes written so far; returns the new counts (kept in
    locals meanwhile: the compiler cannot keep array elements in registers across the stores).
    The box is changed in place and an undo log restores it when the stack pops back to a
    right child, instead of copying a box per stacked node.
    """
    n_kinds, n_codes, n_sizes = written
    features, scratch, stack, log = work
    stack_start, stack_end, stack_depth, stack_mark, stack_feature, stack_cut = stack
    n_log = 0
    top = 0
    stack_start[0], stack_end[0], stack_depth[0], stack_mark[0] = 0, sample.size, 0, -1
    while top >= 0:
        start, end, depth, mark = stack_start[top], stack_end[top], stack_depth[top], \
            stack_mark[top]
        if mark >= 0:  # a right child: back to the parent's box, then raise lo
            n_log = restore_bounds(lo, hi, log, n_log, mark)
            n_log = save_bounds(lo, hi, stack_feature[top], log, n_log)
            lo[stack_feature[top]] = stack_cut[top]
        f, pmin, pmax = -1, 0.0, 0.0
        if depth < max_depth and end - start > 1:
            f, pmin, pmax = _pick_feature(XT, sample, start, end, features, state)
        if f < 0:
            n_kinds, n_sizes = _record_leaf(kinds, sizes, n_kinds, n_sizes, leaf, sample, start,
                                            end, depth, depth_sum, depth_count)
            top -= 1
            continue
        code, cut = _quantised_cut(state, pmin, pmax, lo[f], hi[f])
        left = _partition(XT[f], sample, scratch, start, end, cut)
        kinds[n_kinds] = f
        n_kinds += 1
        codes[n_codes] = code
        n_codes += 1
        # the right child goes under the left one so that the left is grown first (preorder)
        stack_start[top], stack_depth[top], stack_mark[top], stack_feature[top] = \
            left, depth + 1, n_log, f
        stack_cut[top] = cut
        n_log = save_bounds(lo, hi, f, log, n_log)
        hi[f] = cut
        top += 1
        stack_start[top], stack_end[top], stack_depth[top], stack_mark[top] = \
            start, left, depth + 1, -1
    return n_kinds, n_codes, n_sizes


@njit(cache=True, nogil=True)
def grow_forest(XT: FloatArray, seed: np.uint64, n_trees: int, max_samples: int, max_depth: int,
                bounds: FloatArray, kinds: Kinds, leaf: int,
                ) -> tuple[int, npt.NDArray[np.uint16], npt.NDArray[np.uint8], IntArray,
                           FloatArray, IntArray]:
    """Grow ``n_trees`` quantised isolation trees on ``XT`` (the *transposed* data, (d, n)).

    ``kinds`` is the output buffer of split kinds (its dtype holds ``leaf``, the leaf marker),
    at least ``n_trees * (2 * max_samples - 1)`` long. Returns the number of kinds written, the
    codes and sizes streams, where each tree starts in the three streams (as
    :func:`adsentinel.detect.forest._streams.tree_starts`), and per training row the sum over the
    trees that drew it of its isolation depth (depth + c(leaf size)) with the count of such
    trees: when every tree draws every row (``max_samples == n``) this is the training score at
    no extra cost.
    """
    d, n = XT.shape
    cap = kinds.shape[0]
    codes = np.empty(cap, np.uint16)
    sizes = np.empty(cap, np.uint8)
    written = (0, 0, 0)  # kinds, codes and sizes in the streams so far
    depth_sum = np.zeros(n)
    depth_count = np.zeros(n, np.int64)
    rows = np.arange(n)
    sample = np.empty(max_samples, np.int64)
    slots = max_depth + 2
    stack = (np.empty(slots, np.int64), np.empty(slots, np.int64), np.empty(slots, np.int64),
             np.empty(slots, np.int64), np.empty(slots, np.int64), np.empty(slots))
    work = (np.arange(d), np.empty(max_samples, np.int64), stack, box_log(slots))
    lo = np.empty(d)
    hi = np.empty(d)
    state = np.empty(1, np.uint64)
    starts = np.empty((n_trees, 3), np.int64)
    for tree in range(n_trees):
        starts[tree, 0], starts[tree, 1], starts[tree, 2] = written
        state[0] = seed + np.uint64(tree) * MIX1
        next_u64(state)
        _draw_subsample(state, rows, sample, n)
        lo[:] = bounds[:, 0]
        hi[:] = bounds[:, 1]
        written = _grow_tree(XT, sample, state, lo, hi, max_depth, leaf, kinds, codes, sizes,
                             written, depth_sum, depth_count, work)
    n_kinds, n_codes, n_sizes = written
    return n_kinds, codes[:n_codes].copy(), sizes[:n_sizes].copy(), starts, depth_sum, depth_count
