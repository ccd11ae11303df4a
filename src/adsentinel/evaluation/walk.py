"""Walking labelled or real data forward, day by day, as production would have judged it.

Every entity (campaign, ad set and ad, parents being sums of their ads) is judged on every day
using only the days before it:

* :func:`walk_accounts` is the detector itself: each account's day goes through production's
  :func:`~adsentinel.detect.account_day.judge_account_day`, forests refitted every N days. It
  serves ``adsentinel backtest`` (:func:`backtest_csv`), ``adsentinel evaluate``
  (:func:`engine_walk`) and :func:`adsentinel.detect_frame`;
* :func:`walk_naive` is the *naive* yardstick (z-score and IQR per metric on
  mean/std, and an Isolation Forest labelling ``contamination`` = 10 % of days), reimplemented
  here only as a yardstick, one entity at a time.

How the anomalies are scored against labels is :mod:`adsentinel.evaluation.scoring`.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import numpy as np
import pandas as pd

from adsentinel.detect.account_day import AccountTree, EntityModel, judge_account_day
from adsentinel.detect.account_walk import account_statistical_tests
from adsentinel.detect.anomaly_detector import AnomalyDetector
from adsentinel.detect.calibration import SeverityLevel
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import (
    COUNT_COLUMNS,
    RATIO_METRICS,
    add_ratio_metrics,
    isolation_forest_features,
)

EntityKey = tuple[str, str, str]  # (account_id, level, entity_id)
_SEVERITY_RANK = {level.value: level.rank for level in SeverityLevel}


# --- data preparation -------------------------------------------------------------------------


def entity_frames(insights: pd.DataFrame) -> dict[EntityKey, pd.DataFrame]:
    """Prepared daily frames of every ad, ad set and campaign of an insights table.

    ``insights`` has the synthetic/import columns (``date, account_id, campaign_id, adset_id,
    ad_id`` and the counts); parents' rows are the sums of their ads' rows.
    """
    rows = insights.copy()
    rows["date"] = pd.to_datetime(rows["date"])
    frames: dict[EntityKey, pd.DataFrame] = {}
    for level, column in (("campaign", "campaign_id"), ("adset", "adset_id"), ("ad", "ad_id")):
        sums = rows.groupby(["account_id", column, "date"], sort=True)[list(COUNT_COLUMNS)].sum()
        for (account, entity), frame in sums.groupby(level=[0, 1], sort=False):
            daily = frame.reset_index(level=[0, 1], drop=True).reset_index()
            frames[(str(account), level, str(entity))] = prepare_daily_frame(
                daily.astype({c: float for c in COUNT_COLUMNS})
            )
    return frames


def hierarchy_of(insights: pd.DataFrame) -> dict[EntityKey, EntityKey | None]:
    """Parent of every entity key (``None`` for campaigns)."""
    parents: dict[EntityKey, EntityKey | None] = {}
    links = insights[["account_id", "campaign_id", "adset_id", "ad_id"]].drop_duplicates()
    for account, campaign, adset, ad in links.itertuples(index=False):
        account = str(account)
        parents[(account, "campaign", str(campaign))] = None
        parents[(account, "adset", str(adset))] = (account, "campaign", str(campaign))
        parents[(account, "ad", str(ad))] = (account, "adset", str(adset))
    return parents


# --- engines ----------------------------------------------------------------------------------

#: ``(frame up to the day, day, level, budget parent, entity key)``
#: ``-> [(metric, severity, score, detector[, actual, expected, message])]``
DetectDay = Callable[[pd.DataFrame, pd.Timestamp, str, pd.DataFrame | None, Any], list[tuple]]


@dataclass
class NaiveEngine:
    """The naive yardstick: mean/std z-score and IQR per metric, IF with contamination 0.1.

    Severity graded on ``|z|`` alone: ``|z| >= 5`` critical, ``>= 4`` high, ``>= z_threshold``
    medium, IQR fence alone low; an Isolation Forest outlier (trained when ``min_samples`` days
    exist, retrained every ``retrain_every`` days) is medium.
    """

    z_threshold: float = 3.0
    iqr_multiplier: float = 1.5
    min_history_days: int = 14
    contamination: float = 0.1
    min_samples: int = 50
    retrain_every: int = 7
    _models: dict[object, tuple[int, Any]] = field(default_factory=dict)  # scikit-learn's forests

    def __call__(self, frame, day, level, parent=None, entity="") -> list[tuple]:
        history = frame[frame["date"] < day].tail(90)
        target = frame[frame["date"] == day]
        if len(history) < self.min_history_days or target.empty:
            return []
        metrics = ("spend", "impressions", "clicks", "leads", *RATIO_METRICS)
        hist = add_ratio_metrics(history)
        today = add_ratio_metrics(target).iloc[0]
        found: list[tuple] = []
        for metric in metrics:
            values = hist[metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            x = float(today[metric])
            if values.size < self.min_history_days or not np.isfinite(x):
                continue
            std = values.std()
            z = abs(x - values.mean()) / std if std > 0 else 0.0
            q1, q3 = np.percentile(values, [25, 75])
            fence = self.iqr_multiplier * (q3 - q1)
            outside = x < q1 - fence or x > q3 + fence
            if z >= 5:
                found.append((metric, "critical", z, "zscore"))
            elif z >= 4:
                found.append((metric, "high", z, "zscore"))
            elif z >= self.z_threshold:
                found.append((metric, "medium", z, "zscore"))
            elif outside:
                found.append((metric, "low", z, "iqr"))
        if len(history) >= self.min_samples and self._forest_says_outlier(entity, history, target):
            found.append(("multivariate", "medium", float("nan"), "isolation_forest"))
        return found

    def _forest_says_outlier(self, key, history, target) -> bool:
        from sklearn.ensemble import IsolationForest

        n = len(history)
        trained = self._models.get(key)
        if trained is None or n - trained[0] >= self.retrain_every:
            model = IsolationForest(
                n_estimators=100, contamination=self.contamination, random_state=0
            ).fit(isolation_forest_features(history))
            trained = (n, model)
            self._models[key] = trained
        return bool(trained[1].predict(isolation_forest_features(target))[0] == -1)


# --- walk-forward -----------------------------------------------------------------------------


def walk_forward(
    frames: dict[EntityKey, pd.DataFrame],
    engine: DetectDay,
    *,
    first_day: pd.Timestamp | None = None,
    budget_parents: dict[EntityKey, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Judge every entity on every day (from ``first_day``) with the days before it only.

    ``budget_parents`` maps an ad's key to its ad set's frame (the budget holder).

    Returns one row per anomaly: ``account_id, entity_type, entity_id, date, metric, severity,
    score, detector``.
    """
    out: list[tuple] = []
    for (account, level, entity), frame in frames.items():
        for position, day in enumerate(frame["date"]):
            if first_day is not None and day < first_day:
                continue
            upto = frame.iloc[: position + 1]
            parent = (budget_parents or {}).get((account, level, entity))
            if parent is not None:
                parent = parent[parent["date"] <= day]
            found = engine(upto, day, level, parent, (account, level, entity))
            for metric, severity, score, detector, *details in found:
                actual, expected, message = (*details, None, None, None)[:3]
                out.append((account, level, entity, day.date(), metric, severity, score, detector,
                            actual, expected, message))
    return pd.DataFrame(
        out,
        columns=["account_id", "entity_type", "entity_id", "date", "metric", "severity", "score",
                 "detector", "actual", "expected", "message"],
    )


def _walk_naive_chunk(frames: dict[EntityKey, pd.DataFrame]) -> pd.DataFrame:
    return walk_forward(frames, NaiveEngine())


def walk_naive(frames: dict[EntityKey, pd.DataFrame], workers: int | None = None) -> pd.DataFrame:
    """:func:`walk_forward` of the naive yardstick (:class:`NaiveEngine`), entities spread over
    processes."""
    workers = workers or max(1, (os.cpu_count() or 1))
    if workers == 1:
        return _walk_naive_chunk(frames)
    items = list(frames.items())
    chunks = [dict(items[i::workers]) for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_walk_naive_chunk, chunks))
    return pd.concat(parts, ignore_index=True)


def backtest_csv(
    path,
    *,
    start: date,
    end: date,
    retrain_every: int | None = 1,
    min_samples: int = 50,
    history_days: int = 90,
    workers: int | None = None,
    detector: AnomalyDetector | None = None,
) -> pd.DataFrame:
    """Walk forward over an insights CSV (the import format) from ``start`` to ``end``.

    The file is first imported into a throw-away embedded store, so it gets the importer's
    checks (a bad line is an :class:`~adsentinel.errors.InputFileError` naming file, line and
    column). Each day is judged with the days before it only, through the same account-level
    code as production (:func:`walk_accounts`) and with ``detector`` (default: the default
    settings; the CLI passes the configured one); per-entity forests are refitted every
    ``retrain_every`` days, as production retrains daily.

    Returns one row per anomaly: ``account_id, entity_type, entity_id, date, metric, detector,
    severity, score, actual, expected, message``.
    """
    import tempfile
    from pathlib import Path

    from adsentinel.config import load_settings
    from adsentinel.db.engine import open_database
    from adsentinel.ingest.csv_import import import_insights_csv

    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if retrain_every is not None and retrain_every < 1:
        raise ValueError(f"retrain_every must be >= 1 or None, got {retrain_every!r}")
    with tempfile.TemporaryDirectory(prefix="adsentinel-backtest-") as folder:
        engine = open_database(load_settings(data_dir=Path(folder)))
        try:
            import_insights_csv(Path(path), engine=engine, account_name=None)
            with engine.connect() as conn:
                insights = pd.read_sql_query(
                    """SELECT d.day AS date, COALESCE(a.platform_account_id, a.name) AS account_id,
                              c.platform_id AS campaign_id, s.platform_id AS adset_id,
                              e.platform_id AS ad_id, d.spend, d.impressions, d.clicks, d.leads,
                              d.reach
                       FROM daily_insights d JOIN entities e ON e.id = d.entity_id
                       JOIN entities s ON s.id = e.parent_id JOIN entities c ON c.id = s.parent_id
                       JOIN ad_accounts a ON a.id = e.account_id
                       WHERE e.level = 'ad' AND d.day <= :end AND d.is_complete""",
                    conn, params={"end": end.isoformat()})
        finally:
            engine.dispose()
    insights["date"] = pd.to_datetime(insights["date"])
    found = walk_accounts(insights, detector, workers=workers, retrain_every=retrain_every,
                          min_samples=min_samples, history_days=history_days,
                          first_day=pd.Timestamp(start))
    columns = ["account_id", "entity_type", "entity_id", "date", "metric", "detector",
               "severity", "score", "actual", "expected", "message"]
    return found[columns].sort_values(["date", "account_id", "entity_type", "entity_id",
                                       "metric"]).reset_index(drop=True)


# --- walk-forward by account (the production rules between entities) ------------------------


def account_trees(insights: pd.DataFrame) -> dict[str, AccountTree]:
    """Each account of an ad-level insights table as an :class:`AccountTree` keyed like
    :func:`entity_frames` (``(account_id, level, entity_id)``)."""
    frames = entity_frames(insights)
    parents = hierarchy_of(insights)
    trees: dict[str, AccountTree] = {}
    for account in sorted({key[0] for key in frames}):
        mine = {k: f for k, f in frames.items() if k[0] == account}
        trees[account] = AccountTree(
            frames={k: f for k, f in mine.items()}, levels={k: k[1] for k in mine},
            parents={k: parents.get(k) for k in mine}, entity_ids={k: k[2] for k in mine})
    return trees


def walk_account(tree: AccountTree, detector: AnomalyDetector, *, retrain_every: int | None,
                 min_samples: int = 50, history_days: int = 90,
                 first_day: pd.Timestamp | None = None,
                 statistical_walk: bool = True) -> pd.DataFrame:
    """Judge every day of one account with only the days before it, as production would
    (:func:`~adsentinel.detect.account_day.judge_account_day`); forests refitted every
    ``retrain_every`` days (``None``: statistical detectors only).

    ``statistical_walk``: compute every entity's (and budget holder's) statistical tests of
    every day at once (:func:`~adsentinel.detect.account_walk.account_statistical_tests`,
    vectorised) and pass
    them to each day's judgement; ``False`` runs them day by day inside it (the per-day
    reference, as the hourly cycle does). Both give the same anomalies
    (``tests/evaluation/test_walk_statistical.py``).
    """
    from adsentinel.detect.forest import IsolationForest

    account_tests = account_statistical_tests(
        detector, tree.frames, tree.levels, tree.parents) if statistical_walk else None
    days = sorted(set().union(*(set(f["date"]) for f in tree.frames.values())))
    key_of: dict[tuple[str, str], EntityKey] = {  # (the tree's keys are account_trees' EntityKey)
        (tree.levels[k], tree.entity_ids[k]): cast(EntityKey, k) for k in tree.frames}
    trained: dict[object, tuple[pd.Timestamp, EntityModel | None]] = {}
    out: list[tuple] = []
    spans = {k: (f["date"].iloc[0], f["date"].iloc[-1]) for k, f in tree.frames.items()}
    for day in days:
        if first_day is not None and day < first_day:
            continue
        judged = [k for k, (first, last) in spans.items() if first <= day <= last]
        models: dict[object, EntityModel] = {}
        if retrain_every:
            for key in judged:
                previous = trained.get(key)
                if previous is None or (day - previous[0]).days >= retrain_every:
                    frame = tree.frames[key]
                    history = frame[frame["date"] < day].tail(history_days)
                    model = None
                    if len(history) >= min_samples:
                        seed = zlib.crc32(repr(key).encode())
                        forest = IsolationForest(n_estimators=100, random_state=seed).fit(
                            isolation_forest_features(history))
                        model = EntityModel(forest, forest.training_scores_)
                    previous = trained[key] = (day, model)
                if previous[1] is not None:
                    models[key] = previous[1]
        for anomaly in judge_account_day(detector, tree, day.date(), judged, models=models,
                                         account_tests=account_tests):
            key = key_of[(anomaly.entity_type, anomaly.entity_id)]
            out.append((key[0], key[1], key[2], day.date(), anomaly.metric,
                        anomaly.severity.value, anomaly.score, "+".join(anomaly.detectors),
                        anomaly.actual, anomaly.expected, anomaly.message))
    return pd.DataFrame(out, columns=["account_id", "entity_type", "entity_id", "date", "metric",
                                      "severity", "score", "detector", "actual", "expected",
                                      "message"])


def _walk_account_job(args) -> pd.DataFrame:
    tree, detector, options = args
    return walk_account(tree, detector, **options)


def walk_accounts(insights: pd.DataFrame, detector: AnomalyDetector | None = None, *,
                  workers: int | None = None, **options) -> pd.DataFrame:
    """:func:`walk_account` over every account of ``insights``, accounts spread over processes."""
    detector = detector or AnomalyDetector()
    trees = list(account_trees(insights).values()) if not insights.empty else []
    workers = min(workers or os.cpu_count() or 1, max(len(trees), 1))
    jobs = [(tree, detector, options) for tree in trees]
    if workers == 1 or len(jobs) == 1:
        parts = [_walk_account_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_walk_account_job, jobs))
    return pd.concat(parts, ignore_index=True) if parts else walk_account(
        AccountTree({}, {}, {}, {}), detector, retrain_every=None)


def engine_walk(detector: AnomalyDetector, *, retrain_every: int = 7, min_samples: int = 50,
                history_days: int = 90, workers: int | None = None):
    """A :data:`~adsentinel.evaluation.worlds.WalkEngine` for the engines of
    :data:`~adsentinel.evaluation.worlds.ENGINES`: ``detector`` with its forests refitted every
    ``retrain_every`` days, the same without forests (the ablation), and the naive
    configuration."""

    def walk(insights: pd.DataFrame, engine: str) -> pd.DataFrame:
        if engine == "naive":
            return walk_naive(entity_frames(insights), workers)
        with_forest = engine == "adsentinel" and detector.use_isolation_forest
        return walk_accounts(insights, detector, workers=workers,
                             retrain_every=retrain_every if with_forest else None,
                             min_samples=min_samples, history_days=history_days)

    return walk
