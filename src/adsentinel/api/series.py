"""An entity's daily metrics with what detection expected of each day, for charts.

The expected value and bounds of a day are the ones detection itself computes for that day:
:func:`adsentinel.detect.statistical_walk.walk_statistical_tests`, the statistical tests of every
charted day against the days before it at once, with the detector's gating (enough history with
delivery, and a day that delivered at all) and its baselines. There is no second baseline here;
the walk also draws the count and rate bounds that detection skips far inside the threshold (a
quantile search it does not need for deciding), with the same negative-binomial interval, so a
chart can draw a continuous band.

The HTML report of ``adsentinel demo`` (:mod:`adsentinel.service.report`) draws only the stored
anomalies' expected values; a dashboard needs the band on every day, hence this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from adsentinel.config import Settings
from adsentinel.db.models import DailyInsight
from adsentinel.detect.daily_table import prepare_daily_frame
from adsentinel.detect.features import COUNT_COLUMNS, add_ratio_metrics
from adsentinel.detect.statistical import MetricTest
from adsentinel.detect.statistical_walk import walk_statistical_tests
from adsentinel.errors import AdsentinelError
from adsentinel.jsonable import finite_or

DEFAULT_SERIES_DAYS = 60
MAX_SERIES_DAYS = 366
#: Dates outside these are refused before they reach date arithmetic or the database.
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2999, 12, 31)
#: Metrics charted, in the order a marketer reads them (volumes, then efficiency).
CHARTED_METRICS: tuple[str, ...] = ("spend", "impressions", "clicks", "leads", "reach", "ctr",
                                    "cpc", "cpm", "cpl", "conversion_rate", "frequency")


@dataclass(frozen=True)
class MetricPoint:
    """One metric on one day: what happened and, if detection could judge it, what was expected."""

    actual: float | None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class DayPoints:
    """Every charted metric of one day."""

    day: date
    metrics: dict[str, MetricPoint]


def series_range(start: date | None, end: date | None, *, last_day: date | None,
                 default_days: int = DEFAULT_SERIES_DAYS) -> tuple[date, date]:
    """The days to chart: as asked, or the ``default_days`` up to the entity's last day.

    Raises :class:`AdsentinelError` (a 400) for a start after the end, a range longer than
    :data:`MAX_SERIES_DAYS`, or a date outside 1970-2999 (where date arithmetic would overflow).
    """
    for name, value in (("start", start), ("end", end)):
        if value is not None and not EARLIEST_DAY <= value <= LATEST_DAY:
            raise AdsentinelError(f"{name} {value} is out of range: dates go from {EARLIEST_DAY} "
                                  f"to {LATEST_DAY}")
    end = end or last_day or date.today()
    start = start or max(end - timedelta(days=default_days - 1), EARLIEST_DAY)
    if start > end:
        raise AdsentinelError(f"start ({start}) is after end ({end})", hint="swap them")
    if (end - start).days + 1 > MAX_SERIES_DAYS:
        raise AdsentinelError(f"the range {start} to {end} is {(end - start).days + 1} days "
                              f"long; at most {MAX_SERIES_DAYS}", hint="ask for a shorter range")
    return start, end


def expected_by_day(daily: pd.DataFrame, first: date, last: date, *, z_threshold: float,
                    iqr_multiplier: float, min_history_days: int, history_days: int,
                    ) -> dict[date, dict[str, MetricTest]]:
    """Walk-forward statistical tests of each complete day in ``[first, last]``, bounds drawn.

    ``daily`` is :func:`~adsentinel.detect.daily_table.prepare_daily_frame` output (one row
    per calendar day). A day gets tests only when detection would judge it
    (:func:`~adsentinel.detect.statistical_walk.judged_days`).
    """
    if daily.empty:
        return {}
    days = daily["date"].dt.date.to_numpy()
    positions = np.flatnonzero((days >= first) & (days <= last))
    walk = walk_statistical_tests(
        daily, positions, z_threshold=z_threshold, iqr_multiplier=iqr_multiplier,
        min_history_days=min_history_days, history_days=history_days, all_bounds=True)
    return {days[position]: {test.metric: test for test in tests}
            for position, tests in zip(positions, walk.all_tests(), strict=True) if tests}


@dataclass(frozen=True)
class ChartRules:
    """The settings a chart's expected values follow: detection's (plain values, so that they
    cross to the chart process without the rest of the settings)."""

    z_threshold: float
    iqr_multiplier: float
    min_history_days: int
    history_days: int

    @classmethod
    def of(cls, settings: Settings) -> ChartRules:
        return cls(z_threshold=settings.anomaly_z_threshold,
                   iqr_multiplier=settings.anomaly_iqr_multiplier,
                   min_history_days=settings.anomaly_min_history_days,
                   history_days=settings.isolation_forest_history_days)


#: Runs the chart computation: ``run(chart_points, rows, rules, first, last)``, e.g.
#: :meth:`adsentinel.api.chart_process.ChartProcess.run`.
ChartRunner = Callable[..., list[DayPoints]]


def entity_series(*, session: Session, settings: Settings, entity_id: int, first: date,
                  last: date, run: ChartRunner | None = None) -> list[DayPoints]:
    """Daily points of ``entity_id`` from ``first`` to ``last`` (days with a stored row only).

    Reads the history detection would need before ``first`` as well, so the first day of the
    range gets its expected value like any other. The points are computed by ``run`` (the
    server's chart process), else here.
    """
    rules = ChartRules.of(settings)
    rows = session.execute(
        select(DailyInsight.day, *(getattr(DailyInsight, c) for c in COUNT_COLUMNS),
               DailyInsight.is_complete)
        .where(DailyInsight.entity_id == entity_id,
               DailyInsight.day.between(first - timedelta(days=rules.history_days), last))
        .order_by(DailyInsight.day)).all()
    if not rows:
        return []
    plain = [tuple(row) for row in rows]
    with _CHART_SLOTS:
        if run is None:
            return chart_points(plain, rules, first, last)
        return run(chart_points, plain, rules, first, last)


#: Charts computed at once for one server process. The work is CPU-bound pandas and numpy:
#: 8 charts at once cost about twice the CPU of the same 8 one after the other (bench_api.py),
#: so they queue here, for the server process's one chart process (:mod:`.chart_process`),
#: and more processes (``adsentinel serve --workers``) serve them in parallel.
_CHART_SLOTS = threading.BoundedSemaphore(1)


def chart_points(rows: list[tuple], rules: ChartRules, first: date,
                 last: date) -> list[DayPoints]:
    """The points of the days ``first`` to ``last`` of ``rows`` (day, the count columns,
    is_complete; in day order, with the history before ``first``)."""
    frame = pd.DataFrame(rows, columns=["date", *COUNT_COLUMNS, "is_complete"])
    complete = frame[frame["is_complete"].astype(bool)]
    expected = expected_by_day(
        prepare_daily_frame(complete[["date", *COUNT_COLUMNS]]), first, last,
        z_threshold=rules.z_threshold, iqr_multiplier=rules.iqr_multiplier,
        min_history_days=rules.min_history_days, history_days=rules.history_days,
    ) if not complete.empty else {}
    shown = frame[(frame["date"] >= first) & (frame["date"] <= last)]
    values = add_ratio_metrics(shown[list(COUNT_COLUMNS)].astype(float))
    actuals = values[list(CHARTED_METRICS)].to_numpy(dtype=float).tolist()
    points = []
    for day, row in zip(shown["date"], actuals, strict=True):
        tests = expected.get(day, {})
        metrics = {}
        for metric, actual in zip(CHARTED_METRICS, row, strict=True):
            test = tests.get(metric)
            metrics[metric] = MetricPoint(
                actual=finite_or(actual),
                expected=finite_or(test.expected) if test else None,
                lower=finite_or(test.lower) if test else None,
                upper=finite_or(test.upper) if test else None,
            )
        points.append(DayPoints(day, metrics))
    return points


__all__ = ["CHARTED_METRICS", "ChartRules", "DayPoints", "MetricPoint", "chart_points",
           "entity_series", "expected_by_day", "series_range"]
