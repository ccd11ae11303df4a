"""What is true of a whole account on a day: its common moves and its budget steps.

Two of the rules that judge an entity read its whole account, not only its own campaign:

* the **common move** (:mod:`~adsentinel.detect.common_move`): each campaign is judged against
  what most of the *other* campaigns of its account did that day;
* the **budget habits** (:mod:`~adsentinel.detect.budget_habits`): how often the account's
  budget holders stepped their spend up.

A large account is judged in chunks of whole campaigns, each in its own process. A chunk that
computed these facts from its own campaigns would judge the same entity-day differently
depending on how the account was cut (fewer campaigns vote on the common move; fewer holders
count towards a habit). So they are computed once, over every campaign and budget holder of the
account (:func:`account_facts`), and handed to every chunk (as JSON through the task queue:
:meth:`AccountFacts.to_jsonable`), which then judges its entities as the whole account would.

Pure: frames in, facts out. Entities are identified by any hashable key; in the JSON form a
campaign is its integer entity id.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from adsentinel.detect.account_walk import (
    MovesByDay,
    campaign_move_tests_by_day,
    common_moves_from_tests,
)
from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.budget_habits import BudgetSteps
from adsentinel.detect.common_move import common_moves
from adsentinel.detect.statistical import MAX_POOLED_DAYS

Key = Hashable


def common_moves_by_day(detector: AnomalyDetector, campaigns: Mapping[Key, pd.DataFrame],
                        day: date, known: MovesByDay,
                        as_of_hours: Mapping[Key, float | None]) -> MovesByDay:
    """The common moves of ``day`` (at its campaigns' ``as_of_hours``) and of the days a rate
    test may pool with it (complete days), among ``campaigns`` (prepared frames by key); the
    days in ``known`` are not computed again."""
    moves = dict(known)
    for back in range(MAX_POOLED_DAYS):
        when = day - timedelta(days=back)
        if when not in moves:
            moves[when] = common_moves({campaign: detector.campaign_move_tests(
                frame, when, as_of_hours.get(campaign) if back == 0 else None)
                for campaign, frame in campaigns.items()})
    return moves


@dataclass(frozen=True)
class AccountFacts:
    """A whole account's facts for judging some of its days: ``moves[day]``, every common move
    judging ``day`` reads (that day at its hours, the pooled days before it, and the day before
    those, which judging yesterday again pools); ``budget_steps``, its holders' spend steps."""

    budget_steps: BudgetSteps
    moves: Mapping[date, MovesByDay]

    def covers(self, days: Iterable[date]) -> bool:
        """True when every one of ``days`` can be judged from these facts."""
        return all(day in self.moves for day in days)

    def for_campaigns(self, campaigns: Iterable[Key]) -> AccountFacts:
        """The facts a chunk of these campaigns reads: their own common moves only (each
        campaign's factor already comes from the others), every budget step."""
        wanted = set(campaigns)
        return AccountFacts(self.budget_steps, {
            day: {when: {c: f for c, f in factors.items() if c in wanted}
                  for when, factors in by_day.items()}
            for day, by_day in self.moves.items()})

    def to_jsonable(self) -> dict[str, Any]:
        """Lists, strings and numbers only (a task's argument); empty factors are left out."""
        steps = self.budget_steps
        return {
            "budget_steps": {
                "days": [str(d) for d in steps.days],
                "ratios": steps.ratios.tolist(),
                "previous": steps.previous.tolist(),
                "delivery_days": [str(d) for d in steps.delivery_days],
                "delivering_holders": steps.delivering_holders.tolist(),
            },
            "moves": {
                day.isoformat(): {
                    when.isoformat(): {str(c): f for c, f in factors.items() if f}
                    for when, factors in by_day.items()}
                for day, by_day in self.moves.items()},
        }

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> AccountFacts:
        """The facts :meth:`to_jsonable` wrote (campaign keys back to integer entity ids)."""
        steps = data["budget_steps"]
        budget_steps = BudgetSteps(
            np.asarray(steps["days"], dtype="datetime64[D]"),
            np.asarray(steps["ratios"], dtype=float),
            np.asarray(steps["previous"], dtype=float),
            np.asarray(steps["delivery_days"], dtype="datetime64[D]"),
            np.asarray(steps["delivering_holders"], dtype=np.int64),
        )
        moves: dict[date, MovesByDay] = {
            date.fromisoformat(day): {
                date.fromisoformat(when): {int(c): {str(m): float(v) for m, v in f.items()}
                                           for c, f in factors.items()}
                for when, factors in by_day.items()}
            for day, by_day in data["moves"].items()}
        return cls(budget_steps, moves)


def account_facts(detector: AnomalyDetector, campaigns: Mapping[Key, pd.DataFrame],
                  budget_steps: BudgetSteps, days: Iterable[date],
                  as_of_hours: Mapping[date, Mapping[Key, float | None]] | None = None,
                  ) -> AccountFacts:
    """The facts judging each of ``days`` reads, from every campaign of the account
    (``campaigns``: prepared frames by key) and its holders' ``budget_steps``;
    ``as_of_hours[day]``: the local hour of each campaign's partial row of that day.

    The same moves :func:`common_moves_by_day` makes, from the campaigns' tests of all those
    days at once (:func:`~adsentinel.detect.account_walk.campaign_move_tests_by_day`), a
    partial day's at the hour its row was read."""
    as_of_hours = as_of_hours or {}
    days = sorted(set(days))
    # each day, the days it pools with, and the one more judging yesterday again pools
    reads = {day: [day - timedelta(days=back) for back in range(MAX_POOLED_DAYS + 1)]
             for day in days}
    every = {when for whens in reads.values() for when in whens}
    tests = campaign_move_tests_by_day(detector, campaigns, every)
    complete = common_moves_from_tests(tests, campaigns, every)
    moves: dict[date, MovesByDay] = {}
    for day in days:
        by_day = {when: complete[when] for when in reads[day]}
        hours = {c: hour for c, hour in as_of_hours.get(day, {}).items()
                 if hour is not None and hour < 24 and c in campaigns}
        if hours:  # today's partial rows, each campaign's at the hour it was read
            partial = campaign_move_tests_by_day(
                detector, {c: campaigns[c] for c in hours}, [day],
                {c: {day: detector.day_fraction(hour)} for c, hour in hours.items()})
            by_day[day] = common_moves_from_tests({**tests, **partial}, campaigns, [day])[day]
        moves[day] = by_day
    return AccountFacts(budget_steps, moves)
