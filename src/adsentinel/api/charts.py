"""Plotly figures of an entity's metrics, as plain figure dicts (Plotly's JSON schema).

Each figure shows one metric: the expected band (lower to upper bound, shaded), the expected
value (dashed), what happened (solid), and the anomalies of that metric as markers coloured by
severity whose hover text is the anomaly's message. The browser draws them with the Plotly.js
bundled in the ``plotly`` package and served by this app (no internet needed). Pure: data in,
dicts out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adsentinel.api.series import CHARTED_METRICS, DayPoints
from adsentinel.db.models import Anomaly, AnomalyStatus

SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825",
                    "low": "#607d8b"}
METRIC_LABELS = {
    "spend": "Spend", "impressions": "Impressions", "clicks": "Clicks", "leads": "Leads",
    "reach": "Reach", "ctr": "CTR", "cpc": "CPC", "cpm": "CPM", "cpl": "CPL",
    "conversion_rate": "Conversion rate", "frequency": "Frequency",
}  # fmt: skip
_PERCENT = {"ctr", "conversion_rate"}
ANOMALY_TRACE = "anomaly"


@dataclass(frozen=True)
class Chart:
    """One metric's figure and what the page needs to place it."""

    metric: str
    label: str
    element_id: str
    figure: dict[str, Any]
    anomaly_count: int

    def figure_json(self) -> str:
        """The figure as JSON safe to embed in a ``<script type="application/json">``."""
        return json.dumps(self.figure, separators=(",", ":")).replace("<", "\\u003c")


def metric_charts(points: list[DayPoints], anomalies: list[Anomaly],
                  currency: str) -> list[Chart]:
    """One chart per metric with data; metrics with live anomalies come first."""
    live = [a for a in anomalies if a.status != AnomalyStatus.retracted.value]
    charts = []
    for metric in CHARTED_METRICS:
        if not any(p.metrics[metric].actual is not None for p in points):
            continue
        marked = [a for a in live if a.metric == metric]
        charts.append(Chart(metric, METRIC_LABELS[metric], f"chart-{metric}",
                            metric_figure(metric, points, marked, currency), len(marked)))
    charts.sort(key=lambda c: (-max((a.score for a in live if a.metric == c.metric), default=0),
                               CHARTED_METRICS.index(c.metric)))
    return charts


def metric_figure(metric: str, points: list[DayPoints], anomalies: list[Anomaly],
                  currency: str) -> dict[str, Any]:
    """The figure of one metric: band, expected, actual, and anomaly markers."""
    days = [p.day.isoformat() for p in points]
    series = [p.metrics[metric] for p in points]
    hover = "%{y:.2%}" if metric in _PERCENT else "%{y:,.2f}"
    top = chart_top([s.actual for s in series] + [s.expected for s in series]
                    + [a.actual for a in anomalies])
    # a judged day with no upper bound (e.g. a CPL on so few leads that none is still normal)
    # is normal all the way up: its band reaches the top of the chart
    upper = [s.upper if s.upper is not None or s.expected is None or s.lower is None else top
             for s in series]
    band_x, band_y = band_outline(days, [s.lower for s in series], upper)
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "expected range", "x": band_x,
         "y": band_y, "line": {"width": 0}, "fill": "toself",
         "fillcolor": "rgba(21,101,192,0.12)", "hoverinfo": "skip"},
        {"type": "scatter", "mode": "lines", "name": "expected", "x": days,
         "y": [s.expected for s in series], "line": {"color": "#757575", "dash": "dash",
                                                      "width": 1.5},
         "hovertemplate": f"expected {hover}<extra></extra>"},
        {"type": "scatter", "mode": "lines+markers", "name": METRIC_LABELS[metric], "x": days,
         "y": [s.actual for s in series], "line": {"color": "#1565c0", "width": 2},
         "marker": {"size": 4}, "hovertemplate": f"{hover}<extra></extra>"},
    ]
    if anomalies:
        # on the line where the day has a value (a two-day anomaly's own actual pools two days)
        charted = {p.day: p.metrics[metric].actual for p in points}
        traces.append({
            "type": "scatter", "mode": "markers", "name": ANOMALY_TRACE,
            "x": [a.day.isoformat() for a in anomalies],
            "y": [charted.get(a.day) if charted.get(a.day) is not None else a.actual
                  for a in anomalies],
            "customdata": [a.id for a in anomalies],
            "text": [f"{a.severity} {a.score:.0f} ({a.status}): {a.message}" for a in anomalies],
            "hovertemplate": "%{text}<extra></extra>",
            "marker": {"size": 13, "symbol": "diamond",
                       "color": [SEVERITY_COLOURS.get(a.severity, "#000") for a in anomalies],
                       "line": {"width": 1.5, "color": "#000"}},
        })
    money = metric in ("spend", "cpc", "cpm", "cpl")
    return {
        "data": traces,
        "layout": {
            "height": 300, "margin": {"l": 60, "r": 20, "t": 36, "b": 40},
            "title": {"text": METRIC_LABELS[metric] + (f" ({currency})" if money else ""),
                      "x": 0.01, "font": {"size": 15}},
            "legend": {"orientation": "h", "y": -0.18},
            "yaxis": {"tickformat": ".1%" if metric in _PERCENT else None,
                      "range": [0, top] if top else None, "rangemode": "tozero"},
            "xaxis": {"type": "date"},
            "hovermode": "x unified",
        },
    }


def chart_top(values: list[float | None], headroom: float = 1.3) -> float | None:
    """Top of the y axis: the largest value shown (actuals, expected values, anomalies) plus
    headroom. Bounds above it are cut, so a wide band on a thin day does not flatten the line."""
    finite = [v for v in values if v is not None and v == v and abs(v) != float("inf")]
    return max(finite) * headroom if finite and max(finite) > 0 else None


def band_outline(days: list[str], lower: list[float | None], upper: list[float | None]
                 ) -> tuple[list[str | None], list[float | None]]:
    """The expected band as closed outlines, one per run of days with both bounds.

    A day without bounds (not judged yet, or a bound that is unbounded such as a CPL allowing 0
    leads) breaks the band instead of being bridged: each run is drawn as its own polygon
    (upper bounds forwards, lower bounds backwards), runs separated by ``None``.
    """
    xs: list[str | None] = []
    ys: list[float | None] = []
    run: list[int] = []
    for index in [*range(len(days)), None]:
        if index is not None and lower[index] is not None and upper[index] is not None:
            run.append(index)
            continue
        if run:
            if xs:
                xs.append(None)
                ys.append(None)
            xs.extend([days[i] for i in run] + [days[i] for i in reversed(run)])
            ys.extend([upper[i] for i in run] + [lower[i] for i in reversed(run)])
            run = []
    return xs, ys


__all__ = ["ANOMALY_TRACE", "band_outline", "chart_top", "Chart", "metric_charts", "metric_figure"]
