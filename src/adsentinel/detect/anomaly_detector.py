"""The anomaly detector of one entity: statistical tests, optional forest, calibration, rules.

Data flow for one entity and one analysis day::

    daily counts --> statistical.run_statistical_tests --> MetricTest (signed z per metric)
                 --> forest model.score_samples --------> ForestScoreCalibrator (z-like)
                 --> calibration.anomaly_score -------> 0-100 score --> alert rules --> severity
                 --> DetectedAnomaly (actual, expected, bounds, direction, message, drivers)

What a flagged move is worth telling is decided by small named rules applied in order
(:mod:`adsentinel.detect.metric_rules`: moves that are real but not incidents are capped at *low*,
a tracking break is raised to *medium*, an early partial-day drop is not judged), then the
isolation forest: alone it is at most *low*; corroborated by a harmful metric anomaly the same day,
at most *medium* (it says "this combination is unusual", the metrics say what hurts; when the
account's rules demote that metric anomaly, :func:`forest_follows_metrics` demotes the forest's). How a whole
account is judged on a day (its common move, parents and their ads) is
:mod:`adsentinel.detect.account_day`.

Pure: DataFrames and arrays in, dataclasses out. The parameters default to the values of
:class:`adsentinel.config.Settings` (repeated here as literals: this module never reads settings).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date as Date
from typing import Any, Protocol

import numpy as np
import pandas as pd

from adsentinel.detect.budget_habits import BudgetHabits
from adsentinel.detect.calibration import (
    LOW_CAP,
    MEDIUM_CAP,
    REPORT_FLOOR,
    ForestScoreCalibrator,
    SeverityLevel,
    anomaly_score,
    forest_drivers,
    severity_for_score,
    significance_score,
)
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import (
    COUNT_COLUMNS,
    FOREST_FEATURES,
    isolation_forest_features,
)
from adsentinel.detect.forest_message import combination_sentence, relative_moves
from adsentinel.detect.intraday import (
    DEFAULT_INTRADAY_PROFILE,
    expected_day_fraction,
)
from adsentinel.detect.metric_rules import DayFacts, account_budget_habit, judge_move
from adsentinel.detect.statistical import (
    HARMFUL_DIRECTION,
    MetricTest,
    pooled_days,
    run_statistical_tests,
)
from adsentinel.jsonable import finite_or

__all__ = [
    "AnomalyDetector",
    "DetectedAnomaly",
    "SeverityLevel",
    "get_anomaly_detector",
    "judges_day",
]

MULTIVARIATE = "multivariate"
class ScoresSamples(Protocol):
    """What the detector needs of a multivariate model: scikit-learn's ``score_samples``."""

    def score_samples(self, X: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DetectedAnomaly:
    """One anomaly of one entity, day and metric (or ``"multivariate"``), ready to store or show.

    ``score`` is on the common 0-100 scale (higher = worse); ``direction`` is where the actual
    value sits (``"up"``/``"down"``); ``lower``/``upper`` bound the normal range (``None`` when
    unbounded); ``drivers`` holds the numbers behind the message (counts, the forest's top
    features).
    """

    entity_type: str
    entity_id: str
    date: Date
    metric: str
    detectors: list[str]
    actual: float
    expected: float
    lower: float | None
    upper: float | None
    direction: str
    score: float
    severity: SeverityLevel
    message: str
    drivers: dict[str, Any] = field(default_factory=dict)
    is_partial_day: bool = False

    @property
    def harmful(self) -> bool:
        """True when the move is in the direction that hurts the advertiser."""
        if self.metric == MULTIVARIATE:
            return True
        return HARMFUL_DIRECTION.get(self.metric, "up") == self.direction

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (dates ISO, severity as its string)."""
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "date": self.date.isoformat(),
            "metric": self.metric,
            "detector": "+".join(self.detectors),
            "actual": self.actual,
            "expected": self.expected,
            "lower": self.lower,
            "upper": self.upper,
            "direction": self.direction,
            "score": round(self.score, 1),
            "severity": self.severity.value,
            "message": self.message,
            "drivers": self.drivers,
            "is_partial_day": self.is_partial_day,
        }


#: Said when ``detect_anomalies`` is given the account it never used.
CONFIG_ID_DEPRECATED = ("detect_anomalies(config_id=...) is deprecated and ignored: the caller "
                        "passes the entity's model (model=...); leave config_id out")


class AnomalyDetector:
    """Detect anomalies in one entity's daily history on one analysis day.

    Parameters
    ----------
    z_threshold : float, default 3.0
        ``|z|`` at which a metric starts to count as anomalous (score 40, severity low).
    iqr_multiplier : float, default 1.5
        IQR fence on past residuals that a volume must also leave (robust double check).
    min_history_days : int, default 14
        Days *with delivery* needed before the analysis day; fewer and nothing is reported.
    use_isolation_forest : bool, default True
        Score the day with the entity's multivariate model when one is passed.
    frequency_ideal : float, default 3.0
        Daily frequency above which a frequency rise is audience saturation.
    level_window : int, default 7
        Days in the median level of volumes: a change lasting ``level_window // 2 + 1`` days
        becomes the new normal.
    rate_window : int, default 14
        Days pooled for the baseline of rates (CTR, CPC, CPM, CPL, conversion rate).
    history_days : int, default 90
        At most this many days before the analysis day are used.
    intraday_profile : sequence of 24 floats
        Hourly delivery weights for partial days (see :mod:`adsentinel.detect.intraday`).
    """

    def __init__(
        self,
        z_threshold: float | None = None,
        iqr_multiplier: float | None = None,
        min_history_days: int | None = None,
        use_isolation_forest: bool | None = None,
        frequency_ideal: float | None = None,
        level_window: int = 7,
        rate_window: int = 14,
        history_days: int = 90,
        intraday_profile: tuple[float, ...] = DEFAULT_INTRADAY_PROFILE,
    ) -> None:
        self.z_threshold = 3.0 if z_threshold is None else float(z_threshold)
        self.iqr_multiplier = 1.5 if iqr_multiplier is None else float(iqr_multiplier)
        self.min_history_days = 14 if min_history_days is None else int(min_history_days)
        self.use_isolation_forest = True if use_isolation_forest is None else use_isolation_forest
        self.frequency_ideal = 3.0 if frequency_ideal is None else float(frequency_ideal)
        self.level_window = level_window
        self.rate_window = rate_window
        self.history_days = history_days
        self.intraday_profile = intraday_profile
        if self.z_threshold <= 0:
            raise ValueError(f"z_threshold must be > 0, got {z_threshold!r}")
        if self.min_history_days < 7:
            raise ValueError(f"min_history_days must be >= 7, got {min_history_days!r}")

    # --- public API ---------------------------------------------------------------------------

    def detect_anomalies(
        self,
        df: pd.DataFrame,
        entity_type: str,
        entity_id: str,
        config_id: int | None = None,
        analysis_date: Date | None = None,
        model: ScoresSamples | None = None,
        currency: str = "USD",
        training_scores: np.ndarray | None = None,
        as_of_hour: float | None = None,
        budget_parent: pd.DataFrame | None = None,
        budget_parent_state: ParentBudget | None = None,
        common_move: Mapping[str, float] | None = None,
        earlier_common_moves: Sequence[Mapping[str, float]] = (),
        held_levels: bool = True,
        statistical_tests: Sequence[MetricTest] | None = None,
        budget_habits: BudgetHabits | None = None,
        forest_score: float | None = None,
    ) -> list[DetectedAnomaly]:
        """Anomalies of ``entity_id`` on ``analysis_date``, worst first.

        Parameters
        ----------
        df : DataFrame, shape (n_days, ...)
            Daily rows of one entity: ``date`` (or ``day``) and the count columns ``spend,
            impressions, clicks, leads, reach``. Days without a row are days without delivery.
            Rows after ``analysis_date`` are ignored.
        entity_type, entity_id : str
            Copied into the anomalies.
        config_id : int, optional
            Deprecated, ignored: the caller resolves the account's models. Kept in its place so
            that calls written to the original interface (``detect_anomalies(...,
            config_id=...)``) still run; passing it warns (:class:`DeprecationWarning`).
        analysis_date : date, optional
            Day to judge; default the last day in ``df``.
        model : object with ``score_samples``, optional
            The entity's multivariate model (lower ``score_samples`` = more abnormal), trained on
            :func:`~adsentinel.detect.features.isolation_forest_features`.
        currency : str
            ISO code of the account's currency, for messages.
        training_scores : ndarray, shape (n_train,), optional
            ``score_samples`` of the model's training days; default: the model's scores of the
            history in ``df``.
        as_of_hour : float, optional
            Local hour (0-24) the analysis day's numbers were taken at; ``None`` = complete day.
        budget_parent : DataFrame, optional
            Daily rows (same columns) of the entity that holds the budget this entity shares with
            its siblings (an ad's ad set). When the parent's spend and delivery are normal, this
            entity's volume moves with unchanged efficiency are budget moving between siblings:
            at most low.
        budget_parent_state : ParentBudget, optional
            :meth:`parent_budget` of ``budget_parent`` already computed (siblings share it);
            when given, ``budget_parent`` is not read.
        common_move : mapping, optional
            Per metric, how the account's other campaigns moved that day
            (:func:`~adsentinel.detect.common_move.common_moves`):
            the entity is judged against what its account did.
        earlier_common_moves : sequence of mappings
            The same for the days before ``analysis_date``, yesterday first: a rate test that
            pools several days is judged against each day's own common move.
        held_levels : bool
            Apply :func:`~adsentinel.detect.metric_rules.spend_level_held` (spend holding
            yesterday's new level is at most low); ``False`` judges the day as if yesterday
            were unknown.
        statistical_tests : sequence of MetricTest, optional
            The day's statistical tests already computed, with the entity's common moves
            (:func:`~adsentinel.detect.statistical_walk.walk_statistical_tests` of many
            entity-days at once, as the hourly cycle and the walk-forward of ``evaluate`` and
            ``backtest`` do); when given,
            :func:`~adsentinel.detect.statistical.run_statistical_tests` is not run and
            ``common_move`` and ``earlier_common_moves`` are not read. ``None``: run them (the
            per-day reference).
        budget_habits : BudgetHabits, optional
            The account's budget steps known on the day
            (:mod:`~adsentinel.detect.budget_habits`): a spend step of this entity that the
            account's budget holders make routinely is an edit, at most low. ``None``: unknown.
        forest_score : float, optional
            ``model.score_samples`` of the analysis day's features already computed (with the
            other entities' days in one call: :func:`adsentinel.detect.forest.score_packed`);
            when given, the model's ``score_samples`` is not called for the day.

        Returns
        -------
        list of DetectedAnomaly
            Those scoring at least 40 (low), sorted by score, highest first.
        """
        if config_id is not None:
            warnings.warn(CONFIG_ID_DEPRECATED, DeprecationWarning, stacklevel=2)
        daily = prepare_daily_frame(df)
        if daily.empty:
            return []
        dates = daily["date"].to_numpy(dtype="datetime64[ns]")
        day = pd.Timestamp(analysis_date if analysis_date is not None else dates[-1])
        position = row_of_day(dates, day)
        if position is None:
            return []
        first = max(0, position - self.history_days)  # one row per day: rows are days
        spend = daily["spend"].to_numpy()
        impressions = daily["impressions"].to_numpy()
        if not _judges(impressions[first:position], spend[position], impressions[position],
                       self.min_history_days):
            return []
        target = daily.iloc[position]
        day_fraction = self.day_fraction(as_of_hour)
        forest = self.use_isolation_forest and model is not None
        # the history as a frame only where a test or the forest reads it
        history = daily.iloc[first:position] if forest or statistical_tests is None else None

        tests = list(statistical_tests) if statistical_tests is not None else run_statistical_tests(
            history,
            target,
            z_threshold=self.z_threshold,
            iqr_multiplier=self.iqr_multiplier,
            level_window=self.level_window,
            rate_window=self.rate_window,
            day_fraction=day_fraction,
            common_move=common_move,
            earlier_common_moves=earlier_common_moves,
        )
        context = _Context(
            entity_type=entity_type,
            entity_id=str(entity_id),
            day=day.date(),
            currency=currency,
            target=target,
            partial=day_fraction < 1.0,
            day_fraction=day_fraction,
            previous_spend=(_previous_spend(dates, spend, first, position) if held_levels
                            else float("nan")),
            budget_habits=budget_habits,
        )
        parent = (
            budget_parent_state
            if budget_parent_state is not None
            else self._parent_budget(budget_parent, day, day_fraction, currency, held_levels,
                                     budget_habits=budget_habits)
        )
        anomalies = self._metric_anomalies(tests, context, parent)
        if forest and model is not None and history is not None:
            unusual = self._forest_anomaly(model, history, target, training_scores, anomalies,
                                           context, forest_score)
            if unusual is not None:
                anomalies.append(unusual)
        return sorted(anomalies, key=lambda a: -a.score)

    def finds_nothing(self, tests: Sequence[MetricTest], *, model: ScoresSamples | None,
                      training_scores: np.ndarray | None, forest_score: float | None,
                      as_of_hour: float | None) -> bool:
        """True when :meth:`detect_anomalies` given these statistical ``tests`` of the day
        (and the same model, training scores, forest score and hour) returns nothing: no test
        reaches the threshold (only those can become metric anomalies) and the forest, if
        any, does not flag the day. Most entity-days of an hourly cycle are such days; their
        judgement is then skipped. ``False`` when it cannot tell without the entity's history
        (no forest score computed, no usable training scores)."""
        if any(abs(test.z) >= self.z_threshold for test in tests):
            return False
        if not self.use_isolation_forest or model is None:
            return True
        if self.day_fraction(as_of_hour) < 1.0:
            return True  # the forest judges complete days only
        if forest_score is None or not _usable_training_scores(training_scores):
            return False
        return _calibrated_forest_z(training_scores, forest_score) < self.z_threshold

    def day_fraction(self, as_of_hour: float | None) -> float:
        """Share of a day's delivery expected by ``as_of_hour`` (1.0 for a complete day)."""
        if as_of_hour is None or as_of_hour >= 24:
            return 1.0
        return max(expected_day_fraction(as_of_hour, self.intraday_profile), 1e-3)

    def campaign_move_tests(self, campaign: pd.DataFrame | None, day: Date,
                            as_of_hour: float | None = None) -> list[MetricTest]:
        """A campaign's tests of ``day`` alone (no pooling), for its account's common move
        (:mod:`adsentinel.detect.common_move`); empty when it has no baseline or no row."""
        if campaign is None or campaign.empty:
            return []
        frame = prepare_daily_frame(campaign)
        dates = frame["date"].to_numpy(dtype="datetime64[ns]")
        position = row_of_day(dates, pd.Timestamp(day))
        if position is None:
            return []
        history = frame.iloc[max(0, position - self.history_days): position]
        if int((history["impressions"].to_numpy() > 0).sum()) < self.min_history_days:
            return []
        return run_statistical_tests(
            history, frame.iloc[position], z_threshold=self.z_threshold,
            iqr_multiplier=self.iqr_multiplier, level_window=self.level_window,
            rate_window=self.rate_window, day_fraction=self.day_fraction(as_of_hour),
            max_pooled_days=1)

    def parent_budget(
        self, parent: pd.DataFrame | None, day: Date, as_of_hour: float | None = None,
        currency: str = "USD", level: str = "ad set", held_levels: bool = True,
        statistical_tests: Sequence[MetricTest] | None = None,
        budget_habits: BudgetHabits | None = None,
    ) -> ParentBudget:
        """What a budget-holding parent's (an ad's ad set, an ad set's campaign) spend and
        delivery did on ``day``; ``level`` names it in messages. ``statistical_tests``: the
        parent's tests of the day already computed (no common move, no gate), instead of
        running them; ``budget_habits``: its account's, as for :meth:`detect_anomalies`."""
        state = self._parent_budget(parent, pd.Timestamp(day), self.day_fraction(as_of_hour),
                                    currency, held_levels, statistical_tests, budget_habits)
        return replace(state, level=level)

    # --- statistical part ---------------------------------------------------------------------

    def _parent_budget(
        self, parent: pd.DataFrame | None, day: pd.Timestamp, day_fraction: float, currency: str,
        held_levels: bool = True, statistical_tests: Sequence[MetricTest] | None = None,
        budget_habits: BudgetHabits | None = None,
    ) -> ParentBudget:
        if parent is None:
            return ParentBudget()
        frame = prepare_daily_frame(parent)
        dates = frame["date"].to_numpy(dtype="datetime64[ns]")
        position = row_of_day(dates, day)
        if position is None:
            return ParentBudget()
        first = max(0, position - self.history_days)
        target = frame.iloc[position]
        tests = list(statistical_tests) if statistical_tests is not None else run_statistical_tests(
            frame.iloc[first:position], target, z_threshold=self.z_threshold,
            iqr_multiplier=self.iqr_multiplier, level_window=self.level_window,
            rate_window=self.rate_window, day_fraction=day_fraction,
        )
        volume = [t for t in tests if t.metric in ("spend", "impressions")]
        context = _Context(entity_type="adset", entity_id="", day=day.date(), currency=currency,
                           target=target, partial=day_fraction < 1.0, day_fraction=day_fraction,
                           previous_spend=(_previous_spend(dates, frame["spend"].to_numpy(),
                                                           first, position) if held_levels
                                           else float("nan")),
                           budget_habits=budget_habits)
        own = self._metric_anomalies(tests, context, ParentBudget())
        return ParentBudget(
            spend_known=any(t.metric == "spend" for t in volume),
            volume_normal=bool(volume) and all(abs(t.z) < self.z_threshold for t in volume),
            spend_anomaly_up=any(
                a.metric == "spend" and a.direction == "up" and a.severity.rank >= 1 for a in own
            ),
            spend_ratio=next((t.actual / t.expected for t in volume if t.metric == "spend"
                              and t.z >= self.z_threshold and t.expected > 0), 1.0),
        )

    def _metric_anomalies(
        self, tests: list[MetricTest], ctx: _Context, parent: ParentBudget
    ) -> list[DetectedAnomaly]:
        by_metric = {t.metric: t for t in tests}
        facts = DayFacts(
            by_metric=by_metric,
            flagged=frozenset(t.metric for t in tests if abs(t.z) >= self.z_threshold),
            parent_spend_known=parent.spend_known,
            parent_volume_normal=parent.volume_normal,
            parent_spend_anomaly_up=parent.spend_anomaly_up,
            parent_level=parent.level,
            parent_spend_ratio=parent.spend_ratio,
            partial=ctx.partial,
            day_fraction=ctx.day_fraction,
            frequency_ideal=self.frequency_ideal,
            target_leads=float(ctx.target["leads"]),
            previous_spend=ctx.previous_spend,
            budget_habits=ctx.budget_habits,
        )
        anomalies = []
        for test in tests:
            if test.metric not in facts.flagged:
                continue
            judged = judge_move(
                test, facts, anomaly_score(test.z, test.actual, test.expected, self.z_threshold))
            if judged is None:
                continue
            score, note, rule = judged
            severity = severity_for_score(score)
            if severity is None:
                continue
            anomalies.append(
                DetectedAnomaly(
                    entity_type=ctx.entity_type,
                    entity_id=ctx.entity_id,
                    date=ctx.day,
                    metric=test.metric,
                    detectors=[test.detector],
                    actual=test.actual,
                    expected=test.expected,
                    lower=finite_or(test.lower),
                    upper=finite_or(test.upper),
                    direction=test.direction,
                    score=round(float(score), 2),
                    severity=severity,
                    message=metric_message(test, ctx, note, self.frequency_ideal),
                    drivers=_metric_drivers(test, ctx) | _sentence_facts(
                        test, ctx, parent, rule, self.frequency_ideal),
                    is_partial_day=ctx.partial,
                )
            )
        return anomalies

    # --- multivariate part --------------------------------------------------------------------

    def _forest_anomaly(
        self,
        model: ScoresSamples,
        history: pd.DataFrame,
        target: pd.Series,
        training_scores: np.ndarray | None,
        found: list[DetectedAnomaly],
        ctx: _Context,
        forest_score: float | None = None,
    ) -> DetectedAnomaly | None:
        if ctx.partial:
            return None  # the forest was trained on complete days
        history_features = None  # computed only when needed: the calibration, or an anomaly
        if not _usable_training_scores(training_scores):
            # no (usable) training scores stored with the model: its scores of this history
            history_features = isolation_forest_features(history)
            training_scores = model.score_samples(history_features)
        today = None
        if forest_score is None:
            today = _day_features(target)
            forest_score = float(model.score_samples(today[None, :])[0])
        z = _calibrated_forest_z(training_scores, forest_score)
        if z < self.z_threshold:
            return None
        score = float(significance_score(z, self.z_threshold))
        score = min(score, MEDIUM_CAP if any(map(corroborates_forest, found)) else LOW_CAP)
        severity = severity_for_score(score)
        if severity is None or score < REPORT_FLOOR:
            return None
        today = _day_features(target) if today is None else today
        if history_features is None:
            history_features = isolation_forest_features(history)
        drivers = forest_drivers(today, history_features, FOREST_FEATURES)
        moves = relative_moves(today, history_features, FOREST_FEATURES, list(drivers))
        return DetectedAnomaly(
            entity_type=ctx.entity_type,
            entity_id=ctx.entity_id,
            date=ctx.day,
            metric=MULTIVARIATE,
            detectors=["isolation_forest"],
            actual=round(z, 3),
            expected=0.0,
            lower=None,
            upper=self.z_threshold,
            direction="up",
            score=round(score, 2),
            severity=severity,
            message=combination_sentence(moves, ctx.entity_type,
                                         no_leads=float(target["leads"]) == 0.0),
            drivers={"features": drivers, "moves": moves, "calibrated_z": round(z, 3)}
            | ({"no_leads": True} if float(target["leads"]) == 0.0 else {}),
        )


def _usable_training_scores(training_scores: np.ndarray | None) -> bool:
    """Whether a forest's stored training scores can calibrate it (at least 5 finite)."""
    return (training_scores is not None
            and int(np.isfinite(np.asarray(training_scores, float)).sum()) >= 5)


def _calibrated_forest_z(training_scores: np.ndarray | None, raw_score: float) -> float:
    """The day's forest score as a z against the entity's own training days."""
    calibrator = ForestScoreCalibrator().fit(np.asarray(training_scores, dtype=float))
    return float(calibrator.transform(np.array([raw_score]))[0])


def row_of_day(dates: np.ndarray, day: pd.Timestamp) -> int | None:
    """The row of ``day`` in a frame's sorted ``dates`` (``datetime64[ns]``); None: no row."""
    stamp = day.to_datetime64()
    position = int(np.searchsorted(dates, stamp))
    return position if position < len(dates) and dates[position] == stamp else None


def _day_features(target: pd.Series) -> np.ndarray:
    """The forest's features of one day's row (as the model was trained on)."""
    features: np.ndarray = isolation_forest_features(target.to_frame().T)[0]
    return features


def corroborates_forest(anomaly: DetectedAnomaly) -> bool:
    """True for a harmful metric anomaly of medium or worse: what lets the forest's anomaly of
    the same entity and day be *medium* (alone it is at most *low*)."""
    return anomaly.metric != MULTIVARIATE and anomaly.harmful and anomaly.severity.rank >= 1


def forest_follows_metrics(anomalies: Sequence[DetectedAnomaly]) -> list[DetectedAnomaly]:
    """``anomalies`` with each forest anomaly capped at *low* when no metric anomaly of its
    entity and day corroborates it any longer: the rules between levels may have demoted the
    metric anomaly that corroborated it (a parent's move its ads explain, its mix of ads
    changing), and "this combination is unusual" is then not news on its own either."""
    corroborated = {(a.entity_type, a.entity_id, a.date) for a in anomalies
                    if corroborates_forest(a)}
    return [a if a.metric != MULTIVARIATE or a.severity.rank < 1
            or (a.entity_type, a.entity_id, a.date) in corroborated
            else replace(a, score=round(min(a.score, LOW_CAP), 2), severity=SeverityLevel.LOW)
            for a in anomalies]


def get_anomaly_detector(
    z_threshold: float | None = None,
    iqr_multiplier: float | None = None,
    min_history_days: int | None = None,
    use_isolation_forest: bool | None = None,
    frequency_ideal: float | None = None,
    **options: Any,
) -> AnomalyDetector:
    """A new :class:`AnomalyDetector` (cheap: one per task or thread)."""
    return AnomalyDetector(
        z_threshold=z_threshold,
        iqr_multiplier=iqr_multiplier,
        min_history_days=min_history_days,
        use_isolation_forest=use_isolation_forest,
        frequency_ideal=frequency_ideal,
        **options,
    )


def judges_day(history: pd.DataFrame, target: pd.Series, min_history_days: int) -> bool:
    """Whether detection judges ``target`` at all: at least ``min_history_days`` days with
    impressions in ``history``, and some delivery on the day (a pause or a stop is an entity
    status, not an anomaly). :func:`~adsentinel.detect.statistical_walk.judged_days` is the
    same rule over every day of a frame at once."""
    return _judges(history["impressions"].to_numpy(), float(target["spend"]),
                   float(target["impressions"]), min_history_days)


def _judges(history_impressions: np.ndarray, spend: float, impressions: float,
            min_history_days: int) -> bool:
    """:func:`judges_day` on the history's impressions and the day's spend and impressions."""
    if int((history_impressions > 0).sum()) < min_history_days:
        return False
    return not bool(spend <= 0 and impressions <= 0)


# --- input preparation ------------------------------------------------------------------------


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentBudget:
    """What a budget holder (an ad's ad set, an ad set's campaign) did on the judged day
    (all false: unknown).

    ``volume_normal``: its spend and impressions are within their normal range (a child's volume
    move is then budget shifting between siblings). ``spend_anomaly_up``: its own spend is up
    enough to be an anomaly of at least medium severity (the child's spend rise is part of it).
    ``spend_ratio``: its spend over expected when it rose beyond the threshold (1 otherwise): a
    budget edit there scales its children's spend too. ``spend_known``: its spend was judged on
    the day at all. ``level`` names the holder in messages.
    """

    spend_known: bool = False
    volume_normal: bool = False
    spend_anomaly_up: bool = False
    spend_ratio: float = 1.0
    level: str = "ad set"




@dataclass(frozen=True)
class _Context:
    entity_type: str
    entity_id: str
    day: Date
    currency: str
    target: pd.Series
    partial: bool
    day_fraction: float
    previous_spend: float = float("nan")  # the day before's spend (NaN: no row for it)
    budget_habits: BudgetHabits | None = None  # the account's budget steps (None: unknown)


def _previous_spend(dates: np.ndarray, spend: np.ndarray, first: int, position: int) -> float:
    """The spend of the day before row ``position`` when the history (rows ``first`` to
    ``position - 1``, one per calendar day) ends with it, else NaN."""
    if position <= first or dates[position] - dates[position - 1] != _ONE_DAY:
        return float("nan")
    return float(spend[position - 1])


_ONE_DAY = np.timedelta64(1, "D")


CURRENCY_SYMBOLS = {
    "USD": "$", "BRL": "R$", "EUR": "€", "GBP": "£", "MXN": "MX$", "ARS": "AR$", "CAD": "CA$",
    "AUD": "A$", "JPY": "¥", "INR": "₹", "CLP": "CLP$", "COP": "COP$",
}  # fmt: skip
_LABELS = {
    "spend": "Spend", "impressions": "Impressions", "leads": "Leads", "ctr": "CTR",
    "conversion_rate": "Conversion rate", "cpc": "CPC", "cpm": "CPM", "cpl": "CPL",
    "frequency": "Frequency",
}  # fmt: skip
_MONEY = {"spend", "cpc", "cpm", "cpl"}


def format_money(value: float, currency: str) -> str:
    """``R$ 1,234.50`` style amount in ``currency`` (ISO code; unknown codes are spelled out)."""
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), currency.upper())
    return f"{symbol} {value:,.2f}"


def format_metric(metric: str, value: float, currency: str) -> str:
    """A metric's value as a marketer reads it (money, percent, count or plain ratio)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if metric in _MONEY:
        return format_money(value, currency)
    if metric in ("ctr", "conversion_rate"):
        return f"{100 * value:.2f}%"
    if metric in ("impressions", "leads"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _ratio_text(actual: float, expected: float) -> str:
    if expected <= 0 or not np.isfinite(expected):
        return "new"
    ratio = actual / expected
    if ratio >= 1:
        return f"{ratio:.1f}x"
    return f"{100 * (ratio - 1):+.0f}%"


def metric_message(test: MetricTest, ctx: _Context, note: str, frequency_ideal: float) -> str:
    """Plain-language sentence for one metric anomaly, in the account's currency.

    e.g. ``"CPL R$ 45.10 vs R$ 14.20 expected (3.2x): 0 leads on R$ 320.00 of spend"``.
    """
    cur = ctx.currency
    t = {c: float(ctx.target[c]) for c in COUNT_COLUMNS}
    t.update({k: v for k, v in test.volume.items() if k in COUNT_COLUMNS})  # pooled days
    metric = test.metric
    label = _LABELS.get(metric, metric)
    leads, spend = int(t["leads"]), float(t["spend"])
    if metric == "cpl" and leads == 0:
        expected_leads = test.volume.get("expected_leads", float("nan"))
        head = (
            f"CPL undefined: 0 leads on {format_money(spend, cur)} of spend "
            f"(CPL {format_money(test.expected, cur)} expected, ~{expected_leads:.0f} leads)"
        )
    else:
        head = (
            f"{label} {format_metric(metric, test.actual, cur)} vs "
            f"{format_metric(metric, test.expected, cur)} expected "
            f"({_ratio_text(test.actual, test.expected)})"
        )
        detail = {
            "cpl": f"{leads:,} leads on {format_money(spend, cur)} of spend",
            "cpc": f"{int(t['clicks']):,} clicks on {format_money(spend, cur)} of spend",
            "cpm": f"{int(t['impressions']):,} impressions on {format_money(spend, cur)}",
            "ctr": f"{int(t['clicks']):,} clicks on {int(t['impressions']):,} impressions",
            "conversion_rate": f"{leads:,} leads from {int(t['clicks']):,} clicks",
            "frequency": f"ideal is at most {frequency_ideal:g}",
        }.get(metric)
        if detail:
            head += f": {detail}"
    days = pooled_days(test.detector)
    if days == 2:
        head += " (yesterday and today together)"
    elif days > 2:
        head += f" (the last {days} days together)"
    if note:
        head += f"; {note}"
    if ctx.partial:
        head += f" (partial day, {100 * ctx.day_fraction:.0f}% of a day's delivery expected by now)"
    return head


def _metric_drivers(test: MetricTest, ctx: _Context) -> dict[str, Any]:
    t = ctx.target
    drivers: dict[str, Any] = {c: float(t[c]) for c in COUNT_COLUMNS}
    drivers["z"] = round(test.z, 3)
    for key, value in test.volume.items():
        if key.startswith("expected_") or key == "overdispersion":
            drivers[key] = round(float(value), 4)
        elif key in COUNT_COLUMNS:  # the (possibly pooled) counts the test was made on
            drivers[f"observed_{key}"] = float(value)
    if test.metric == "cpl" and int(t["leads"]) == 0 and float(t["spend"]) > 0:
        drivers["zero_leads_with_spend"] = True
    return drivers


#: rules whose note names the budget holder's level or its spend ratio
_HOLDER_NOTE_RULES = ("ad_set_carries_spend", "ads_hold_no_budget", "holder_budget_edit")


def _sentence_facts(test: MetricTest, ctx: _Context, parent: ParentBudget, rule: str,
                    frequency_ideal: float) -> dict[str, Any]:
    """What :mod:`adsentinel.detect.sentences` needs besides the counts to write the message
    again in another language: the rule that capped or raised the move and what its note
    names, the day's expected share on a partial day, the frequency's ideal."""
    facts: dict[str, Any] = {"rule": rule} if rule else {}
    if rule in _HOLDER_NOTE_RULES:
        facts.update(parent_level=parent.level, parent_spend_ratio=float(parent.spend_ratio))
    if rule == account_budget_habit.__name__ and ctx.budget_habits is not None:
        facts["budget_steps"] = ctx.budget_habits.steps_at_least(test.actual / test.expected)
        facts["budget_days"] = ctx.budget_habits.days
    if ctx.partial:
        facts["day_fraction"] = float(ctx.day_fraction)
    if test.metric == "frequency":
        facts["frequency_ideal"] = float(frequency_ideal)
    return facts
