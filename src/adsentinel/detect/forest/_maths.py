"""Maths shared by growing, decoding and scoring: c(n), threshold codes, the random stream.

Every compiled function here is a small ``inline="always"`` kernel: numba copies it into its
callers, so it costs no call. numba's on-disk cache does not follow imports, so a change to a
kernel here must come with a change of :data:`ENGINE_VERSION` (the trees change) or a clean of
``__pycache__`` (they do not).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

ENGINE_NAME = "adsentinel-iforest"
ENGINE_VERSION = "1"  # bump when the fitted trees for a given seed or the encoding change

MAX_CODE = 65535  # code q in 0..MAX_CODE sits at lo + (hi - lo) * (q + 1) / (MAX_CODE + 2)
LEVELS_PLUS = float(MAX_CODE + 2)
EULER_GAMMA = np.euler_gamma

_U64 = np.uint64
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: the undo log of a bounding box: the feature of each saved bound, its lower and upper bound
BoxLog = tuple[IntArray, FloatArray, FloatArray]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def average_path_length_scalar(n: float) -> float:
    """Expected path length of an unsuccessful BST search among ``n`` points (sklearn's c(n))."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1.0) + 0.5772156649015329) - 2.0 * (n - 1.0) / n


@njit(cache=True, nogil=True)
def scores_from_depth(mean_depth: FloatArray, expected: float) -> FloatArray:
    """``-2 ** (-mean_depth / expected)`` element by element with the C library's ``pow``, as
    :data:`LEAF_C` uses its ``log``: the same score on every machine, to the last bit."""
    out = np.empty(mean_depth.shape[0])
    for i in range(mean_depth.shape[0]):
        out[i] = -math.pow(2.0, -mean_depth[i] / expected)
    return out


def average_path_length(n_samples_leaf: npt.ArrayLike) -> FloatArray:
    """Vectorised c(n) for an array of leaf sizes (same values as sklearn's helper)."""
    n = np.asarray(n_samples_leaf, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return out


#: c(size) of every storable leaf size (uint8), with the C library's ``log`` as the scalar c(n)
#: uses: numpy's vectorised ``log`` is chosen by CPU (AVX-512 or not) and can differ in the last
#: bit, and a model must score the same on every machine.
LEAF_C = np.array([average_path_length_scalar(float(size)) for size in range(256)])


@njit(inline="always", nogil=True)
def threshold(lo: float, hi: float, code: float) -> float:
    """The split value that threshold ``code`` stands for inside the box ``[lo, hi]``."""
    return lo + (hi - lo) * ((code + 1.0) / LEVELS_PLUS)


@njit(inline="always", nogil=True)
def next_u64(state: npt.NDArray[np.uint64]) -> np.uint64:
    """splitmix64: advance ``state[0]`` and return the next 64 random bits."""
    state[0] += GOLDEN
    z: np.uint64 = state[0]
    z = (z ^ (z >> _U64(30))) * MIX1
    z = (z ^ (z >> _U64(27))) * MIX2
    return z ^ (z >> _U64(31))


@njit(inline="always", nogil=True)
def uniform(state: npt.NDArray[np.uint64]) -> float:
    """A float in [0, 1) with 53 random bits."""
    return (next_u64(state) >> _U64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always", nogil=True)
def below(state: npt.NDArray[np.uint64], n: int) -> int:
    """An integer in [0, n)."""
    return min(int(uniform(state) * n), n - 1)


@njit(inline="always", nogil=True)
def save_bounds(lo: FloatArray, hi: FloatArray, feature: int,
                log: BoxLog, n_log: int) -> int:
    """Append ``feature``'s current bounds to the box log ``(features, los, his)``."""
    log[0][n_log] = feature
    log[1][n_log] = lo[feature]
    log[2][n_log] = hi[feature]
    return n_log + 1


@njit(inline="always", nogil=True)
def restore_bounds(lo: FloatArray, hi: FloatArray, log: BoxLog,
                   n_log: int, mark: int) -> int:
    """Pop the box log back to ``mark`` entries, restoring the bounds (no branch per entry)."""
    while n_log > mark:
        n_log -= 1
        f = log[0][n_log]
        lo[f] = log[1][n_log]
        hi[f] = log[2][n_log]
    return n_log


@njit(inline="always", nogil=True)
def box_log(size: int) -> BoxLog:
    """An empty box log of ``size`` entries: ``(features, los, his)``."""
    return np.empty(size, np.int64), np.empty(size), np.empty(size)
