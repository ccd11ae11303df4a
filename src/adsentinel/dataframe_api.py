"""The Python API for notebooks: :func:`detect_frame`, a DataFrame of daily insights in and a
DataFrame of anomalies out, with no database, model store or settings file.

It is ``adsentinel backtest`` without the CSV file: the same walk
(:func:`~adsentinel.evaluation.walk.walk_accounts`, which judges each account's day through
production's :func:`~adsentinel.detect.account_day.judge_account_day`), so each day is judged
with the days before it only, exactly as production would have judged it that day.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from adsentinel.detect.features import COUNT_COLUMNS

#: the import format's required columns (README, "Importing data")
ID_COLUMNS = ("date", "account_id", "campaign_id", "adset_id", "ad_id")
ANOMALY_COLUMNS = ["account_id", "entity_type", "entity_id", "date", "metric", "detector",
                   "severity", "score", "actual", "expected", "message"]


def detect_frame(insights: pd.DataFrame, *, start: date | str | None = None,
                 end: date | str | None = None, retrain_every: int | None = 7,
                 min_samples: int = 50, history_days: int = 90,
                 workers: int = 1) -> pd.DataFrame:
    """Anomalies of the ads, ad sets and campaigns of ``insights``, day by day.

    Parameters
    ----------
    insights : DataFrame
        One row per ad and day with the import's canonical columns ``date, account_id,
        campaign_id, adset_id, ad_id, spend, impressions, clicks, leads, reach`` (other columns
        are ignored). Ad set and campaign days are the sums of their ads. Every day is taken as
        complete.
    start, end : date or ISO string, optional
        The days to judge (default: every day; the detectors need
        ``ANOMALY_MIN_HISTORY_DAYS`` (14) days of history before they speak). Days after
        ``end`` are not read.
    retrain_every : int or None
        Refit each entity's Isolation Forest every this many days on the days before
        (``None``: the statistical detectors only, much faster). ``adsentinel backtest
        --retrain-every N`` is the same.
    min_samples, history_days : int
        Days an entity needs before it gets a forest, and the forest's training window.
    workers : int
        Processes to spread the entities over (1: this process, the safe choice in a notebook).

    Returns
    -------
    DataFrame
        One row per anomaly, sorted by day: ``account_id, entity_type, entity_id, date, metric,
        detector, severity, score (0-100, higher = worse), actual, expected, message``.

    Raises
    ------
    ValueError
        A column is missing, a count is not a non-negative number, a date cannot be read, an
        ad appears twice on one day or under two ad sets; the message says which and where.
    """
    from adsentinel.evaluation.walk import walk_accounts

    if retrain_every is not None and retrain_every < 1:
        raise ValueError(f"retrain_every must be >= 1 or None, got {retrain_every!r}")
    rows = validated_insights(insights)
    first, last = _day_or_none(start, "start"), _day_or_none(end, "end")
    if first is not None and last is not None and last < first:
        raise ValueError(f"end ({last}) is before start ({first})")
    if last is not None:
        rows = rows[rows["date"] <= pd.Timestamp(last)]
    if rows.empty:
        return pd.DataFrame(columns=ANOMALY_COLUMNS)
    found = walk_accounts(rows, workers=workers, retrain_every=retrain_every,
                          min_samples=min_samples, history_days=history_days,
                          first_day=None if first is None else pd.Timestamp(first))
    return found[ANOMALY_COLUMNS].sort_values(
        ["date", "account_id", "entity_type", "entity_id", "metric"]).reset_index(drop=True)


def validated_insights(insights: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns of ``insights``, typed (ids as text, dates as timestamps, counts
    as floats), or a ``ValueError`` naming the column, row and problem."""
    if not isinstance(insights, pd.DataFrame):
        raise ValueError(f"insights must be a pandas DataFrame, got {type(insights).__name__}")
    missing = [c for c in (*ID_COLUMNS, *COUNT_COLUMNS) if c not in insights.columns]
    if missing:
        raise ValueError(f"insights lack the column(s) {', '.join(missing)}; expected "
                         f"{', '.join((*ID_COLUMNS, *COUNT_COLUMNS))}")
    rows = insights[list(ID_COLUMNS + COUNT_COLUMNS)].copy()
    for column in ID_COLUMNS[1:]:
        blank = rows[column].isna() | (rows[column].astype(str).str.strip() == "")
        _refuse(blank, rows, column, "is empty")
        rows[column] = rows[column].astype(str)
    dates = pd.to_datetime(rows["date"], errors="coerce", format="mixed")
    _refuse(dates.isna(), rows, "date", "is not a date")
    rows["date"] = dates.dt.normalize()
    for column in COUNT_COLUMNS:
        values = pd.to_numeric(rows[column], errors="coerce").astype(float)
        _refuse(~np.isfinite(values.to_numpy()), rows, column, "is not a number")
        _refuse(values < 0, rows, column, "is negative")
        rows[column] = values
    _refuse(rows.duplicated(["account_id", "ad_id", "date"], keep=False), rows, "ad_id",
            "appears twice on the same day")
    parents = rows.groupby(["account_id", "ad_id"])["adset_id"].nunique()
    if (parents > 1).any():
        account, ad = parents[parents > 1].index[0]
        raise ValueError(f"insights: ad {ad!r} of account {account!r} is under more than one "
                         "ad set; an ad has one parent")
    return rows


def _refuse(bad: pd.Series, rows: pd.DataFrame, column: str, problem: str) -> None:
    if bool(np.asarray(bad).any()):
        position = int(np.flatnonzero(np.asarray(bad))[0])
        label = rows.index[position]
        value = rows[column].iloc[position]
        value = value.item() if isinstance(value, np.generic) else value  # 1.0, not np.float64
        raise ValueError(f"insights row {label!r}, column {column!r}: {value!r} {problem} "
                         f"({int(np.asarray(bad).sum())} row(s) like it)")


def _day_or_none(value: date | str | None, name: str) -> date | None:
    if isinstance(value, datetime):  # pandas Timestamps too
        return value.date()
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a date or YYYY-MM-DD, got {value!r}") from None
