"""An HTML report of the top anomalies: one chart per anomaly with the metric's history, the
expected value and bounds on every anomalous day, and those days marked.

The page embeds Plotly's JavaScript, so it opens without internet.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.models import AdAccount, Anomaly, AnomalyStatus, DailyInsight, Entity
from adsentinel.detect.features import COUNT_COLUMNS, add_ratio_metrics

HISTORY_DAYS = 60
SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825",
                    "low": "#607d8b"}


@dataclass(frozen=True)
class ReportedAnomaly:
    """One anomaly of the report and the entity path it belongs to."""

    anomaly: Anomaly
    account: str
    path: str


def top_anomalies(*, session_factory: sessionmaker[Session], limit: int = 8
                  ) -> list[ReportedAnomaly]:
    """The worst open incidents (anomalies not grouped under another), latest day first."""
    with session_factory() as session:
        rows = session.execute(
            select(Anomaly, AdAccount.name)
            .join(AdAccount, AdAccount.id == Anomaly.account_id)
            .where(Anomaly.status == AnomalyStatus.open.value, Anomaly.incident_id.is_(None))
            .order_by(Anomaly.day.desc(), Anomaly.score.desc())
            .limit(limit)
        ).all()
        entities = {e.id: e for e in session.scalars(select(Entity).where(
            Entity.account_id.in_({a.account_id for a, _ in rows})))} if rows else {}
    result = []
    for anomaly, account in rows:
        names, node = [], entities.get(anomaly.entity_id)
        while node is not None:
            names.append(f"{node.level} {node.name or node.platform_id}")
            node = entities.get(node.parent_id) if node.parent_id else None
        result.append(ReportedAnomaly(anomaly, account, " > ".join(reversed(names))))
    return sorted(result, key=lambda r: -r.anomaly.score)


def write_report(*, session_factory: sessionmaker[Session], path: Path,
                 reported: list[ReportedAnomaly]) -> Path:
    """Write the report to ``path`` (atomically) and return it."""
    import plotly.graph_objects as go
    import plotly.io as pio

    sections = []
    for index, item in enumerate(reported):
        anomaly = item.anomaly
        metric = _charted_metric(anomaly)
        history, marked = _series(session_factory, anomaly, metric)
        figure = go.Figure()
        figure.add_trace(go.Scatter(x=history.index, y=history.values, mode="lines",
                                    name=metric, line={"color": "#1565c0"}))
        if not marked.empty:
            figure.add_trace(go.Scatter(
                x=marked["day"], y=marked["expected"], mode="markers", name="expected",
                marker={"color": "#9e9e9e", "symbol": "line-ew-open", "size": 14},
                error_y={"type": "data", "symmetric": False,
                         "array": (marked["upper"] - marked["expected"]).clip(lower=0),
                         "arrayminus": (marked["expected"] - marked["lower"]).clip(lower=0),
                         "color": "#bdbdbd"}))
            figure.add_trace(go.Scatter(
                x=marked["day"], y=marked["actual"], mode="markers", name="anomalous day",
                marker={"color": [SEVERITY_COLOURS.get(s, "#000") for s in marked["severity"]],
                        "size": 11, "line": {"width": 1, "color": "#000"}}))
        figure.update_layout(height=320, margin={"l": 50, "r": 20, "t": 30, "b": 40},
                             title=f"{metric} of {item.path.rsplit(' > ', 1)[-1]}",
                             legend={"orientation": "h"})
        chart = pio.to_html(figure, full_html=False,
                            include_plotlyjs="inline" if index == 0 else False)
        colour = SEVERITY_COLOURS.get(anomaly.severity, "#000")
        sections.append(
            f'<section><h2><span class="sev" style="background:{colour}">{anomaly.severity} '
            f'{anomaly.score:.0f}</span> {html.escape(anomaly.metric)} on {anomaly.day}</h2>'
            f'<p class="path">{html.escape(item.account)} &gt; {html.escape(item.path)}</p>'
            f'<p>{html.escape(anomaly.message)}</p>{chart}</section>')
    body = "\n".join(sections) or "<p>No open anomalies.</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>adsentinel report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#212121}}
.sev{{color:#fff;padding:2px 8px;border-radius:4px;font-size:.8em}}
.path{{color:#616161;margin:0}} section{{border-top:1px solid #e0e0e0;padding-top:1em}}</style>
</head><body><h1>adsentinel: top anomalies</h1>
<p>Each chart shows the metric's last {HISTORY_DAYS} days; anomalous days are marked with their
severity colour, and the grey bar is the expected value with its bounds.</p>
{body}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _charted_metric(anomaly: Anomaly) -> str:
    """The anomaly's metric, or for a multivariate one the metric that drove it most."""
    if anomaly.metric != "multivariate":
        return anomaly.metric
    drivers = anomaly.drivers or {}
    for name in drivers.get("metrics", []) or list(drivers):
        if isinstance(name, str) and name in (*COUNT_COLUMNS, "ctr", "cpc", "cpm", "cpl",
                                              "conversion_rate", "frequency"):
            return name
    return "spend"


def _series(session_factory, anomaly: Anomaly, metric: str) -> tuple[pd.Series, pd.DataFrame]:
    first = anomaly.day - timedelta(days=HISTORY_DAYS)
    with session_factory() as session:
        rows = session.execute(
            select(DailyInsight.day, *(getattr(DailyInsight, c) for c in COUNT_COLUMNS))
            .where(DailyInsight.entity_id == anomaly.entity_id,
                   DailyInsight.day.between(first, anomaly.day))
            .order_by(DailyInsight.day)).all()
        marked = session.execute(
            select(Anomaly.day, Anomaly.actual, Anomaly.expected, Anomaly.lower, Anomaly.upper,
                   Anomaly.severity)
            .where(Anomaly.entity_id == anomaly.entity_id, Anomaly.metric == anomaly.metric,
                   Anomaly.day.between(first, anomaly.day),
                   Anomaly.status != AnomalyStatus.retracted.value)).all()
    daily = pd.DataFrame(rows, columns=["day", *COUNT_COLUMNS]).set_index("day")
    daily = add_ratio_metrics(daily.astype(float))
    history = daily[metric] if metric in daily else pd.Series(dtype=float)
    frame = pd.DataFrame(marked, columns=["day", "actual", "expected", "lower", "upper",
                                          "severity"])
    if anomaly.metric == "multivariate":  # its numbers are not in the charted metric's units
        frame = frame.assign(actual=[history.get(d) for d in frame["day"]],
                             expected=[history.get(d) for d in frame["day"]],
                             lower=[history.get(d) for d in frame["day"]],
                             upper=[history.get(d) for d in frame["day"]])
    frame["lower"] = frame["lower"].fillna(frame["expected"])
    frame["upper"] = frame["upper"].fillna(frame["expected"])
    return history, frame.dropna(subset=["actual"]).sort_values("day")


def report_path(data_dir: Path) -> Path:
    """Where the demo writes its report."""
    return data_dir / "demo" / "report.html"


__all__ = ["ReportedAnomaly", "report_path", "top_anomalies", "write_report"]
