"""`adsentinel detect`: run detection on one or every active account and print what was found."""

from __future__ import annotations

import json
from datetime import date
from enum import Enum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import Entity
from adsentinel.errors import AdsentinelError
from adsentinel.service.accounts import select_accounts
from adsentinel.service.alerting import plan_alerts
from adsentinel.service.detection import detect_account
from adsentinel.service.jobs import (
    campaigns_to_retrain,
    load_detection_models,
    run_training,
)


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
) -> None:
    """Detect anomalies, store them (re-running updates, never duplicates), queue the alerts
    they call for (sent by `adsentinel alerts deliver`, `run` or the workers) and print them."""
    settings = get_settings()
    analysis_date = _parse_date(day)
    session_factory = make_session_factory(open_database(settings))
    rows = []
    for ref in select_accounts(session_factory=session_factory, wanted=account):
        models = load_detection_models(settings=settings, account_id=ref.id)
        stored = detect_account(session_factory=session_factory, settings=settings,
                                account_id=ref.id, analysis_date=analysis_date,
                                model_loader=models.loader())
        plan_alerts(session_factory=session_factory, settings=settings, account_id=ref.id)
        retrain = campaigns_to_retrain(session_factory=session_factory, models=models,
                                       account_id=ref.id)
        if retrain:
            err_console.print(f"[yellow]{escape(ref.name)}:[/] {models.refused_count} model(s) "
                              "refused (see the log); retraining their campaigns now")
            run_training(session_factory=session_factory, settings=settings, account_id=ref.id,
                         campaign_ids=retrain)
        rows.extend(anomaly_rows(session_factory, ref, stored))
    if output is OutputFormat.json:
        console.print_json(json.dumps(rows, default=str))
        return
    print_anomaly_table(rows)


def anomaly_rows(session_factory, ref, stored) -> list[dict]:
    """Stored anomalies of one account as plain dicts, with each entity's path."""
    paths = _entity_paths(session_factory, ref.id)
    rows = []
    for anomaly in stored:
        level, path = paths.get(anomaly.entity_id, ("?", str(anomaly.entity_id)))
        rows.append({
            "account_id": ref.id, "account": ref.name, "currency": ref.currency,
            "entity_type": level, "entity_id": anomaly.entity_id, "entity_path": path,
            "date": anomaly.day.isoformat(), "metric": anomaly.metric,
            "detector": anomaly.detectors, "severity": anomaly.severity,
            "score": round(anomaly.score, 1), "actual": anomaly.actual,
            "expected": anomaly.expected, "lower": anomaly.lower, "upper": anomaly.upper,
            "direction": anomaly.direction, "message": anomaly.message,
            "incident_id": anomaly.incident_id, "id": anomaly.id,
        })
    return rows


def print_anomaly_table(rows: list[dict], *, title: str | None = None) -> None:
    """The anomalies as a table, children of an incident indented under it (one line each on
    a narrow terminal, where a table would hide the messages)."""
    if console.width < 120:
        console.print(title or "anomalies (children of an incident are indented under it)",
                      style="bold")
        for row in rows:
            indent = "  └ " if row["incident_id"] else ""
            name = row["entity_path"].rsplit(" > ", 1)[-1]
            console.print(f"{indent}[{row['severity']} {row['score']:.0f}] {row['date']} "
                          f"{row['entity_type']} {name} · {row['metric']}: {row['message']}",
                          highlight=False, markup=False)
        console.print(f"{len(rows)} anomalies", style="dim")
        return
    table = Table(title=title or "anomalies (children of an incident are indented under it)")
    for column in ("severity", "score", "date", "entity", "metric", "message"):
        table.add_column(column, overflow="fold", no_wrap=column != "message",
                         ratio=3 if column == "message" else None)
    for row in rows:
        indent = "└ " if row["incident_id"] else ""
        name = row["entity_path"].rsplit(" > ", 1)[-1]
        table.add_row(row["severity"], f"{row['score']:.0f}", row["date"],
                      f"{indent}{row['entity_type']} {name}", row["metric"], row["message"])
    console.print(table)
    console.print(f"{len(rows)} anomalies", style="dim")


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AdsentinelError(f"--date: expected YYYY-MM-DD, got {value!r}") from None


def _entity_paths(session_factory, account_id: int) -> dict[int, tuple[str, str]]:
    """``campaign > ad set > ad`` path (names, else platform ids) of every entity."""
    with session_factory() as session:
        entities = {e.id: e for e in session.scalars(
            select(Entity).where(Entity.account_id == account_id))}
    paths = {}
    for entity_id, entity in entities.items():
        names, node = [], entity
        while node is not None:
            names.append(node.name or node.platform_id)
            node = entities.get(node.parent_id) if node.parent_id else None
        paths[entity_id] = (entity.level, " > ".join(reversed(names)))
    return paths
