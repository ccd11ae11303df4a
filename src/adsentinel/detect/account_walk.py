"""An account's statistical tests of many entity-days at once, ahead of judging them.

:func:`~adsentinel.detect.account_day.judge_account_day` judges an account on one day, and the
per-day path runs each entity's tests (:func:`~adsentinel.detect.statistical.run_statistical_tests`)
and each campaign's tests for the account's common move afresh for every entity and day. Here
they are computed in one :func:`~adsentinel.detect.statistical_walk.walk_statistical_tests`
over all the entities' rows laid end to end (a :class:`~adsentinel.detect.daily_table.DailyTable`;
blocks of :data:`WALK_BLOCK` entity-days), in
the same order as the per-day path:

1. each campaign's tests of every day alone, without the delivery gate
   (:meth:`~adsentinel.detect.anomaly_detector.AnomalyDetector.campaign_move_tests`);
2. the account's common moves of every day from them
   (:func:`~adsentinel.detect.common_move.common_moves`);
3. every judged entity-day's tests, with its campaign's common move of the day and of the days
   a rate test pools with it, and the share of the day's delivery expected by the hour its row
   was read;
4. every budget holder's (ad sets, campaigns) tests of those days, without common move or gate
   (:meth:`~adsentinel.detect.anomaly_detector.AnomalyDetector.parent_budget`'s), at the hour
   its judged child was read.

Two callers: a walk over every complete day (``evaluate``, ``backtest``:
:func:`account_statistical_tests`) and the hourly cycle's judged entity-days, today's partial
rows included (:func:`day_tests`, common moves from the account's facts). The result goes to
``judge_account_day(account_tests=...)``; the decisions are the per-day path's
(``tests/evaluation/test_walk_statistical.py`` walks labelled worlds both ways,
``tests/detection/test_detection_walk.py`` runs the hourly cycle both ways).

Pure: frames in, tests out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.common_move import common_moves
from adsentinel.detect.daily_table import DailyTable
from adsentinel.detect.statistical import MAX_POOLED_DAYS, MetricTest
from adsentinel.detect.statistical_walk import walk_statistical_tests

Key = Hashable


#: An entity's day as it was read: (key, day, local hour its row was read at; ``None``: a
#: complete day).
EntityDay = tuple[Key, date, "float | None"]


@dataclass(frozen=True)
class AccountTests:
    """An account's statistical tests of some entity-days, computed ahead of their days'
    judgements (``judge_account_day(account_tests=...)``), keyed by :data:`EntityDay`.

    ``judged``: each entity's, with its campaign's common moves and the detector's gate (empty
    on days it does not judge). ``holders``: each budget holder's (an entity with children),
    without common move or gate, as a budget holder's state is judged, at the hour its judged
    child was read.
    """

    judged: Mapping[EntityDay, list[MetricTest]]
    holders: Mapping[EntityDay, list[MetricTest]]

    def entity_tests(self, key: Key, day: date, hour: float | None = None,
                     ) -> list[MetricTest] | None:
        """The entity's tests of ``day`` read at ``hour`` (``None``: not computed here; the
        per-day path runs them)."""
        return self.judged.get((key, day, hour))

    def holder_tests(self, holder: Key, day: date, hour: float | None = None,
                     ) -> list[MetricTest] | None:
        """The budget holder's tests of ``day`` at its child's ``hour`` (``None``: not
        computed here, or no row that day)."""
        return self.holders.get((holder, day, hour))


def account_statistical_tests(detector: AnomalyDetector, frames: Mapping[Key, pd.DataFrame],
                              levels: Mapping[Key, str],
                              parents: Mapping[Key, Key | None]) -> AccountTests:
    """Every entity's and budget holder's statistical tests of every day of its frame (as
    complete days).

    Parameters
    ----------
    detector : AnomalyDetector
        Its thresholds and windows are the tests'.
    frames : mapping of key to DataFrame
        :func:`~adsentinel.detect.daily_table.prepare_daily_frame` output of each entity.
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
    table = DailyTable.of_frames(frames)
    every_day = [(key, day, None) for key in table.first_row for day in table.days_of(key)]
    return AccountTests(
        judged=walk_entity_days(detector, table, parents, every_day, lambda day: moves),
        holders=walk_holder_days(detector, table,
                                 [entity_day for entity_day in every_day
                                  if entity_day[0] in holders]),
    )


def day_tests(detector: AnomalyDetector, table: DailyTable,
              parents: Mapping[Key, Key | None], judged: Iterable[EntityDay],
              moves: Mapping[date, MovesByDay]) -> AccountTests:
    """The tests judging ``judged`` (entity-days read at some hour) runs: each entity's, with
    the common moves its day reads (``moves[day]``: :attr:`AccountFacts.moves
    <adsentinel.detect.account_facts.AccountFacts.moves>`), and its budget holder's (its
    parent, when in ``table``) on that day at the same hour. What the hourly cycle computes
    before judging, all entities at once, from the rows it prepared (``table``)."""
    wanted = list(judged)
    holders = list(dict.fromkeys((parents[key], day, hour) for key, day, hour in wanted
                                 if parents.get(key) in table.first_row))
    return AccountTests(
        judged=walk_entity_days(detector, table, parents, wanted,
                                lambda day: moves.get(day, {})),
        holders=walk_holder_days(detector, table, holders),
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
    alone, no delivery gate) of ``days`` (default every day it has a row), by day, every
    campaign's days in one walk; ``day_fractions[campaign][day]``: the share of the day's
    delivery expected by the hour a partial row was read (default 1, a complete day)."""
    table = DailyTable.of_frames(campaigns)
    asked = None if days is None else sorted(days)
    wanted: list[EntityDay] = []
    for key in table.first_row:
        if asked is None:  # every day of its rows
            wanted += [(key, day, None) for day in table.days_of(key)]
        else:
            wanted += [(key, day, None) for day in asked if table.row_of(key, day) is not None]
    fractions = day_fractions or {}
    tests: dict[Key, dict[date, list[MetricTest]]] = {}
    for block in _blocks(wanted):
        walked = _walk(detector, table, block, min_history_days=detector.min_history_days,
                       require_delivery=False, max_pooled_days=1,
                       fractions=[fractions.get(key, {}).get(day, 1.0) for key, day, _ in block])
        for (key, day, _), day_tests_ in walked.items():
            tests.setdefault(key, {})[day] = day_tests_
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


#: Most entity-days walked in one call: bounds the walk's matrices (a few tens of kilobytes per
#: walked day) whatever the size of the chunk.
WALK_BLOCK = 4096


def walk_entity_days(detector: AnomalyDetector, table: DailyTable,
                     parents: Mapping[Key, Key | None], wanted: Sequence[EntityDay],
                     moves_read_on: Callable[[date], MovesByDay],
                     ) -> dict[EntityDay, list[MetricTest]]:
    """Each wanted entity-day's tests as the detector judges it: its gate, its campaign's
    common moves of the day and of the days a rate test pools with it (from
    ``moves_read_on(day)``), the share of the day's delivery expected at its hour. One walk
    over all the entities' rows laid end to end (``table``)."""
    found: dict[EntityDay, list[MetricTest]] = {}
    for block in _blocks(_present(table, wanted)):
        factors: dict[str, np.ndarray] = {}
        for row, (key, day, _hour) in enumerate(block):
            campaign = campaign_of(key, parents)
            read = moves_read_on(day)
            for back in range(MAX_POOLED_DAYS):
                for metric, factor in read.get(day - timedelta(days=back), {}).get(
                        campaign, {}).items():
                    factors.setdefault(metric, np.ones((len(block), MAX_POOLED_DAYS)))[
                        row, back] = factor
        found.update(_walk(
            detector, table, block, min_history_days=detector.min_history_days,
            require_delivery=True, common_moves=factors))
    return found


def walk_holder_days(detector: AnomalyDetector, table: DailyTable,
                     wanted: Sequence[EntityDay]) -> dict[EntityDay, list[MetricTest]]:
    """Each wanted budget holder's day (with a row) as its state is judged: no common move,
    every day with a row judged however short its history (each test then decides whether it
    has a baseline), as ``AnomalyDetector.parent_budget`` runs them."""
    found: dict[EntityDay, list[MetricTest]] = {}
    for block in _blocks(_present(table, wanted)):
        found.update(_walk(detector, table, block, min_history_days=0, require_delivery=False))
    return found


def _blocks(entity_days: list[EntityDay]) -> Iterator[list[EntityDay]]:
    for start in range(0, len(entity_days), WALK_BLOCK):
        yield entity_days[start:start + WALK_BLOCK]


def _present(table: DailyTable, wanted: Iterable[EntityDay]) -> list[EntityDay]:
    """The wanted entity-days that have a row in ``table``."""
    return [entity_day for entity_day in wanted
            if table.row_of(entity_day[0], entity_day[1]) is not None]


def _walk(detector: AnomalyDetector, table: DailyTable, block: Sequence[EntityDay], *,
          min_history_days: int, require_delivery: bool,
          common_moves: Mapping[str, np.ndarray] | None = None,
          max_pooled_days: int = MAX_POOLED_DAYS, fractions: Sequence[float] | None = None,
          ) -> dict[EntityDay, list[MetricTest]]:
    """The tests of ``block`` (entity-days with a row in ``table``), each within its entity,
    each day's share of delivery from its hour (or given: ``fractions``)."""
    rows = [table.row_of(key, day) for key, day, _ in block]
    walk = walk_statistical_tests(
        table.daily, np.asarray(rows, dtype=np.int64), z_threshold=detector.z_threshold,
        iqr_multiplier=detector.iqr_multiplier, min_history_days=min_history_days,
        history_days=detector.history_days, level_window=detector.level_window,
        rate_window=detector.rate_window, max_pooled_days=max_pooled_days,
        common_moves=common_moves, require_delivery=require_delivery,
        day_fractions=(fractions if fractions is not None
                       else [detector.day_fraction(hour) for _, _, hour in block]),
        series_starts=[table.first_row[key] for key, _, _ in block])
    return dict(zip(block, walk.all_tests(), strict=True))


__all__ = ["AccountTests", "EntityDay", "MovesByDay", "account_statistical_tests",
           "campaign_move_tests_by_day", "common_moves_from_tests", "common_moves_of_days",
           "day_tests", "walk_entity_days", "walk_holder_days"]
