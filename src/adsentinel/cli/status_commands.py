"""`adsentinel status`: per account, data freshness, the last sync, training and detection, the
alert outbox, and what needs attention."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, console, get_settings
from adsentinel.errors import AdsentinelError
from adsentinel.service.status import SEVERITIES, AccountStatus, RunOutcome, account_statuses

#: exit code when ``--check`` finds an account needing attention
ATTENTION_EXIT_CODE = 1


@app.command()
def status(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    check: Annotated[bool, typer.Option(
        "--check", help=f"Exit with {ATTENTION_EXIT_CODE} when an account needs attention "
        "(for cron or a monitoring check).")] = False,
) -> None:
    """Status of every account: data freshness, last sync/training/detection, models, open
    anomalies, alerts, and what needs attention."""
    if output not in ("table", "json"):
        raise AdsentinelError(f"--format must be table or json, got {output!r}")
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database

    statuses = account_statuses(session_factory=make_session_factory(open_database(settings)))
    if output == "json":
        console.print_json(json.dumps([s.as_dict() for s in statuses]))
    else:
        _print_table(statuses)
    if check and any(s.attention for s in statuses):
        raise typer.Exit(ATTENTION_EXIT_CODE)


def _print_table(statuses: list[AccountStatus]) -> None:
    if not statuses:
        console.print("no accounts yet: `adsentinel import FILE.csv` or `adsentinel accounts add`")
        return
    now = datetime.now(timezone.utc)
    table = Table(title="adsentinel status", show_lines=True)
    for column in ("account", "last day", "sync", "training", "detected", "open", "alerts",
                   "needs attention"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        models = s.models
        training = _run(now, s.last_training)
        if s.last_successful_training is not None:
            training += f", {models['trained']} models"
        table.add_row(
            s.name + ("" if s.is_active else " (disabled)"),
            str(s.last_complete_day or "-"),
            _run(now, s.last_sync) if s.syncs_from_meta else "CSV",
            training,
            _ago(now, s.last_detection_at),
            ", ".join(f"{s.open_anomalies[sev]} {sev}" for sev in reversed(SEVERITIES)
                      if s.open_anomalies.get(sev)) or "-",
            ", ".join(f"{n} {state}" for state, n in s.alerts.items() if n) or "-",
            "\n".join(s.attention) or "[green]-[/]",
        )
    console.print(table)


def _run(now: datetime, run: RunOutcome | None) -> str:
    if run is None:
        return "never"
    outcome = "ok" if run.status == "succeeded" else run.status
    return f"{outcome} {_ago(now, run.finished_at or run.started_at)}"


def _ago(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "never"
    minutes = (now - moment).total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h ago"
    return f"{minutes / 1440:.0f} d ago"
