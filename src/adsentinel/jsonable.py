"""Values made ready for JSON: what a task result or a stored JSON column may hold."""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np


def json_ready(value: Any) -> Any:
    """``value`` with mapping keys as strings, sequences as lists, numpy scalars as Python ones,
    non-finite floats as ``None`` (JSON has no NaN) and anything else unknown as its text."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) or value is None:
        return value
    return str(value)


@overload
def finite_or(value: float | None, default: float) -> float: ...
@overload
def finite_or(value: float | None, default: None = None) -> float | None: ...
def finite_or(value: float | None, default: float | None = None) -> float | None:
    """``value`` as a float when it is a finite number, else ``default`` (JSON has no NaN)."""
    if value is None:
        return default
    number = float(value)
    return number if math.isfinite(number) else default
