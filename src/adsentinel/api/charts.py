"""Plotly figures of an entity's metrics, as plain figure dicts (Plotly's JSON schema).

Each figure shows one metric: the expected band (lower to upper bound, shaded), the expected
value (dashed), what happened (solid), and the anomalies of that metric as markers coloured by
severity whose hover text is the anomaly's message. The browser draws them with the Plotly.js
bundled in the ``plotly`` package and served by this app (no internet needed). Pure: data in,
dicts out.

The charts say what detection said, no more:

* a metric detection does not judge on its own (clicks, reach) has no "expected" in its legend;
* an anomaly whose test pooled several days (``nb_rate_2d``) is drawn as a segment over those
  days at the pooled value the test judged, not at one day's value inside the band;
* a judged day whose interval is unbounded or spans the whole axis (a rate on a handful of
  clicks or leads) gets no band but a grey cross, "too little volume to judge".

Trace and axis names are English here; :meth:`Chart.figure_json` translates them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adsentinel.api.series import CHARTED_METRICS, DayPoints
from adsentinel.db.models import Anomaly, AnomalyStatus
from adsentinel.detect.statistical import pooled_days
from adsentinel.i18n import N_

SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825",
                    "low": "#607d8b"}
METRIC_LABELS = {  # translated by the dashboard's catalog (templates/_labels.html has them)
    "spend": "Spend", "impressions": "Impressions", "clicks": "Clicks", "leads": "Leads",
    "reach": "Reach", "ctr": "CTR", "cpc": "CPC", "cpm": "CPM", "cpl": "CPL",
    "conversion_rate": "Conversion rate", "frequency": "Frequency",
}  # fmt: skip
_PERCENT = {"ctr", "conversion_rate"}
ANOMALY_TRACE = N_("anomaly")
LOW_VOLUME_TRACE = N_("too little volume to judge")
EXPECTED_RANGE_TRACE, EXPECTED_TRACE = N_("expected range"), N_("expected value")
POOLED_TRACE = N_("judged together")


@dataclass(frozen=True)
class Chart:
    """One metric's figure and what the page needs to place it."""

    metric: str
    label: str
    element_id: str
    figure: dict[str, Any]
    anomaly_count: int
    judged: bool = True

    def figure_json(self, gettext: Callable[[str], str] | None = None) -> str:
        """The figure as JSON safe to embed in a ``<script type="application/json">``, its
        trace names and title translated by ``gettext`` (each trace keeps its English name in
        ``meta``, which scripts and tests use)."""
        figure = self.figure
        if gettext is not None:
            figure = {**figure, "data": [{**t, "name": gettext(t["name"])} for t in figure["data"]],
                      "layout": {**figure["layout"], "title": {
                          **figure["layout"]["title"], "text": _translated_title(
                              figure["layout"]["title"]["text"], self.label, gettext)}}}
        return json.dumps(figure, separators=(",", ":")).replace("<", "\\u003c")


def _translated_title(title: str, label: str, gettext: Callable[[str], str]) -> str:
    return gettext(label) + title[len(label):]


def metric_charts(points: list[DayPoints], anomalies: list[Anomaly],
                  currency: str) -> list[Chart]:
    """One chart per metric with data; metrics with live anomalies come first."""
    live = [a for a in anomalies if a.status != AnomalyStatus.retracted.value]
    charts = []
    for metric in CHARTED_METRICS:
        if not any(p.metrics[metric].actual is not None for p in points):
            continue
        marked = [a for a in live if a.metric == metric]
        judged = any(p.metrics[metric].expected is not None for p in points)
        charts.append(Chart(metric, METRIC_LABELS[metric], f"chart-{metric}",
                            metric_figure(metric, points, marked, currency), len(marked),
                            judged))
    charts.sort(key=lambda c: (-max((a.score for a in live if a.metric == c.metric), default=0),
                               CHARTED_METRICS.index(c.metric)))
    return charts


def metric_figure(metric: str, points: list[DayPoints], anomalies: list[Anomaly],
                  currency: str) -> dict[str, Any]:
    """The figure of one metric: band, expected, actual, too-thin days, and anomaly markers."""
    days = [p.day.isoformat() for p in points]
    series = [p.metrics[metric] for p in points]
    hover = "%{y:.2%}" if metric in _PERCENT else "%{y:,.2f}"
    top = chart_top([s.actual for s in series] + [s.expected for s in series]
                    + [a.actual for a in anomalies])
    thin = [too_little_volume(s.expected, s.lower, s.upper, top) for s in series]
    band_x, band_y = band_outline(days, [None if t else s.lower for s, t in zip(series, thin, strict=True)],
                                  [None if t else s.upper for s, t in zip(series, thin, strict=True)])
    traces: list[dict[str, Any]] = []
    if any(s.expected is not None for s in series):
        traces += [
            {"type": "scatter", "mode": "lines", "name": EXPECTED_RANGE_TRACE,
             "meta": EXPECTED_RANGE_TRACE,
             "x": band_x, "y": band_y, "line": {"width": 0}, "fill": "toself",
             "fillcolor": "rgba(21,101,192,0.12)", "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines", "name": EXPECTED_TRACE, "meta": EXPECTED_TRACE,
             "x": days, "y": [s.expected for s in series],
             "line": {"color": "#757575", "dash": "dash", "width": 1.5},
             "hovertemplate": f"%{{fullData.name}} {hover}<extra></extra>"},
        ]
    traces.append(
        {"type": "scatter", "mode": "lines+markers", "name": METRIC_LABELS[metric],
         "meta": "actual", "x": days, "y": [s.actual for s in series],
         "line": {"color": "#1565c0", "width": 2}, "marker": {"size": 4},
         "hovertemplate": f"{hover}<extra></extra>"})
    if any(thin):
        traces.append({
            "type": "scatter", "mode": "markers", "name": LOW_VOLUME_TRACE,
            "meta": LOW_VOLUME_TRACE, "x": [d for d, t in zip(days, thin, strict=True) if t],
            "y": [s.actual for s, t in zip(series, thin, strict=True) if t],
            "marker": {"symbol": "x", "size": 9, "color": "#9e9e9e"}, "hoverinfo": "skip"})
    if anomalies:
        traces += anomaly_traces(metric, points, anomalies)
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


def anomaly_traces(metric: str, points: list[DayPoints], anomalies: list[Anomaly]
                   ) -> list[dict[str, Any]]:
    """The anomalies' markers, and for each anomaly judged on pooled days a segment over those
    days at the pooled value (``actual`` as the test computed it)."""
    charted = {p.day: p.metrics[metric].actual for p in points}
    spans_x: list[str | None] = []
    spans_y: list[float | None] = []
    marker_y = []
    for anomaly in anomalies:
        pooled = max((pooled_days(d) for d in (anomaly.detectors or "").split("+")), default=1)
        if pooled > 1:
            first = anomaly.day - timedelta(days=pooled - 1)
            spans_x += [first.isoformat(), anomaly.day.isoformat(), None]
            spans_y += [anomaly.actual, anomaly.actual, None]
            marker_y.append(anomaly.actual)
        else:  # on the line where the day has a value
            day_value = charted.get(anomaly.day)
            marker_y.append(day_value if day_value is not None else anomaly.actual)
    traces: list[dict[str, Any]] = []
    if spans_x:
        traces.append({"type": "scatter", "mode": "lines", "name": POOLED_TRACE,
                       "meta": POOLED_TRACE, "x": spans_x[:-1], "y": spans_y[:-1],
                       "line": {"color": "#b71c1c", "width": 4}, "opacity": 0.55,
                       "hoverinfo": "skip"})
    traces.append({
        "type": "scatter", "mode": "markers", "name": ANOMALY_TRACE, "meta": ANOMALY_TRACE,
        "x": [a.day.isoformat() for a in anomalies], "y": marker_y,
        "customdata": [a.id for a in anomalies],
        "text": [f"{a.severity} {a.score:.0f} ({a.status}): {a.message}" for a in anomalies],
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {"size": 13, "symbol": "diamond",
                   "color": [SEVERITY_COLOURS.get(a.severity, "#000") for a in anomalies],
                   "line": {"width": 1.5, "color": "#000"}},
    })
    return traces


def too_little_volume(expected: float | None, lower: float | None, upper: float | None,
                      top: float | None) -> bool:
    """A judged day whose normal range says nothing: unbounded, or from 0 (or below) to the
    top of the chart or beyond. Rates on a handful of clicks or leads are like this."""
    if expected is None:
        return False
    if lower is None or upper is None:
        return True
    return top is not None and lower <= 0 and upper >= top


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


__all__ = [
    "ANOMALY_TRACE",
    "LOW_VOLUME_TRACE",
    "Chart",
    "anomaly_traces",
    "band_outline",
    "chart_top",
    "metric_charts",
    "metric_figure",
    "too_little_volume",
]
