"""`adsentinel status`: per account, data freshness, the last sync, training and detection, the
alert outbox, and what needs attention."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, console, get_settings, ngettext
from adsentinel.cli.app import gettext as _
from adsentinel.errors import AdsentinelError
from adsentinel.i18n import N_

if TYPE_CHECKING:
    from adsentinel.service.status import AccountStatus, RunOutcome

#: exit code when ``--check`` finds an account needing attention
ATTENTION_EXIT_CODE = 1
_COLUMNS = (N_("account"), N_("last day"), N_("sync"), N_("training"), N_("detected"),
            N_("open"), N_("alerts"), N_("needs attention"))
_SEVERITY_WORDS = {"low": N_("low"), "medium": N_("medium"), "high": N_("high"),
                   "critical": N_("critical")}


@app.command()
def status(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    check: Annotated[bool, typer.Option(
        "--check", help=f"Exit with {ATTENTION_EXIT_CODE} when an account needs attention "
        "(for cron or a monitoring check).")] = False,
) -> None:
    """Status of every account: data freshness, last sync/training/detection, models, open
    anomalies, alerts, and what needs attention."""
    from adsentinel.service.status import account_statuses

    if output not in ("table", "json"):
        raise AdsentinelError(_("--format must be table or json, got %(value)r", value=output))
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database

    statuses = account_statuses(session_factory=make_session_factory(open_database(settings)),
                                default_locale=settings.locale)
    if output == "json":
        console.print_json(json.dumps([s.as_dict() for s in statuses]))
    else:
        _print_table(statuses)
    if check and any(s.attention for s in statuses):
        raise typer.Exit(ATTENTION_EXIT_CODE)


def _print_table(statuses: list[AccountStatus]) -> None:
    from adsentinel.service.status import SEVERITIES

    if not statuses:
        console.print(_("no accounts yet: `adsentinel import FILE.csv` or `adsentinel accounts "
                        "add`"))
        return
    now = datetime.now(UTC)
    table = Table(title=_("adsentinel status"), show_lines=True)
    for column in _COLUMNS:
        table.add_column(_(column), overflow="fold")
    for s in statuses:
        models = s.models
        training = _run(now, s.last_training)
        if s.last_successful_training is not None:
            training += ", " + ngettext("%(num)d model", "%(num)d models", models["trained"])
        if s.models_refused:
            training += ", [red]" + _("%(count)d refused", count=s.models_refused) + "[/]"
        table.add_row(
            s.name + ("" if s.is_active else " " + _("(disabled)")),
            _last_day(s),
            _sync(now, s) if s.syncs_from_meta else "CSV",
            training,
            _ago(now, s.last_detection_at),
            ", ".join(f"{s.open_anomalies[sev]} {_(_SEVERITY_WORDS.get(sev, sev))}"
                      for sev in reversed(SEVERITIES) if s.open_anomalies.get(sev)) or "-",
            ", ".join(f"{n} {state}" for state, n in s.alerts.items() if n) or "-",
            "\n".join(s.attention) or "[green]-[/]",
        )
    console.print(table)


def _last_day(status: AccountStatus) -> str:
    """The last complete day, and the day history compares from after a currency or timezone
    change."""
    text = str(status.last_complete_day or "-")
    if status.setting_changes:
        last = status.setting_changes[-1]
        text += ("\n[yellow]" + _("compared from %(day)s", day=last.changed_on)
                 + f"\n({last.setting} {last.old_value} -> {last.new_value})[/]")
    return text


def _sync(now: datetime, status: AccountStatus) -> str:
    """The last sync, and the most used of Meta's rate-limit budgets during it."""
    text = _run(now, status.last_sync)
    usage = status.graph_api_usage_percent
    if usage:
        budget = max(usage, key=lambda name: usage[name])
        text += f"\nAPI {usage[budget]:.0f}% ({budget})"
    return text


def _run(now: datetime, run: RunOutcome | None) -> str:
    if run is None:
        return _("never")
    outcome = _("ok") if run.status == "succeeded" else run.status
    return f"{outcome} {_ago(now, run.finished_at or run.started_at)}"


def _ago(now: datetime, moment: datetime | None) -> str:
    if moment is None:
        return _("never")
    minutes = (now - moment).total_seconds() / 60
    if minutes < 90:
        return _("%(count)d min ago", count=round(minutes))
    if minutes < 48 * 60:
        return _("%(count)d h ago", count=round(minutes / 60))
    return _("%(count)d d ago", count=round(minutes / 1440))
