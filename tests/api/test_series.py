"""The chart series: the detector's own expected values and bands (its statistical walk)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from adsentinel.api.series import expected_by_day
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.statistical import run_statistical_tests


def _daily(days: int, start: date = date(2026, 9, 1)) -> pd.DataFrame:
    rows = [{"date": start + timedelta(days=k), "spend": 100.0 + (k % 7), "impressions": 10_000.0,
             "clicks": 100.0, "leads": 10.0, "reach": 5_000.0} for k in range(days)]
    return prepare_daily_frame(pd.DataFrame(rows))


def test_expected_values_are_the_detectors_walk_forward_tests():
    daily = _daily(40)
    first, last = date(2026, 9, 1), date(2026, 10, 10)
    found = expected_by_day(daily, first, last, z_threshold=3.0, iqr_multiplier=1.5,
                            min_history_days=14, history_days=90)
    assert min(found) == date(2026, 9, 15)  # the first day with 14 days of delivery before it
    day = date(2026, 10, 1)
    position = (day - first).days
    reference = {t.metric: t for t in run_statistical_tests(
        daily.iloc[:position], daily.iloc[position], z_threshold=3.0, iqr_multiplier=1.5)}
    assert {m: t.expected for m, t in found[day].items()} == {
        m: t.expected for m, t in reference.items()}
    assert all(np.isfinite(t.lower) and np.isfinite(t.upper) for t in found[day].values())


def test_a_day_without_delivery_gets_no_expected_value():
    daily = _daily(30)
    daily.loc[25, ["spend", "impressions", "clicks", "leads", "reach"]] = 0.0
    found = expected_by_day(daily, date(2026, 9, 1), date(2026, 9, 30), z_threshold=3.0,
                            iqr_multiplier=1.5, min_history_days=14, history_days=90)
    assert date(2026, 9, 26) not in found and date(2026, 9, 27) in found


def test_series_range_defaults_and_refusals():
    from adsentinel.api.series import series_range
    from adsentinel.errors import AdsentinelError

    assert series_range(None, None, last_day=date(2026, 11, 24)) == (
        date(2026, 9, 26), date(2026, 11, 24))
    assert series_range(None, date(1970, 1, 5), last_day=None) == (
        date(1970, 1, 1), date(1970, 1, 5))  # clipped, never an overflow
    for start, end, message in [(date(2026, 9, 2), date(2026, 9, 1), "after end"),
                                (date(2025, 1, 1), date(2026, 9, 1), "at most 366"),
                                (date(1, 1, 1), None, "out of range"),
                                (None, date(9999, 12, 31), "out of range")]:
        with pytest.raises(AdsentinelError, match=message):
            series_range(start, end, last_day=date(2026, 11, 24))
