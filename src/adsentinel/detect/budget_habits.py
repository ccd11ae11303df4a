"""An account's budget habits: how often its budget holders' spend stepped up, and how far.

Agencies differ: one account doubles a winning ad set's budget every week, another has not
touched a budget in months. A spend step of x2.5 with efficiency unchanged is news on the
second and routine on the first. The only record of an account's edits that every source
carries (the Meta API, a CSV export) is the budget holders' spend itself (ad sets; campaigns,
which hold the budget under campaign budget optimisation), so the account's habits are read
from it:

* a holder's **spend step** on a day is its spend as a multiple of the median of its seven days
  before (at least five of them known), counted once, on the day it first reached that
  multiple: a budget held at a new level is one step, not one a day;
* the account's **rate of steps at least** ``r`` is the number of such steps of all its holders
  over the detector's history (:data:`HABIT_DAYS` by default; ending two days before the judged
  day, so that the judged step and the day before it never explain themselves), per
  holder-month of delivery. The hourly cycle reads that history and no more, so production
  and ``backtest`` count the same days.

A step is the account's habit when steps at least that large happen at least
:data:`MEDIUM_FALSE_ALARMS_PER_ENTITY_MONTH` times per holder-month: reporting such steps at
*medium* would cost the user more false alarms on edits they made themselves than *medium* may
cost (one per ten entity-months, a third of the product's 0.3 false alarms per ad-month).

Pure: spend arrays in, counts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

#: How far back an account's budget steps are counted by default (the detector's history).
HABIT_DAYS = 90
#: Days before a step whose median spend is its baseline, and how many of them must be known.
STEP_BASELINE_DAYS = 7
STEP_BASELINE_MIN_DAYS = 5
#: The false alarms a rule may cost at *medium*, per entity and month of delivery.
MEDIUM_FALSE_ALARMS_PER_ENTITY_MONTH = 0.1
_DAYS_PER_MONTH = 30.0
#: Days whose baselines are computed together (an account's holders are millions of days).
_BLOCK_DAYS = 65_536

Days = npt.NDArray[np.datetime64]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def spend_step_ratios(spend: npt.ArrayLike) -> Floats:
    """Each day's spend as a multiple of the median of the :data:`STEP_BASELINE_DAYS` days
    before it (NaN where fewer than :data:`STEP_BASELINE_MIN_DAYS` of them are known or
    their median is not positive). ``spend`` has one value per calendar day, NaN unknown."""
    values = np.asarray(spend, dtype=float)
    ratios = np.full(values.shape, np.nan)
    if len(values) <= STEP_BASELINE_MIN_DAYS:
        return ratios
    # the window before day d is values[d - 7 : d]; the first days see fewer than seven
    padded = np.concatenate([np.full(STEP_BASELINE_DAYS, np.nan), values[:-1]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, STEP_BASELINE_DAYS)
    baseline = np.full(values.shape, np.nan)
    for start in range(0, len(values), _BLOCK_DAYS):  # a block at a time: bounded copies
        block = windows[start:start + _BLOCK_DAYS]
        enough = np.isfinite(block).sum(axis=1) >= STEP_BASELINE_MIN_DAYS
        baseline[start:start + _BLOCK_DAYS][enough] = np.nanmedian(block[enough], axis=1)
    enough = np.isfinite(baseline)
    usable = enough & (baseline > 0) & np.isfinite(values)
    ratios[usable] = values[usable] / baseline[usable]
    return ratios


@dataclass(frozen=True)
class BudgetHabits:
    """The steps of an account's budget holders in a window, and its holder-months."""

    ratios: Floats  # each candidate day's step ratio
    previous: Floats  # the same holder's ratio the day before (0 when unknown)
    holder_months: float
    days: int = HABIT_DAYS  # how many days back the steps were counted

    def steps_at_least(self, ratio: float) -> int:
        """How many times a holder's spend first reached ``ratio`` times its baseline."""
        return int(np.count_nonzero((self.ratios >= ratio) & (self.previous < ratio)))

    def rate_at_least(self, ratio: float) -> float:
        """:meth:`steps_at_least` per holder-month of delivery (0 with no delivery)."""
        if self.holder_months <= 0:
            return 0.0
        return self.steps_at_least(ratio) / self.holder_months

    def usual(self, ratio: float) -> bool:
        """True when steps at least ``ratio`` are this account's habit (see the module doc)."""
        return self.rate_at_least(ratio) >= MEDIUM_FALSE_ALARMS_PER_ENTITY_MONTH


@dataclass(frozen=True)
class BudgetSteps:
    """Every candidate step of an account's budget holders over all their days."""

    days: Days  # the candidate step days (datetime64[D])
    ratios: Floats
    previous: Floats
    delivery_days: Days  # the days any holder spent, sorted
    delivering_holders: Ints  # how many holders spent on each of them

    def habits(self, day: date, days: int = HABIT_DAYS) -> BudgetHabits:
        """The habits known on ``day``: steps and delivery of the ``days`` days ending two
        days before it."""
        last = np.datetime64(day - timedelta(days=2), "D")
        first = np.datetime64(day - timedelta(days=2 + days - 1), "D")
        inside = (self.days >= first) & (self.days <= last)
        counted = ((self.delivery_days >= first) & (self.delivery_days <= last))
        delivering = int(self.delivering_holders[counted].sum())
        return BudgetHabits(self.ratios[inside], self.previous[inside],
                            float(delivering) / _DAYS_PER_MONTH, days)


def budget_steps(holders: Iterable[tuple[Days, npt.ArrayLike]], *,
                 at_least: float) -> BudgetSteps:
    """The candidate steps (ratio at least ``at_least``) of the budget holders, each given as
    its calendar days (one per day, consecutive) and its spend on them (NaN: unknown).

    All holders at once: their series end to end, each after :data:`STEP_BASELINE_DAYS`
    unknown days, so that no holder's baseline reaches into the one before it."""
    gap_days = np.full(STEP_BASELINE_DAYS, np.datetime64("NaT"), dtype="datetime64[D]")
    gap = np.full(STEP_BASELINE_DAYS, np.nan)
    day_parts: list[Days] = []
    value_parts: list[Floats] = []
    for holder_days, spend in holders:
        day_parts += [gap_days, np.asarray(holder_days, dtype="datetime64[D]")]
        value_parts += [gap, np.asarray(spend, dtype=float)]
    if not day_parts:
        empty = np.array([], dtype="datetime64[D]")
        return BudgetSteps(empty, np.array([]), np.array([]), empty, np.array([], dtype=np.int64))
    calendar = np.concatenate(day_parts)
    values = np.concatenate(value_parts)
    step = spend_step_ratios(values)
    before = np.concatenate([[np.nan], step[:-1]])
    candidate = step >= at_least
    delivery_days, delivering_holders = np.unique(calendar[np.nan_to_num(values, nan=0.0) > 0],
                                                  return_counts=True)
    return BudgetSteps(calendar[candidate], step[candidate],
                       np.nan_to_num(before[candidate], nan=0.0),
                       delivery_days, delivering_holders.astype(np.int64))


def spend_calendars(holder_ids: npt.ArrayLike, days: npt.ArrayLike, spend: npt.ArrayLike,
                    ) -> Iterator[tuple[Days, Floats]]:
    """Each holder's calendar days and spend, from its daily rows (``holder_ids``, ``days``,
    ``spend`` of the same length, sorted by holder then day, one row per holder and day): from
    its first row to its last, a day without a row spending 0, as a prepared daily frame has
    it (:func:`~adsentinel.detect.daily_table.prepare_daily_frames`)."""
    ids = np.asarray(holder_ids)
    calendar = np.asarray(days, dtype="datetime64[D]")
    values = np.asarray(spend, dtype=float)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if ids.size else np.array([], int)
    ends = np.r_[starts[1:], ids.size]
    for start, end in zip(starts, ends, strict=True):
        first = calendar[start]
        span = int((calendar[end - 1] - first).astype(int)) + 1
        filled = np.zeros(span)
        filled[(calendar[start:end] - first).astype(int)] = values[start:end]
        yield first + np.arange(span).astype("timedelta64[D]"), filled
