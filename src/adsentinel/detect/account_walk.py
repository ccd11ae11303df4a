"""Every entity's statistical tests on every complete day of one account, at once.

:func:`~adsentinel.detect.account_day.judge_account_day` judges an account on one day, and the
per-day path runs each entity's tests (:func:`~adsentinel.detect.statistical.run_statistical_tests`)
and each campaign's tests for the account's common move afresh for every day. A walk over many
days (``evaluate``, ``backtest``) computes them here instead, one
:func:`~adsentinel.detect.statistical_walk.walk_statistical_tests` per entity, in the same
order as the per-day path:

1. each campaign's tests of every day alone, without the delivery gate
   (:meth:`~adsentinel.detect.anomaly_detector.AnomalyDetector.campaign_move_tests`);
2. the account's common moves of every day from them
   (:func:`~adsentinel.detect.common_move.common_moves`);
3. every entity's tests of every day, each day with its campaign's common move of the day and
   of the days a rate test pools with it;
4. every budget holder's (ad sets, campaigns) tests of every day, without common move or gate
   (:meth:`~adsentinel.detect.anomaly_detector.AnomalyDetector.parent_budget`'s).

The result goes to ``judge_account_day(account_tests=...)``; the decisions are the per-day
path's (``tests/evaluation/test_walk_statistical.py`` walks labelled worlds both ways). Complete
days only: the hourly cycle's partial days keep the per-day path.

Pure: frames in, tests out.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.common_move import common_moves
from adsentinel.detect.statistical import MetricTest
from adsentinel.detect.statistical_walk import lagged_common_moves, walk_statistical_tests

Key = Hashable
#: Tests by entity and day.
TestsByDay = dict[Key, dict[date, list[MetricTest]]]


@dataclass(frozen=True)
class AccountTests:
    """An account's statistical tests of every complete day, computed ahead of its days'
    judgements (``judge_account_day(account_tests=...)``).

    ``judged``: each entity's, with its campaign's common moves and the detector's gate (empty
    on days it does not judge). ``holders``: each budget holder's (an entity with children),
    without common move or gate, as a budget holder's state is judged.
    """

    judged: TestsByDay
    holders: TestsByDay

    def holder_tests(self, holder: Key, day: date) -> list[MetricTest]:
        """The budget holder's tests of ``day`` (empty on a day without its row)."""
        return self.holders.get(holder, {}).get(day, [])


def account_statistical_tests(detector: AnomalyDetector, frames: Mapping[Key, pd.DataFrame],
                              levels: Mapping[Key, str],
                              parents: Mapping[Key, Key | None]) -> AccountTests:
    """Every entity's and budget holder's statistical tests of every day of its frame.

    Parameters
    ----------
    detector : AnomalyDetector
        Its thresholds and windows are the tests'.
    frames : mapping of key to DataFrame
        :func:`~adsentinel.detect.anomaly_detector.prepare_daily_frame` output of each entity.
    levels : mapping of key to str
        ``"campaign"``, ``"adset"`` or ``"ad"``; campaigns make the account's common move.
    parents : mapping of key to key or None
        Each entity's parent (``None`` for a campaign).

    Returns
    -------
    AccountTests
        Per entity, per day of its frame, what ``run_statistical_tests`` returns for it.
    """
    campaigns = [key for key, level in levels.items() if level == "campaign"]
    moves = common_moves_of_days(
        detector, {key: frames[key] for key in campaigns if key in frames})
    holders = {parent for parent in parents.values() if parent is not None and parent in frames}
    return AccountTests(
        judged={key: _entity_tests(detector, frame, moves, campaign_of(key, parents))
                for key, frame in frames.items()},
        holders={key: _holder_tests(detector, frames[key]) for key in holders},
    )


def campaign_of(key: Key, parents: Mapping[Key, Key | None]) -> Key:
    """The campaign above ``key`` (``key`` itself for a campaign)."""
    while (parent := parents.get(key)) is not None:
        key = parent
    return key


#: Per day, each campaign's common-move factors (:func:`common_moves`).
MovesByDay = dict[date, dict[Key, dict[str, float]]]

def campaign_move_tests_by_day(detector: AnomalyDetector,
                               campaigns: Mapping[Key, pd.DataFrame],
                               days: Collection[date] | None = None,
                               day_fractions: Mapping[Key, Mapping[date, float]] | None = None,
                               ) -> dict[Key, dict[date, list[MetricTest]]]:
    """Each campaign's tests for its account's common move (``campaign_move_tests``: the day
    alone, no delivery gate) of ``days`` (default every day it has a row), by day, all of a
    campaign's days at once; ``day_fractions[campaign][day]``: the share of the day's delivery
    expected by the hour a partial row was read (default 1, a complete day)."""
    wanted = None if days is None else np.array(sorted(days), dtype="datetime64[D]")
    tests: dict[Key, dict[date, list[MetricTest]]] = {}
    for key, frame in campaigns.items():
        if frame.empty:
            continue
        rows = np.arange(len(frame)) if wanted is None else np.flatnonzero(
            np.isin(frame["date"].to_numpy(dtype="datetime64[D]"), wanted))
        if not rows.size:
            continue
        every_day = _days_of(frame)
        walked = [every_day[row] for row in rows]
        fractions = (day_fractions or {}).get(key, {})
        walk = walk_statistical_tests(
            frame, rows, z_threshold=detector.z_threshold,
            iqr_multiplier=detector.iqr_multiplier, min_history_days=detector.min_history_days,
            history_days=detector.history_days, level_window=detector.level_window,
            rate_window=detector.rate_window, max_pooled_days=1, require_delivery=False,
            day_fractions=[fractions.get(day, 1.0) for day in walked])
        tests[key] = dict(zip(walked, walk.all_tests(), strict=True))
    return tests


def common_moves_of_days(detector: AnomalyDetector, campaigns: Mapping[Key, pd.DataFrame],
                         days: Collection[date] | None = None) -> MovesByDay:
    """The account's common moves of complete days, as
    ``account_day._common_moves_by_day`` makes each (a campaign without a row that day has
    no tests, and still gets the others' move): of ``days``, default every day a campaign has
    a row (a day no campaign has a row gets no entry)."""
    by_campaign = campaign_move_tests_by_day(detector, campaigns, days)
    return common_moves_from_tests(
        by_campaign, campaigns, sorted(set().union(*(set(tests) for tests in by_campaign.values()))))


def common_moves_from_tests(tests: Mapping[Key, Mapping[date, list[MetricTest]]],
                            campaigns: Iterable[Key], days: Iterable[date]) -> MovesByDay:
    """The account's common moves of ``days`` from its campaigns' tests by day
    (:func:`campaign_move_tests_by_day`); a campaign without tests on a day still gets the
    others' move."""
    keys = list(campaigns)
    return {day: common_moves({key: list(tests.get(key, {}).get(day, [])) for key in keys})
            for day in days}


def _entity_tests(detector: AnomalyDetector, frame: pd.DataFrame, moves: MovesByDay,
                  campaign: Key) -> dict[date, list[MetricTest]]:
    """One entity's tests of every day of its frame, with its campaign's moves."""
    if frame.empty:
        return {}
    days = _days_of(frame)
    factors: dict[str, list[float]] = {}
    for row, day in enumerate(days):
        for metric, factor in moves.get(day, {}).get(campaign, {}).items():
            factors.setdefault(metric, [1.0] * len(days))[row] = factor
    rows = np.arange(len(frame))
    walk = walk_statistical_tests(
        frame, rows, z_threshold=detector.z_threshold, iqr_multiplier=detector.iqr_multiplier,
        min_history_days=detector.min_history_days, history_days=detector.history_days,
        level_window=detector.level_window, rate_window=detector.rate_window,
        common_moves=lagged_common_moves(factors, rows))
    return dict(zip(days, walk.all_tests(), strict=True))


def _holder_tests(detector: AnomalyDetector, frame: pd.DataFrame,
                  ) -> dict[date, list[MetricTest]]:
    """A budget holder's tests of every day of its frame: no common move, every day with a
    row judged, however short its history (each test then decides whether it has a
    baseline), as ``AnomalyDetector.parent_budget`` runs them."""
    if frame.empty:
        return {}
    walk = walk_statistical_tests(
        frame, np.arange(len(frame)), z_threshold=detector.z_threshold,
        iqr_multiplier=detector.iqr_multiplier, min_history_days=0,
        history_days=detector.history_days, level_window=detector.level_window,
        rate_window=detector.rate_window, require_delivery=False)
    return dict(zip(_days_of(frame), walk.all_tests(), strict=True))


def _days_of(frame: pd.DataFrame) -> list[date]:
    return [stamp.date() for stamp in pd.to_datetime(frame["date"])]


__all__ = ["AccountTests", "MovesByDay", "TestsByDay", "account_statistical_tests",
           "campaign_move_tests_by_day", "common_moves_from_tests", "common_moves_of_days"]
