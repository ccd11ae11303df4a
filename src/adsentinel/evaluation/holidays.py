"""The holidays that move ad delivery in the lab world's countries (US, BR, DE, GB), and what
each kind of holiday does to a day's volume, CPM, CTR and conversion rate.

Pure: a country and dates in, per-day multipliers and the holidays hit out. Easter (and the
holidays set from it: Carnival, Good Friday, Easter Monday) by the anonymous Gregorian
algorithm; holidays set by a weekday rule (Thanksgiving and so Black Friday, Memorial Day, the
UK's bank holidays) counted from the first or last day of their month.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (0 = Monday) of a month; ``n = -1`` is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


# holiday type -> (volume, cpm, ctr, conversion rate) multipliers
_HOLIDAY_EFFECTS: dict[str, tuple[float, float, float, float]] = {
    "public": (0.85, 0.95, 1.0, 0.8),
    "shopping": (1.0, 1.45, 0.95, 0.85),
    "shopping_eve": (1.0, 1.2, 1.0, 0.95),
    "christmas": (0.75, 1.1, 0.95, 0.6),
    "carnival": (0.8, 0.9, 0.95, 0.7),
}


def _holidays(country: str, year: int) -> list[tuple[dt.date, str, str]]:
    """(date, name, type) of the holidays that move ad delivery in ``country`` and ``year``."""
    fixed = dt.date
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    black_friday = thanksgiving + dt.timedelta(days=1)
    out = [(fixed(year, 1, 1), "New Year's Day", "christmas"),
           (black_friday, "Black Friday", "shopping"),
           (black_friday + dt.timedelta(days=3), "Cyber Monday", "shopping"),
           (fixed(year, 12, 25), "Christmas Day", "christmas")]
    out += [(black_friday - dt.timedelta(days=k), "Black Friday week", "shopping_eve")
            for k in (1, 2, 3)]
    easter = _easter(year)
    if country == "US":
        out += [(_nth_weekday(year, 5, 0, -1), "Memorial Day", "public"),
                (fixed(year, 7, 4), "Independence Day", "public"),
                (_nth_weekday(year, 9, 0, 1), "Labor Day", "public"),
                (thanksgiving, "Thanksgiving", "public"),
                (fixed(year, 12, 24), "Christmas Eve", "christmas"),
                (fixed(year, 12, 31), "New Year's Eve", "christmas")]
    elif country == "BR":
        out += [(easter - dt.timedelta(days=48), "Carnival Monday", "carnival"),
                (easter - dt.timedelta(days=47), "Carnival Tuesday", "carnival"),
                (easter - dt.timedelta(days=2), "Good Friday", "public"),
                (fixed(year, 4, 21), "Tiradentes", "public"),
                (fixed(year, 5, 1), "Labour Day", "public"),
                (fixed(year, 9, 7), "Independence Day", "public"),
                (fixed(year, 10, 12), "Nossa Senhora Aparecida", "public"),
                (fixed(year, 11, 2), "Finados", "public"),
                (fixed(year, 11, 15), "Proclamation of the Republic", "public"),
                (fixed(year, 11, 20), "Black Consciousness Day", "public"),
                (fixed(year, 12, 24), "Christmas Eve", "christmas"),
                (fixed(year, 12, 31), "New Year's Eve", "christmas")]
    elif country == "DE":
        out += [(easter - dt.timedelta(days=2), "Good Friday", "public"),
                (easter + dt.timedelta(days=1), "Easter Monday", "public"),
                (fixed(year, 5, 1), "Labour Day", "public"),
                (fixed(year, 10, 3), "German Unity Day", "public"),
                (fixed(year, 12, 24), "Christmas Eve", "christmas"),
                (fixed(year, 12, 26), "St Stephen's Day", "christmas"),
                (fixed(year, 12, 31), "New Year's Eve", "christmas")]
    elif country == "GB":
        out += [(easter - dt.timedelta(days=2), "Good Friday", "public"),
                (easter + dt.timedelta(days=1), "Easter Monday", "public"),
                (_nth_weekday(year, 5, 0, 1), "Early May bank holiday", "public"),
                (_nth_weekday(year, 5, 0, -1), "Spring bank holiday", "public"),
                (_nth_weekday(year, 8, 0, -1), "Summer bank holiday", "public"),
                (fixed(year, 12, 26), "Boxing Day", "christmas")]
    return out


def holiday_calendar(country: str, dates: pd.DatetimeIndex
                      ) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Per-day (volume, cpm, ctr, cvr) multipliers, shape (4, days), and the holidays hit."""
    effects = np.ones((4, len(dates)))
    first = dates[0].date()
    hits: list[tuple[int, str, str]] = []
    for year in range(dates[0].year, dates[-1].year + 1):
        for day, name, kind in _holidays(country, year):
            index = (day - first).days
            if 0 <= index < len(dates):
                effects[:, index] *= _HOLIDAY_EFFECTS[kind]
                hits.append((index, name, kind))
    return effects, sorted(hits)
