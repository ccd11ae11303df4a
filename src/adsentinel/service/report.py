"""The HTML report: a summary (accounts, date range, incidents by severity, money at stake), then
the open incidents at medium and above, worst first, each with a chart of its metric's history,
the expected value and bounds on every anomalous day, and a link to its dashboard page.

Worst first is severity (critical first), then money at stake, then score. Money at stake is
the anomalies' stored ``impact_amount`` in each account's currency, added up per currency; an
incident stored before it existed shows none and adds nothing (nothing is estimated here).

The page is in one language (``en`` or ``pt_BR``: words, numbers, money, dates), has the
dashboard's style sheet inlined and embeds Plotly's JavaScript once, so it opens without
internet. Collecting (:func:`build_report`) and writing (:func:`write_report`) are separate.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.messages import metric_label, next_step_text
from adsentinel.db.models import AdAccount, Anomaly, AnomalyStatus, DailyInsight, Entity
from adsentinel.detect.features import COUNT_COLUMNS, add_ratio_metrics
from adsentinel.detect.sentences import localized_message
from adsentinel.i18n import N_, Language, language, translations

HISTORY_DAYS = 60
#: the report's default span, ending on the newest day of data
DEFAULT_RANGE_DAYS = 30
#: incidents charted at most (the others are counted in the summary)
DEFAULT_LIMIT = 20
SEVERITY_ORDER = ("critical", "high", "medium", "low")
#: severities the report lists (lows are counted in the summary only)
LISTED_SEVERITIES = ("critical", "high", "medium")
SEVERITY_COLOURS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825",
                    "low": "#607d8b"}
_RATE_METRICS = {"ctr", "conversion_rate"}
_MONEY_METRICS = {"spend", "cpc", "cpm", "cpl"}
_SEVERITY_NAMES = {"low": N_("low"), "medium": N_("medium"), "high": N_("high"),
                   "critical": N_("critical")}
_LEVEL_NAMES = {"campaign": N_("Campaign"), "adset": N_("Ad set"), "ad": N_("Ad")}
_STYLE_SHEET = Path(__file__).resolve().parent.parent / "api" / "static" / "style.css"
_TEMPLATE_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class ReportedIncident:
    """One open incident of the report: the anomaly that heads it and where it is."""

    anomaly: Anomaly
    account: str
    currency: str
    #: ``(level, name)`` from the campaign down to the entity
    path: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Report:
    """What the report says, before it is written in a language."""

    accounts: tuple[str, ...]
    first_day: date | None
    last_day: date | None
    #: open incidents in the range by severity (lows included)
    by_severity: dict[str, int]
    #: money at stake of the listed incidents, per currency (only known amounts)
    at_stake: dict[str, float]
    #: listed incidents whose money at stake is not known
    without_amount: int
    incidents: list[ReportedIncident] = field(default_factory=list)
    #: listed-severity incidents beyond the limit, not charted
    not_shown: int = 0


def build_report(*, session_factory: sessionmaker[Session], account_ids: list[int] | None = None,
                 first_day: date | None = None, last_day: date | None = None,
                 limit: int = DEFAULT_LIMIT) -> Report:
    """The open incidents (anomalies not grouped under another) of ``account_ids`` (None: every
    active account) whose day is in ``first_day..last_day``; by default the
    :data:`DEFAULT_RANGE_DAYS` days ending on the newest day of data."""
    with session_factory() as session:
        accounts = session.execute(
            select(AdAccount.id, AdAccount.name, AdAccount.currency).where(
                AdAccount.id.in_(account_ids) if account_ids is not None
                else AdAccount.is_active.is_(True)).order_by(AdAccount.id)).all()
        ids = [a.id for a in accounts]
        if last_day is None:
            last_day = session.scalar(
                select(func.max(DailyInsight.day)).join(Entity, Entity.id == DailyInsight.entity_id)
                .where(Entity.account_id.in_(ids))) if ids else None
        if last_day is not None and first_day is None:
            first_day = last_day - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        rows = session.scalars(select(Anomaly).where(
            Anomaly.account_id.in_(ids), Anomaly.status == AnomalyStatus.open.value,
            Anomaly.incident_id.is_(None),
            Anomaly.day.between(first_day or date.min, last_day or date.max))).all()
        entities = {e.id: e for e in session.scalars(select(Entity).where(
            Entity.account_id.in_({a.account_id for a in rows})))} if rows else {}
        session.expunge_all()
    by_id = {a.id: a for a in accounts}
    listed = sorted((a for a in rows if a.severity in LISTED_SEVERITIES), key=_worst_first)
    at_stake: dict[str, float] = defaultdict(float)
    for anomaly in listed:
        if (impact := _impact(anomaly)) is not None:
            at_stake[by_id[anomaly.account_id].currency or "USD"] += impact
    incidents = [ReportedIncident(a, by_id[a.account_id].name,
                                  by_id[a.account_id].currency or "USD", _path(entities, a))
                 for a in listed[:limit]]
    counts = Counter(a.severity for a in rows)
    return Report(
        accounts=tuple(a.name for a in accounts), first_day=first_day, last_day=last_day,
        by_severity={s: counts.get(s, 0) for s in SEVERITY_ORDER}, at_stake=dict(at_stake),
        without_amount=sum(_impact(a) is None for a in listed), incidents=incidents,
        not_shown=max(0, len(listed) - limit))


def _impact(anomaly: Anomaly) -> float | None:
    """Money at stake stored with the anomaly (None before detection stored it)."""
    return float(anomaly.impact_amount) if anomaly.impact_amount is not None else None


def _worst_first(anomaly: Anomaly) -> tuple:
    return (SEVERITY_ORDER.index(anomaly.severity) if anomaly.severity in SEVERITY_ORDER else 9,
            -(_impact(anomaly) or 0.0), -anomaly.score, -anomaly.day.toordinal(), anomaly.id)


def _path(entities: dict[int, Entity], anomaly: Anomaly) -> tuple[tuple[str, str], ...]:
    names, node = [], entities.get(anomaly.entity_id)
    while node is not None:
        names.append((node.level, node.name or node.platform_id))
        node = entities.get(node.parent_id) if node.parent_id else None
    return tuple(reversed(names))


def write_report(*, session_factory: sessionmaker[Session], path: Path, report: Report,
                 lang: Language | None = None, public_url: str = "http://127.0.0.1:8000"
                 ) -> Path:
    """Write ``report`` in ``lang`` (English by default) to ``path``, atomically; the path."""
    page = render_report(session_factory=session_factory, report=report,
                         lang=lang or language(), public_url=public_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path


def render_report(*, session_factory: sessionmaker[Session], report: Report, lang: Language,
                  public_url: str) -> str:
    """The report's HTML page."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(_TEMPLATE_DIR), extensions=["jinja2.ext.i18n"],
                              autoescape=select_autoescape(["html"]))
    catalog = translations(lang.locale, lang.domain)  # Jinja fills the placeholders itself
    # (the i18n extension adds the method to the environment it is loaded in)
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        catalog.gettext, catalog.ngettext, newstyle=True)
    base = public_url.rstrip("/")
    items = []
    for index, incident in enumerate(report.incidents):
        items.append(_incident_view(session_factory, incident, lang, base,
                                    include_plotly=index == 0))
    money = [lang.money(amount, currency) for currency, amount in sorted(report.at_stake.items())]
    return environment.get_template("report.html").render(
        html_lang=lang.locale.replace("_", "-"), report=report, items=items, money=money,
        severities=[(s, lang.gettext(_SEVERITY_NAMES[s]), report.by_severity[s])
                    for s in SEVERITY_ORDER],
        range_text=(lang.gettext("%(first)s to %(last)s", first=lang.day(report.first_day),
                                 last=lang.day(report.last_day))
                    if report.first_day and report.last_day else "-"),
        dashboard_url=base + "/", style=_STYLE_SHEET.read_text(encoding="utf-8"),
        history_days=HISTORY_DAYS, colours=SEVERITY_COLOURS)


def _incident_view(session_factory, incident: ReportedIncident, lang: Language, base_url: str,
                   *, include_plotly: bool) -> dict:
    anomaly = incident.anomaly
    metric = _charted_metric(anomaly)
    label = metric_label(anomaly.metric, lang)
    value = lambda v: lang.metric_value(anomaly.metric, v, incident.currency)  # noqa: E731
    started = anomaly.started or anomaly.day  # None: stored before detection kept runs
    days = anomaly.duration_days or (anomaly.day - started).days + 1
    where = [f"{lang.gettext(_LEVEL_NAMES[level]) if level in _LEVEL_NAMES else level} {name}"
             for level, name in incident.path]
    impact = _impact(anomaly)
    return {
        "severity": anomaly.severity,
        "severity_name": lang.gettext(_SEVERITY_NAMES.get(anomaly.severity, anomaly.severity)),
        "score": lang.number(anomaly.score, decimals=0),
        "metric": label,
        "account": incident.account,
        "where": " > ".join(where),
        "since": lang.day(started),
        "latest": lang.day(anomaly.day),
        "days": days,
        "actual": value(anomaly.actual) if anomaly.metric != "multivariate" else None,
        "expected": value(anomaly.expected) if anomaly.metric != "multivariate" else None,
        "ratio": lang.ratio(anomaly.actual, anomaly.expected),
        "at_stake": lang.money(impact, incident.currency) if impact is not None else None,
        "message": localized_message(
            anomaly.message, lang=lang, metric=anomaly.metric, actual=anomaly.actual,
            expected=anomaly.expected, detectors=anomaly.detectors, drivers=anomaly.drivers or {},
            currency=incident.currency,
            entity_type=incident.path[-1][0] if incident.path else "entity",
            is_partial_day=bool(anomaly.is_partial_day)),
        "next_step": next_step_text(lang, anomaly.metric, anomaly.direction, anomaly.drivers,
                                    level=incident.path[-1][0] if incident.path else "entity",
                                    since=started),
        "url": f"{base_url}/entities/{anomaly.entity_id}#anomaly-{anomaly.id}",
        "chart": _chart(session_factory, anomaly, metric, lang, incident.currency,
                        title=f"{metric_label(metric, lang)}: {where[-1] if where else ''}",
                        include_plotly=include_plotly),
    }


def _chart(session_factory, anomaly: Anomaly, metric: str, lang: Language, currency: str, *,
           title: str, include_plotly: bool) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio
    from babel.numbers import get_currency_symbol, get_decimal_symbol, get_group_symbol

    history, marked = _series(session_factory, anomaly, metric)
    _ = lang.gettext
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=history.index, y=history.values, mode="lines",
                                name=metric_label(metric, lang), line={"color": "#1565c0"}))
    if not marked.empty:
        figure.add_trace(go.Scatter(
            x=marked["day"], y=marked["expected"], mode="markers", name=_("expected"),
            marker={"color": "#9e9e9e", "symbol": "line-ew-open", "size": 14},
            error_y={"type": "data", "symmetric": False,
                     "array": (marked["upper"] - marked["expected"]).clip(lower=0),
                     "arrayminus": (marked["expected"] - marked["lower"]).clip(lower=0),
                     "color": "#bdbdbd"}))
        figure.add_trace(go.Scatter(
            x=marked["day"], y=marked["actual"], mode="markers", name=_("anomalous day"),
            marker={"color": [SEVERITY_COLOURS.get(s, "#000") for s in marked["severity"]],
                    "size": 11, "line": {"width": 1, "color": "#000"}}))
    figure.update_layout(height=320, margin={"l": 60, "r": 20, "t": 30, "b": 40}, title=title,
                         legend={"orientation": "h"},
                         # decimal then thousands separator, as the language writes numbers
                         separators=get_decimal_symbol(lang.locale) + get_group_symbol(lang.locale),
                         yaxis={"tickformat": ".2%" if metric in _RATE_METRICS else ",~r",
                                "tickprefix": (get_currency_symbol(currency, lang.locale) + " "
                                               if metric in _MONEY_METRICS else "")},
                         xaxis={"tickformat": "%d/%m" if lang.locale == "pt_BR" else "%b %d"})
    return pio.to_html(figure, full_html=False,
                       include_plotlyjs="inline" if include_plotly else False)


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


__all__ = ["Report", "ReportedIncident", "build_report", "render_report", "report_path",
           "write_report"]
