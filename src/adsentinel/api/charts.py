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

Every word and number a reader sees is in the page's language (:class:`~adsentinel.i18n.Language`
of the ``dashboard`` catalog): trace names, the title, hover texts (values formatted by Babel as
the rest of the page: ``R$ 1.564,97``, ``1,23%``), the date in the hover label and on the axis
(``dd/mm/aaaa`` in Brazil) and the axes' separators. Each trace keeps its English name in
``meta``, which scripts and tests use.
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
from adsentinel.i18n import N_, Language

SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825",
                    "low": "#607d8b"}
METRIC_LABELS = {  # translated by the dashboard's catalog (templates/_labels.html has them)
    "spend": "Spend", "impressions": "Impressions", "clicks": "Clicks", "leads": "Leads",
    "reach": "Reach", "ctr": "CTR", "cpc": "CPC", "cpm": "CPM", "cpl": "CPL",
    "conversion_rate": "Conversion rate", "frequency": "Frequency",
}  # fmt: skip
_PERCENT = {"ctr", "conversion_rate"}
#: an anomaly's status as the pages write it (the catalog has them: templates/_labels.html)
_STATUS_WORDS = {"false_positive": "false positive"}
_MONEY = {"spend", "cpc", "cpm", "cpl"}
ANOMALY_TRACE = N_("anomaly")
LOW_VOLUME_TRACE = N_("too little volume to judge")
EXPECTED_RANGE_TRACE, EXPECTED_TRACE = N_("expected range"), N_("expected value")
POOLED_TRACE = N_("judged together")
#: the hover text of an expected value with its normal range
EXPECTED_WITH_RANGE = N_("%(expected)s (normal range %(lower)s to %(upper)s)")
#: the hover text of an anomaly's marker
ANOMALY_HOVER = N_("%(severity)s, score %(score)s (%(status)s): %(message)s")
#: the date of the unified hover label and of the x axis's ticks, as each language writes it
_HOVER_DATES = {"en": "%Y-%m-%d", "pt_BR": "%d/%m/%Y"}
_TICK_DATES = {"pt_BR": "%d/%m"}  # English: Plotly's own ("Sep 28")
ENGLISH = Language("en", "dashboard")


@dataclass(frozen=True)
class Chart:
    """One metric's figure and what the page needs to place it."""

    metric: str
    label: str
    element_id: str
    figure: dict[str, Any]
    anomaly_count: int
    judged: bool = True

    def figure_json(self) -> str:
        """The figure as JSON safe to embed in a ``<script type="application/json">``."""
        return json.dumps(self.figure, separators=(",", ":")).replace("<", "\\u003c")


def metric_charts(points: list[DayPoints], anomalies: list[Anomaly], currency: str,
                  lang: Language = ENGLISH,
                  anomaly_sentence: Callable[[Anomaly], str] | None = None) -> list[Chart]:
    """One chart per metric with data, in ``lang``; metrics with live anomalies come first.
    ``anomaly_sentence`` gives an anomaly's sentence in ``lang`` (default: the stored one)."""
    live = [a for a in anomalies if a.status != AnomalyStatus.retracted.value]
    charts = []
    for metric in CHARTED_METRICS:
        if not any(p.metrics[metric].actual is not None for p in points):
            continue
        marked = [a for a in live if a.metric == metric]
        judged = any(p.metrics[metric].expected is not None for p in points)
        charts.append(Chart(metric, METRIC_LABELS[metric], f"chart-{metric}",
                            metric_figure(metric, points, marked, currency, lang,
                                          anomaly_sentence), len(marked), judged))
    charts.sort(key=lambda c: (-max((a.score for a in live if a.metric == c.metric), default=0),
                               CHARTED_METRICS.index(c.metric)))
    return charts


def metric_figure(metric: str, points: list[DayPoints], anomalies: list[Anomaly],
                  currency: str, lang: Language = ENGLISH,
                  anomaly_sentence: Callable[[Anomaly], str] | None = None) -> dict[str, Any]:
    """The figure of one metric in ``lang``: band, expected, actual, too-thin days, and
    anomaly markers."""
    days = [p.day.isoformat() for p in points]
    series = [p.metrics[metric] for p in points]

    def shown(value: float | None) -> str | None:
        return None if value is None else lang.metric_value(metric, value, currency or "USD")

    top = chart_top([s.actual for s in series] + [s.expected for s in series]
                    + [a.actual for a in anomalies])
    thin = [too_little_volume(s.expected, s.lower, s.upper, top) for s in series]
    band_x, band_y = band_outline(days, [None if t else s.lower for s, t in zip(series, thin, strict=True)],
                                  [None if t else s.upper for s, t in zip(series, thin, strict=True)])
    traces: list[dict[str, Any]] = []
    if any(s.expected is not None for s in series):
        traces += [
            {"type": "scatter", "mode": "lines", "name": lang.gettext(EXPECTED_RANGE_TRACE),
             "meta": EXPECTED_RANGE_TRACE,
             "x": band_x, "y": band_y, "line": {"width": 0}, "fill": "toself",
             "fillcolor": "rgba(21,101,192,0.12)", "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines", "name": lang.gettext(EXPECTED_TRACE),
             "meta": EXPECTED_TRACE, "x": days, "y": [s.expected for s in series],
             "text": [_expected_text(lang, shown, s, t) for s, t in zip(series, thin, strict=True)],
             "line": {"color": "#757575", "dash": "dash", "width": 1.5},
             "hovertemplate": "%{fullData.name}: %{text}<extra></extra>"},
        ]
    traces.append(
        {"type": "scatter", "mode": "lines+markers", "name": lang.gettext(METRIC_LABELS[metric]),
         "meta": "actual", "x": days, "y": [s.actual for s in series],
         "text": [shown(s.actual) for s in series],
         "line": {"color": "#1565c0", "width": 2}, "marker": {"size": 4},
         "hovertemplate": "%{fullData.name}: %{text}<extra></extra>"})
    if any(thin):
        traces.append({
            "type": "scatter", "mode": "markers", "name": lang.gettext(LOW_VOLUME_TRACE),
            "meta": LOW_VOLUME_TRACE, "x": [d for d, t in zip(days, thin, strict=True) if t],
            "y": [s.actual for s, t in zip(series, thin, strict=True) if t],
            "marker": {"symbol": "x", "size": 9, "color": "#9e9e9e"},
            "hovertemplate": "%{fullData.name}<extra></extra>"})
    if anomalies:
        traces += anomaly_traces(metric, points, anomalies, lang, anomaly_sentence)
    return {"data": traces, "layout": _layout(metric, currency, lang, top)}


def _expected_text(lang: Language, shown: Callable[[float | None], str | None], day: Any,
                   thin: bool) -> str | None:
    """A day's expected value, with its normal range when the chart draws one."""
    if day.expected is None:
        return None
    if thin or day.lower is None or day.upper is None:
        return shown(day.expected)
    return lang.gettext(EXPECTED_WITH_RANGE, expected=shown(day.expected),
                        lower=shown(day.lower), upper=shown(day.upper))


def _layout(metric: str, currency: str, lang: Language, top: float | None) -> dict[str, Any]:
    """Title, axes and hover label in ``lang``: the metric's name, the currency's symbol, the
    language's decimal and thousands separators and its dates."""
    from babel.numbers import get_currency_symbol, get_decimal_symbol, get_group_symbol

    money = metric in _MONEY and bool(currency)
    return {
        "height": 300, "margin": {"l": 60, "r": 20, "t": 36, "b": 40},
        "title": {"text": lang.gettext(METRIC_LABELS[metric]) + (f" ({currency})" if money
                                                                 else ""),
                  "x": 0.01, "font": {"size": 15}},
        "legend": {"orientation": "h", "y": -0.18},
        # decimal then thousands separator, as the language writes numbers
        "separators": get_decimal_symbol(lang.locale) + get_group_symbol(lang.locale),
        "yaxis": {"tickformat": ".1%" if metric in _PERCENT else None,
                  "tickprefix": (get_currency_symbol(currency.upper(), lang.locale) + " "
                                 if money else None),
                  "range": [0, top] if top else None, "rangemode": "tozero"},
        "xaxis": {"type": "date", "hoverformat": _HOVER_DATES.get(lang.locale, "%Y-%m-%d"),
                  "tickformat": _TICK_DATES.get(lang.locale)},
        "hovermode": "x unified",
    }


def anomaly_traces(metric: str, points: list[DayPoints], anomalies: list[Anomaly],
                   lang: Language = ENGLISH,
                   anomaly_sentence: Callable[[Anomaly], str] | None = None
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
        traces.append({"type": "scatter", "mode": "lines", "name": lang.gettext(POOLED_TRACE),
                       "meta": POOLED_TRACE, "x": spans_x[:-1], "y": spans_y[:-1],
                       "line": {"color": "#b71c1c", "width": 4}, "opacity": 0.55,
                       "hoverinfo": "skip"})
    sentence = anomaly_sentence or (lambda anomaly: anomaly.message)
    traces.append({
        "type": "scatter", "mode": "markers", "name": lang.gettext(ANOMALY_TRACE),
        "meta": ANOMALY_TRACE,
        "x": [a.day.isoformat() for a in anomalies], "y": marker_y,
        "customdata": [a.id for a in anomalies],
        "text": [lang.gettext(ANOMALY_HOVER, severity=lang.gettext(a.severity),
                              score=lang.number(a.score, decimals=0),
                              status=lang.gettext(_STATUS_WORDS.get(a.status, a.status)),
                              message=sentence(a)) for a in anomalies],
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
