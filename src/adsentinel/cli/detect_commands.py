"""`adsentinel detect`: run detection on one or every active account and print what was found,
worst first: the money at stake, then the severity, then the score."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer
from rich.markup import escape

from adsentinel.cli.app import app, console, err_console, get_settings, option_day

_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@app.command("detect")
def detect_command(
    account: Annotated[str | None, typer.Option(
        "--account", help="Account name, platform id or numeric id; default: every active account.",
    )] = None,
    day: Annotated[str | None, typer.Option(
        "--date", help="Day to judge (YYYY-MM-DD); default: each account's latest day.",
    )] = None,
    output: Annotated[OutputFormat, typer.Option(
        "--format", help="table (default) or json (one object per anomaly, in a list).",
    )] = OutputFormat.table,
    good_news: Annotated[bool, typer.Option(
        "--good-news", help="Also list good news (CPC, CPL or frequency down, CTR up ...), "
        "stored as low anomalies but never an incident.",
    )] = False,
) -> None:
    """Detect anomalies, store them (re-running updates, never duplicates), queue the alerts
    they call for (sent by `adsentinel alerts deliver`, `run` or the workers) and print them,
    worst first (money at stake, then severity)."""
    from adsentinel.accounts.service import select_accounts
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.detection.service import detect_in_chunks, retrain_refused

    analysis_date = option_day(day, "--date")  # a usage error before any set-up
    settings = get_settings()
    session_factory = make_session_factory(open_database(settings))
    rows = []
    for ref in select_accounts(session_factory=session_factory, wanted=account):
        detection = detect_in_chunks(session_factory=session_factory, settings=settings,
                                     account_id=ref.id, analysis_date=analysis_date)
        if "error" in detection.alerts:
            err_console.print(f"[red]{escape(ref.name)}:[/] its anomalies are stored, but "
                              f"planning their alerts failed: {escape(detection.alerts['error'])}")
        if detection.retrain_campaigns:
            err_console.print(f"[yellow]{escape(ref.name)}:[/] {detection.refused_models} "
                              "model(s) refused (see the log); retraining their campaigns now")
            retrain_refused(session_factory=session_factory, settings=settings,
                            detection=detection)
        rows.extend(anomaly_rows(session_factory, ref, detection.anomalies))
    hidden = 0 if good_news else sum(row["kind"] == "good_news" for row in rows)
    rows = worst_first([row for row in rows if good_news or row["kind"] != "good_news"])
    if output is OutputFormat.json:
        console.print_json(json.dumps(rows, default=str))
        return
    print_anomaly_table(rows)
    if hidden:
        console.print(f"{hidden} good-news move(s) not listed (--good-news lists them)",
                      style="dim", highlight=False)


def anomaly_rows(session_factory, ref, stored) -> list[dict]:
    """Stored anomalies of one account as plain dicts, with each entity's path, its Meta ids,
    the money at stake, the run's first day and length, the kind and the next step.

    Where the anomaly is and its run come from :mod:`adsentinel.service.anomaly_record`, as
    for the API; the names, the raw numbers and two rules for anomalies stored before money at
    stake was (migration 0007: the run starts on the anomaly's own day, the money is worked out
    from the stored numbers as they are) are this command's own."""
    from adsentinel.detect import impact
    from adsentinel.service.anomaly_record import anomaly_places, anomaly_run

    with session_factory() as session:
        places = anomaly_places(session, list(stored))
    rows = []
    for anomaly in stored:
        place = places.get(anomaly.id)
        level = place.entity.level if place else "?"
        run = anomaly_run(anomaly, started=anomaly.started or anomaly.day, level=level)
        money = anomaly.impact_amount
        if money is None:  # stored before money at stake was (migration 0007)
            money = impact.money_at_stake(anomaly.metric, anomaly.direction, anomaly.actual,
                                          anomaly.expected, anomaly.drivers)
        rows.append({
            "account_id": ref.id, "account": ref.name, "currency": ref.currency,
            "entity_type": level, "entity_id": anomaly.entity_id,
            "entity_path": place.path_text() if place else str(anomaly.entity_id),
            "meta_ids": place.meta_ids() if place else None,
            "date": anomaly.day.isoformat(), "metric": anomaly.metric,
            "detector": anomaly.detectors, "severity": anomaly.severity,
            "score": round(anomaly.score, 1), "actual": anomaly.actual,
            "expected": anomaly.expected, "lower": anomaly.lower, "upper": anomaly.upper,
            "direction": anomaly.direction, "message": anomaly.message,
            "impact_amount": money, "started": run["started"].isoformat(),
            "duration_days": run["duration_days"], "kind": run["kind"],
            "next_step": run["next_step"],
            "incident_id": anomaly.incident_id, "id": anomaly.id,
        })
    return rows


def worst_first(rows: list[dict]) -> list[dict]:
    """Incidents worst first (money at stake, then severity, then score), each followed by
    the anomalies attached to it (``incident_id``), worst first too."""
    def worst(row: dict) -> tuple[float, int, float]:
        return (-(row.get("impact_amount") or 0.0), -_SEVERITY_RANK.get(row["severity"], 0),
                -row["score"])

    listed = {row["id"] for row in rows}
    children: dict[int, list[dict]] = {}
    heads = []
    for row in rows:
        if row["incident_id"] is not None and row["incident_id"] in listed:
            children.setdefault(row["incident_id"], []).append(row)
        else:
            heads.append(row)
    ordered = []
    for head in sorted(heads, key=worst):
        ordered.append(head)
        ordered.extend(sorted(children.get(head["id"], []), key=worst))
    return ordered


def money_text(amount: float | None, currency: str) -> str:
    """Money at stake as a table cell (``R$ 1,564.97``; ``-`` when the kind has none)."""
    if amount is None:
        return "-"
    from adsentinel.detect.anomaly_detector import CURRENCY_SYMBOLS

    return f"{CURRENCY_SYMBOLS.get(currency.upper(), currency.upper())} {amount:,.2f}"


def print_anomaly_table(rows: list[dict], *, title: str | None = None) -> None:
    """The anomalies as a table in the order given, children of an incident marked ``└`` under
    it (one line each on a narrow terminal, where a table would hide the messages)."""
    from rich.table import Table

    heading = title or "anomalies, worst first (children of an incident are indented under it)"
    if console.width < 120:
        console.print(heading, style="bold")
        for row in rows:
            indent = "  └ " if row["incident_id"] else ""
            name = row["entity_path"].rsplit(" > ", 1)[-1]
            console.print(f"{indent}[{row['severity']} {row['score']:.0f}] "
                          f"{money_text(row['impact_amount'], row['currency'])} {row['date']} "
                          f"{row['account']} · {row['entity_type']} {name} · {row['metric']}: "
                          f"{row['message']}", highlight=False, markup=False)
        console.print(f"{len(rows)} anomalies", style="dim")
        return
    table = Table(title=heading)
    for column in ("severity", "score", "at stake", "date", "account", "entity", "metric",
                   "message"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("message", "account"),
                         ratio=3 if column == "message" else None,
                         justify="right" if column in ("score", "at stake") else "left")
    for row in rows:
        indent = "└ " if row["incident_id"] else ""
        name = row["entity_path"].rsplit(" > ", 1)[-1]
        since = (f" (since {row['started']}, {row['duration_days']} days)"
                 if row["duration_days"] > 1 else "")
        table.add_row(row["severity"], f"{row['score']:.0f}",
                      money_text(row["impact_amount"], row["currency"]), row["date"],
                      escape(row["account"]), escape(f"{indent}{row['entity_type']} {name}"),
                      row["metric"], escape(row["message"] + since))
    console.print(table)
    console.print(f"{len(rows)} anomalies", style="dim")
