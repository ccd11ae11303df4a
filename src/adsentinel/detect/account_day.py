"""Judging one account on one day: every entity, against its account, then between levels.

The one place where detection of a whole account is put together; production's hourly cycle
(:mod:`adsentinel.detection.account`) and the walk-forward of ``backtest`` and ``evaluate``
(:mod:`adsentinel.evaluation.walk`) both call :func:`judge_account_day`, so that what is
measured is what runs.

Steps, in order:

1. the account's common move on the day and on the days a rate test may pool with it: for
   each campaign, what most of the others did (:mod:`~adsentinel.detect.common_move`); the
   whole account's when the tree carries it (:attr:`AccountTree.whole_account`, as the hourly
   cycle does, a large account's chunks all given the same), as are the budget steps;
2. each ad's and ad set's budget holder (its ad set; its campaign, which holds the budget under
   campaign budget optimisation): did its volume move, or is this budget shifting between
   siblings?
3. every judged entity through :meth:`AnomalyDetector.detect_anomalies`, with its campaign's
   common move;
4. parents whose move their ads explain, or whose rate moved only because their mix of ads
   changed, are at most low (:mod:`~adsentinel.detect.hierarchy_rules`);
5. a forest anomaly whose corroborating metric anomaly step 4 demoted is at most low too.

Steps 1 and 3 run each entity's statistical tests on the day
(:func:`~adsentinel.detect.statistical.run_statistical_tests`, the per-day reference) unless
they come already computed, vectorised over many entity-days at once (``account_tests``,
:mod:`~adsentinel.detect.account_walk`): every day of every entity for a walk over complete
days, the judged entity-days at the hours their rows were read for the hourly cycle. The
decisions are the same either way.

Pure: frames in, anomalies out. Entities are identified by any hashable key; ``levels``,
``parents`` and ``entity_ids`` describe them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from adsentinel.detect.account_facts import AccountFacts, common_moves_by_day
from adsentinel.detect.account_walk import AccountTests, MovesByDay, campaign_of
from adsentinel.detect.anomaly_detector import (
    AnomalyDetector,
    DetectedAnomaly,
    ParentBudget,
    ScoresSamples,
    forest_follows_metrics,
)
from adsentinel.detect.budget_habits import BudgetSteps, Days, budget_steps
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.hierarchy_rules import (
    ChildMove,
    ChildRate,
    count_column,
    count_excess,
    demote_explained,
    demote_mix,
    mix_explains,
    parent_is_explained,
)
from adsentinel.detect.metric_rules import BUDGET_CHANGE_BAND, spend_level_held
from adsentinel.detect.statistical import (
    FREQUENCY_DEFINITION,
    MAX_POOLED_DAYS,
    RATE_DEFINITIONS,
    pooled_days,
    pooled_rate,
)

Key = Hashable
#: The parent that may hold the budget an entity shares with its siblings, by level.
HOLDER_LEVEL = {"ad": "ad set", "adset": "campaign"}
#: The levels that may hold a budget (a campaign under campaign budget optimisation).
BUDGET_HOLDERS = frozenset({"adset", "campaign"})


@dataclass(frozen=True)
class AccountTree:
    """An account's entities: daily frames (prepared), levels, parents and display ids."""

    frames: Mapping[Key, pd.DataFrame]
    levels: Mapping[Key, str]
    parents: Mapping[Key, Key | None]
    entity_ids: Mapping[Key, str]
    #: The whole account's facts (:mod:`~adsentinel.detect.account_facts`), computed once for
    #: all its chunks when these entities are a chunk of it; ``None``: read from these frames.
    whole_account: AccountFacts | None = None

    def campaign_of(self, key: Key) -> Key:
        """The campaign above ``key`` (``key`` itself for a campaign)."""
        return campaign_of(key, self.parents)

    def ads_under(self, key: Key) -> list[Key]:
        """The ads below a campaign or an ad set."""
        return self._ads_below.get(key, [])

    @cached_property
    def campaign_frames(self) -> dict[Key, pd.DataFrame]:
        """The campaigns' frames, by key."""
        return {key: self.frames[key] for key in self.frames  # reads campaigns' frames only
                if self.levels[key] == "campaign"}

    @cached_property
    def budget_steps(self) -> BudgetSteps:
        """The spend steps of the account's budget holders (ad sets and campaigns) beyond the
        budget band, over all their days (:mod:`~adsentinel.detect.budget_habits`): the whole
        account's when the tree carries them."""
        if self.whole_account is not None:
            return self.whole_account.budget_steps
        return account_budget_steps(
            (self.frames[key]["date"].to_numpy(dtype="datetime64[D]"),
             self.frames[key]["spend"].to_numpy())
            for key in self.frames if self.levels[key] in BUDGET_HOLDERS)

    @cached_property
    def _ads_below(self) -> dict[Key, list[Key]]:
        below: dict[Key, list[Key]] = {}
        for key, level in self.levels.items():
            if level != "ad":
                continue
            up = self.parents.get(key)
            while up is not None:
                below.setdefault(up, []).append(key)
                up = self.parents.get(up)
        return below


def account_budget_steps(holders: Iterable[tuple[Days, npt.ArrayLike]]) -> BudgetSteps:
    """The spend steps beyond the budget band of an account's budget holders, each given as
    its calendar days and its spend on them (:func:`~adsentinel.detect.budget_habits.budget_steps`)."""
    return budget_steps(holders, at_least=BUDGET_CHANGE_BAND[1])


@dataclass(frozen=True)
class EntityModel:
    """An entity's multivariate model and the scores it gave its training days; ``day_scores``:
    its ``score_samples`` of some days already computed (with other entities', in one call),
    by day."""

    model: ScoresSamples
    training_scores: np.ndarray | None = None
    day_scores: Mapping[date, float] = field(default_factory=dict)


def judge_account_day(
    detector: AnomalyDetector,
    tree: AccountTree,
    day: date,
    judged: Iterable[Key],
    *,
    currency: str = "USD",
    models: Mapping[Key, EntityModel] | None = None,
    as_of_hours: Mapping[Key, float | None] | None = None,
    held_levels: bool = True,
    account_tests: AccountTests | None = None,
) -> list[DetectedAnomaly]:
    """Anomalies of the ``judged`` entities of one account on ``day`` (see the module doc).

    ``held_levels=False`` judges the day without
    :func:`~adsentinel.detect.metric_rules.spend_level_held` (as if yesterday were unknown).
    ``account_tests``: statistical tests already computed for the judged entities and their
    budget holders, each at the hour its row was read
    (:func:`~adsentinel.detect.account_walk.account_statistical_tests` for a walk over complete
    days, :func:`~adsentinel.detect.account_walk.day_tests` for the hourly cycle's days), used
    instead of running them; an entity-day they lack is tested here, on the per-day path.
    """
    as_of_hours = as_of_hours or {}
    # a walk's tests carry their common moves: computed here only when the tree carries them
    # (a lookup) or nothing was computed ahead
    moves = ({} if account_tests is not None and tree.whole_account is None
             else _common_moves_by_day(detector, tree, day, {}, as_of_hours))
    return forest_follows_metrics(_judge(
        detector, tree, day, list(judged), moves, currency=currency, models=models or {},
        as_of_hours=as_of_hours, held_levels=held_levels, account_tests=account_tests))


def _common_moves_by_day(detector: AnomalyDetector, tree: AccountTree, day: date,
                         known: MovesByDay,
                         as_of_hours: Mapping[Key, float | None]) -> MovesByDay:
    """The common moves of ``day`` and of the days a rate test may pool with it: the whole
    account's where the tree carries them, the rest from the tree's campaigns."""
    if tree.whole_account is not None:
        known = {**tree.whole_account.moves.get(day, {}), **known}
    return common_moves_by_day(detector, tree.campaign_frames, day, known, as_of_hours)


def _judge(detector: AnomalyDetector, tree: AccountTree, day: date, judged: list[Key],
           moves: MovesByDay, *, currency: str, models: Mapping[Key, EntityModel],
           as_of_hours: Mapping[Key, float | None], held_levels: bool,
           account_tests: AccountTests | None,
           ) -> list[DetectedAnomaly]:
    """Steps 2 to 4 of the module doc (and the rule of held levels) for ``judged`` on
    ``day``: each entity's and budget holder's tests of the day are taken from
    ``account_tests`` where it has them; the others run here with ``moves`` (computed now if
    the walk left it empty)."""
    budgets: dict[tuple[Key, float | None], ParentBudget] = {}
    found: dict[Key, list[DetectedAnomaly]] = {}
    habits = tree.budget_steps.habits(day, detector.history_days)
    for key in judged:
        hour = as_of_hours.get(key)
        tests = None if account_tests is None else account_tests.entity_tests(key, day, hour)
        if tests is None and not all(day - timedelta(days=back) in moves
                                     for back in range(MAX_POOLED_DAYS)):
            moves = _common_moves_by_day(detector, tree, day, moves, as_of_hours)
        model = models.get(key)
        if tests is not None and detector.finds_nothing(
                tests, model=None if model is None else model.model,
                training_scores=None if model is None else model.training_scores,
                forest_score=None if model is None else model.day_scores.get(day),
                as_of_hour=hour):
            found[key] = []  # what judging it would return, without reading its frame
            continue
        today_move, earlier_moves = (None, []) if tests is not None else _campaign_moves(
            moves, tree.campaign_of(key), day)
        budget_state = None
        holder = tree.parents.get(key) if tree.levels[key] in HOLDER_LEVEL else None
        if holder is not None and holder in tree.frames:
            if (holder, hour) not in budgets:
                budgets[(holder, hour)] = detector.parent_budget(
                    tree.frames[holder], day, hour, currency, HOLDER_LEVEL[tree.levels[key]],
                    held_levels, statistical_tests=None if account_tests is None
                    else account_tests.holder_tests(holder, day, hour), budget_habits=habits)
            budget_state = budgets[(holder, hour)]
        found[key] = detector.detect_anomalies(
            tree.frames[key], tree.levels[key], tree.entity_ids[key], analysis_date=day,
            model=None if model is None else model.model, currency=currency,
            training_scores=None if model is None else model.training_scores,
            forest_score=None if model is None else model.day_scores.get(day),
            as_of_hour=hour, budget_parent_state=budget_state,
            common_move=today_move, earlier_common_moves=earlier_moves, held_levels=held_levels,
            statistical_tests=tests, budget_habits=habits,
        )
    out = _explain_parents(detector, tree, day, found)
    if held_levels:
        out = _unless_jump_unreported(detector, tree, day, out, moves, currency=currency,
                                      models=models, as_of_hours=as_of_hours,
                                      account_tests=account_tests)
    return out


def _campaign_moves(moves: MovesByDay, campaign: Key, day: date,
                    ) -> tuple[dict[str, float] | None, list[dict[str, float]]]:
    """A campaign's common move of ``day`` (``None``: none) and of the days a rate test may
    pool with it, yesterday first."""
    earlier = [day - timedelta(days=back) for back in range(1, MAX_POOLED_DAYS)]
    return (moves[day].get(campaign) or None,
            [moves[when].get(campaign) or {} for when in earlier])


def _unless_jump_unreported(detector: AnomalyDetector, tree: AccountTree, day: date,
                            found: list[DetectedAnomaly], moves: MovesByDay, *, currency: str,
                            models: Mapping[Key, EntityModel],
                            as_of_hours: Mapping[Key, float | None],
                            account_tests: AccountTests | None,
                            ) -> list[DetectedAnomaly]:
    """Spend held at yesterday's new level is low only when yesterday's jump was reported:
    entities whose spend was held are judged on yesterday again (without the rule, which is
    then exactly "was it reported, or would it have been"); where yesterday's spend was not
    an alarm, today is judged without the rule. The common moves already known are reused."""
    held = {(a.entity_type, a.entity_id) for a in found
            if a.metric == "spend" and a.drivers.get("rule") == spend_level_held.__name__}
    if not held:
        return found
    key_of = {(tree.levels[k], tree.entity_ids[k]): k for k in tree.frames}
    keys = [key_of[entity] for entity in sorted(held) if entity in key_of]
    before = day - timedelta(days=1)
    # yesterday as a complete day: its moves at today's hours (today's own) are not its own
    yesterday_moves = ({} if account_tests is not None and tree.whole_account is None
                       else _common_moves_by_day(
                           detector, tree, before, {d: m for d, m in moves.items() if d < day},
                           {}))
    yesterday = _judge(detector, tree, before, keys, yesterday_moves, currency=currency,
                       models=models, as_of_hours={}, held_levels=False,
                       account_tests=account_tests)
    reported = {(a.entity_type, a.entity_id) for a in yesterday
                if a.metric == "spend" and a.direction == "up" and a.severity.rank >= 1}
    unreported = [key_of[entity] for entity in sorted(held - reported) if entity in key_of]
    if not unreported:
        return found
    again = _judge(detector, tree, day, unreported, moves, currency=currency, models=models,
                   as_of_hours=as_of_hours, held_levels=False, account_tests=account_tests)
    redone = {(a.entity_type, a.entity_id, a.metric): a for a in again if a.metric == "spend"}
    kept = [redone.get((a.entity_type, a.entity_id, a.metric), a)
            if (a.entity_type, a.entity_id) in held - reported and a.metric == "spend" else a
            for a in found]
    return sorted(kept, key=lambda a: -a.score)


def _explain_parents(detector: AnomalyDetector, tree: AccountTree, day: date,
                     found: dict[Key, list[DetectedAnomaly]]) -> list[DetectedAnomaly]:
    out: list[DetectedAnomaly] = []
    stamp = pd.Timestamp(day)
    for key, anomalies in found.items():
        if tree.levels[key] == "ad" or not any(a.severity.rank >= 1 for a in anomalies):
            out.extend(anomalies)
            continue
        ads = tree.ads_under(key)
        # the parent's ads of the day and of the days before it: an ad paused today is one of
        # them (it is why the parent moved), not a parent with fewer children
        delivering = [ad for ad in ads if _delivers(tree.frames.get(ad), stamp,
                                                    days=detector.level_window)]
        for anomaly in anomalies:
            explaining = _explaining_ads(detector, tree, anomaly, ads, found, stamp)
            excess = count_excess(anomaly.metric, anomaly.actual, anomaly.expected,
                                  anomaly.drivers)
            z = float(anomaly.drivers.get("z", np.inf))
            if (anomaly.severity.rank >= 1 and excess is not None
                    and parent_is_explained(excess, z, explaining, len(delivering),
                                            detector.z_threshold)):
                anomaly = demote_explained(anomaly, explaining)
            if (anomaly.severity.rank >= 1 and excess is not None
                    and anomaly.metric in RATE_DEFINITIONS
                    and mix_explains(_child_rates(detector, tree, anomaly, ads, stamp), excess,
                                     float(anomaly.drivers.get("overdispersion", 0.0)),
                                     detector.z_threshold)):
                anomaly = demote_mix(anomaly)
            out.append(anomaly)
    return sorted(out, key=lambda a: -a.score)


def _explaining_ads(detector: AnomalyDetector, tree: AccountTree, parent: DetectedAnomaly,
                    ads: list[Key], found: dict[Key, list[DetectedAnomaly]],
                    stamp: pd.Timestamp) -> list[ChildMove]:
    """Ads under a parent that carry part of its move: their own alarm (medium or worse: a low
    anomaly carries nothing for the user) of the same metric and direction, or, for ads not
    judged that day (starting or stopped), their move against their own recent level."""
    moves: list[ChildMove] = []
    column = count_column(parent.metric)
    if column is None:
        return moves
    for ad in ads:
        same = [a for a in found.get(ad, []) if a.metric == parent.metric
                and a.direction == parent.direction and a.severity.rank >= 1]
        if same:
            excess = count_excess(same[0].metric, same[0].actual, same[0].expected,
                                  same[0].drivers)
            if excess is not None:
                moves.append(ChildMove(tree.entity_ids[ad], excess))
            continue
        excess = _unjudged_move(detector, tree.frames.get(ad), stamp, parent, column)
        if excess:
            moves.append(ChildMove(tree.entity_ids[ad], excess, lifecycle=True))
    return moves


def _unjudged_move(detector: AnomalyDetector, frame: pd.DataFrame | None, stamp: pd.Timestamp,
                   parent: DetectedAnomaly, column: str) -> float:
    """An unjudged ad's part in its parent's move: a starting ad with too little history, or an
    ad that stopped delivering. Zero for an ad judged as normal."""
    if frame is None or frame.empty:
        return 0.0
    daily = prepare_daily_frame(frame)
    dates = daily["date"].to_numpy(dtype="datetime64[ns]")
    today_at = int(np.searchsorted(dates, stamp.to_datetime64()))  # the days before: [:today_at]
    is_today = today_at < len(dates) and dates[today_at] == stamp.to_datetime64()
    impressions = daily["impressions"].to_numpy()

    def today_value(name: str) -> float:
        return float(daily[name].to_numpy()[today_at])

    stopped = not is_today or (today_value("impressions") <= 0 and today_value("spend") <= 0)
    starting = int((impressions[:today_at] > 0).sum()) < detector.min_history_days
    if not (stopped or starting):
        return 0.0
    if parent.metric in ("spend", "impressions", "leads"):
        before = daily[column].to_numpy()[max(0, today_at - detector.level_window):today_at]
        level = float(np.median(before)) if len(before) else 0.0
        return (today_value(column) if is_today else 0.0) - level
    if stopped:
        return 0.0
    exposure_column = _exposure_column(parent.metric)
    observed = parent.drivers.get(f"observed_{exposure_column}")
    expected = parent.drivers.get(f"expected_{column}")
    if not observed or expected is None:
        return 0.0
    rate = float(expected) / float(observed)
    return today_value(column) - today_value(exposure_column) * rate


#: Fewest delivering days before a parent's window for an ad's own baseline rate to count.
MIN_BASELINE_DAYS = 3


def _child_rates(detector: AnomalyDetector, tree: AccountTree, parent: DetectedAnomaly,
                 ads: list[Key], stamp: pd.Timestamp) -> list[ChildRate]:
    """Each delivering ad's count over the parent's window (the days its test pooled) and the
    count the ad's own baseline rate (its ``rate_window`` delivering days before the window)
    expects for the exposure it got there."""
    count, exposure = RATE_DEFINITIONS[parent.metric][:2]
    first = stamp - pd.Timedelta(days=pooled_days(parent.detectors[0]) - 1)
    rates: list[ChildRate] = []
    for ad in ads:
        frame = tree.frames.get(ad)
        if frame is None or frame.empty:
            continue
        daily = prepare_daily_frame(frame)
        dates = daily["date"].to_numpy(dtype="datetime64[ns]")
        counts = daily[count].to_numpy(dtype=float)
        exposures = daily[exposure].to_numpy(dtype=float)
        window = (dates >= first.to_datetime64()) & (dates <= stamp.to_datetime64())
        seen, exposed = float(counts[window].sum()), float(exposures[window].sum())
        if exposed <= 0:
            continue
        before = (dates < first.to_datetime64()) & (exposures > 0)
        past_counts = counts[before][-detector.rate_window:]
        past_exposures = exposures[before][-detector.rate_window:]
        rate = float("nan")
        if past_exposures.size >= MIN_BASELINE_DAYS:
            rate, _kept = pooled_rate(past_counts, past_exposures, detector.z_threshold)
        expected = rate * exposed if np.isfinite(rate) else seen  # a new ad expects what it did
        rates.append(ChildRate(observed=seen, expected=expected))
    return rates


def _exposure_column(metric: str) -> str:
    return (RATE_DEFINITIONS | FREQUENCY_DEFINITION)[metric][1]


def _delivers(frame: pd.DataFrame | None, stamp: pd.Timestamp, days: int = 1) -> bool:
    """True when the entity had impressions on ``stamp`` or the ``days - 1`` days before it."""
    if frame is None or frame.empty:
        return False
    dates = frame["date"].to_numpy(dtype="datetime64[ns]")
    first = int(np.searchsorted(dates, (stamp - pd.Timedelta(days=days)).to_datetime64(),
                                side="right"))
    last = int(np.searchsorted(dates, stamp.to_datetime64(), side="right"))
    return bool((frame["impressions"].to_numpy()[first:last] > 0).any())
