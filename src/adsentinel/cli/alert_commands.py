"""`adsentinel alerts`, `mute`, `calendar` and `anomalies mark`: where alerts go, what is kept
quiet, which days are special, and feedback on anomalies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import (
    app,
    cli_language,
    console,
    err_console,
    get_settings,
    ngettext,
    option_day,
)
from adsentinel.cli.app import gettext as _

alerts_app = typer.Typer(help="Alert channels, planning and delivery.", no_args_is_help=True)
channel_app = typer.Typer(help="Where an account's alerts go (Slack, webhook, email).",
                          no_args_is_help=True)
mute_app = typer.Typer(help="Silence an entity, a campaign or a whole account.",
                       no_args_is_help=True)
calendar_app = typer.Typer(help="Holidays and promotions: annotated, left out of training, "
                           "alert only from high severity.", no_args_is_help=True)
anomalies_app = typer.Typer(help="Feedback on stored anomalies.", no_args_is_help=True)
alerts_app.add_typer(channel_app, name="channel")
app.add_typer(alerts_app, name="alerts")
app.add_typer(mute_app, name="mute")
app.add_typer(calendar_app, name="calendar")
app.add_typer(anomalies_app, name="anomalies")

AccountOption = Annotated[str, typer.Option(
    "--account", help="Account name, platform id or numeric id.")]
OptionalAccount = Annotated[str | None, typer.Option(
    "--account", help="Account name, platform id or numeric id; default: every account.")]


def _session_factory():
    from adsentinel.db.engine import make_session_factory, open_database

    settings = get_settings()
    return settings, make_session_factory(open_database(settings))


def _account_id(session_factory, wanted: str) -> int:
    from adsentinel.accounts.service import select_accounts

    return select_accounts(session_factory=session_factory, wanted=wanted)[0].id


def _print_rows(rows: list[dict], title: str, empty: str) -> None:
    if not rows:
        console.print(empty)
        return
    table = Table(title=title)
    for column in rows[0]:  # long targets and errors wrap on a narrow terminal, never cut
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


# --- alerts channel ---------------------------------------------------------------------------


@channel_app.command("add")
def channel_add(
    account: AccountOption,
    kind: Annotated[str, typer.Option("--kind", help="slack, webhook, email or apprise.")],
    target: Annotated[str, typer.Option(
        "--target", help="slack, webhook, apprise: env:VAR, the environment variable holding "
        "the URL (a secret, never stored in clear); email: the address.")],
    secret_ref: Annotated[str | None, typer.Option(
        "--secret-ref", help="webhook only: env:VAR naming the HMAC signing key.")] = None,
    min_severity: Annotated[str, typer.Option(
        "--min-severity", help="low, medium, high or critical.")] = "medium",
    quiet: Annotated[str | None, typer.Option(
        "--quiet", help="Quiet hours in the account's timezone, e.g. 22:00-07:00: messages "
        "wait until the window ends.")] = None,
    critical_bypasses_quiet: Annotated[bool, typer.Option(
        "--critical-bypasses-quiet", help="Send critical incidents even in quiet hours.")]
    = False,
    digest: Annotated[bool, typer.Option(
        "--digest", help="One daily summary at ALERT_DIGEST_TIME instead of instant alerts.")]
    = False,
) -> None:
    """Add an alert channel to an account."""
    from adsentinel.alerts import config as alert_config
    from adsentinel.alerts.channels import is_secret_ref

    session_factory = _session_factory()[1]
    quiet_start = quiet_end = None
    if quiet is not None:
        if quiet.count("-") != 1:
            raise alert_config.AlertConfigError(
                _("--quiet: expected HH:MM-HH:MM, got %(value)r", value=quiet))
        quiet_start, quiet_end = (part.strip() for part in quiet.split("-"))
    channel_id = alert_config.add_channel(
        session_factory=session_factory, account_id=_account_id(session_factory, account),
        kind=kind, target=target, secret_ref=secret_ref, min_severity=min_severity,
        quiet_start=quiet_start, quiet_end=quiet_end, digest=digest,
        critical_bypasses_quiet=critical_bypasses_quiet)
    console.print(_("channel %(id)s added: %(kind)s %(target)s", id=channel_id, kind=kind,
                    target=target.strip()), highlight=False)
    for ref in (target.strip(), secret_ref):
        if is_secret_ref(ref) and not os.environ.get(ref[4:]):
            err_console.print(_("[yellow]warning:[/] %(variable)s is not set in this shell; the "
                                "processes that deliver alerts need it", variable=ref[4:]),
                              highlight=False)


@channel_app.command("list")
def channel_list(account: OptionalAccount = None) -> None:
    """List the alert channels with their pending, sent and failed messages."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    account_id = _account_id(session_factory, account) if account else None
    _print_rows(alert_config.list_channels(session_factory=session_factory, account_id=account_id),
                _("Alert channels"),
                _("no alert channel; add one with `adsentinel alerts channel add`"))


@channel_app.command("test")
def channel_test(channel_id: Annotated[int, typer.Argument(help="Channel id.")]) -> None:
    """Send a test message to a channel now, to check its target, key or SMTP settings."""
    from adsentinel.alerts import service as alerting

    settings, session_factory = _session_factory()
    key = alerting.send_test_message(session_factory=session_factory, settings=settings,
                                channel_id=channel_id)
    console.print(_("channel %(id)s accepted the test message (key %(key)s)", id=channel_id,
                    key=key))


@channel_app.command("remove")
def channel_remove(channel_id: Annotated[int, typer.Argument(help="Channel id.")]) -> None:
    """Remove an alert channel (and its queued messages)."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    alert_config.remove_channel(session_factory=session_factory, channel_id=channel_id)
    console.print(_("channel %(id)s removed", id=channel_id))


@alerts_app.command("min-spend")
def alerts_min_spend(
    account: AccountOption,
    amount: Annotated[float | None, typer.Argument(
        help="Daily spend (account currency) below which an entity's incident does not alert; "
        "omit with --clear.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the floor.")] = False,
) -> None:
    """Set the account's minimum daily spend for alerts (or clear it)."""
    from adsentinel.accounts.service import select_accounts
    from adsentinel.alerts import config as alert_config

    if (amount is None) == (not clear):
        raise alert_config.AlertConfigError(_("give either an AMOUNT or --clear"))
    session_factory = _session_factory()[1]
    ref = select_accounts(session_factory=session_factory, wanted=account)[0]
    alert_config.set_min_alert_spend(session_factory=session_factory, account_id=ref.id,
                                 amount=None if clear else amount)
    if clear:
        console.print(_("%(account)s: no minimum spend for alerts", account=ref.name))
    else:
        floor = cli_language().number(amount) + " " + ref.currency
        console.print(_("%(account)s: alerts only from a daily spend of %(amount)s",
                        account=ref.name, amount=floor))


# --- alerts plan / deliver / outbox -----------------------------------------------------------


@alerts_app.command("plan")
def alerts_plan(account: OptionalAccount = None) -> None:
    """Queue the alerts the stored anomalies call for (detection runs this by itself)."""
    from adsentinel.accounts.service import select_accounts
    from adsentinel.alerts import service as alerting

    settings, session_factory = _session_factory()
    for ref in select_accounts(session_factory=session_factory, wanted=account):
        result = alerting.plan_alerts(session_factory=session_factory, settings=settings,
                                      account_id=ref.id)
        console.print(_("%(account)s: %(incidents)s, %(messages)s", account=ref.name,
                        incidents=ngettext("%(num)d incident", "%(num)d incidents",
                                           result["incidents"]),
                        messages=ngettext("%(num)d message queued", "%(num)d messages queued",
                                          result["enqueued"])))


@alerts_app.command("deliver")
def alerts_deliver() -> None:
    """Send what is due now: queued alerts and digests whose time has come."""
    from adsentinel.alerts import service as alerting

    settings, session_factory = _session_factory()
    digests = alerting.send_digests(session_factory=session_factory, settings=settings)
    result = alerting.deliver_alerts(session_factory=session_factory, settings=settings)
    line = _("%(sent)d sent, %(retrying)d to retry, %(failed)d failed, %(held)d held for quiet "
             "hours", **{k: result[k] for k in ("sent", "retrying", "failed", "held")})
    if digests["digests"]:
        line += " " + ngettext("(%(num)d digest queued)", "(%(num)d digests queued)",
                               digests["digests"])
    console.print(line)
    if result["failed"]:
        raise typer.Exit(1)


@alerts_app.command("outbox")
def alerts_outbox(
    status: Annotated[str | None, typer.Option(
        "--status", help="pending, sent or failed; default: all.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest rows shown.")] = 20,
) -> None:
    """Show the newest queued and sent messages, with their attempts and last error."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    rows = alert_config.list_outbox(session_factory=session_factory, status=status, limit=limit)
    _print_rows(rows, _("Alert outbox"), _("the outbox is empty"))


# --- mute -------------------------------------------------------------------------------------


@mute_app.command("add")
def mute_add(
    account: AccountOption,
    entity: Annotated[str | None, typer.Option(
        "--entity", help="Campaign, ad set or ad (platform id or numeric id); everything under "
        "it is muted too. Default: the whole account.")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Last muted day (YYYY-MM-DD, inclusive); default: until removed.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the next reader.")]
    = None,
    by: Annotated[str | None, typer.Option("--by", help="Who muted it.")] = None,
) -> None:
    """Mute alerts of an entity (and everything under it) or of a whole account."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    rule_id = alert_config.add_mute(session_factory=session_factory,
                                account_id=_account_id(session_factory, account),
                                entity_ref=entity, until=option_day(until, "--until"), reason=reason,
                                created_by=by)
    console.print(_("mute rule %(id)s added", id=rule_id))


@mute_app.command("list")
def mute_list(account: OptionalAccount = None) -> None:
    """List the mute rules."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    account_id = _account_id(session_factory, account) if account else None
    _print_rows(alert_config.list_mutes(session_factory=session_factory, account_id=account_id),
                _("Mute rules"), _("no mute rule"))


@mute_app.command("remove")
def mute_remove(rule_id: Annotated[int, typer.Argument(help="Mute rule id.")]) -> None:
    """Remove a mute rule."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    alert_config.remove_mute(session_factory=session_factory, mute_id=rule_id)
    console.print(_("mute rule %(id)s removed", id=rule_id))


# --- calendar ---------------------------------------------------------------------------------


@calendar_app.command("add")
def calendar_add(
    account: AccountOption,
    day: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD.")],
    kind: Annotated[str, typer.Option("--kind", help="holiday or promotion.")] = "holiday",
    label: Annotated[str | None, typer.Option("--label", help="e.g. Black Friday.")] = None,
) -> None:
    """Put a day on an account's calendar (or relabel it)."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    parsed = option_day(day, "DAY")
    alert_config.add_calendar_days(session_factory=session_factory,
                               account_id=_account_id(session_factory, account),
                               days=[(parsed, kind, label)])
    what = kind + (": " + label if label else "")
    console.print(_("%(day)s is on the calendar (%(what)s)", day=cli_language().day(parsed),
                    what=what))


@calendar_app.command("import")
def calendar_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns day,kind[,label].")],
    account: AccountOption,
) -> None:
    """Import calendar days from a CSV file (all or nothing)."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    days = alert_config.read_calendar_csv(file)
    count = alert_config.add_calendar_days(session_factory=session_factory,
                                       account_id=_account_id(session_factory, account),
                                       days=days)
    console.print(ngettext("%(num)d calendar day imported from %(file)s",
                           "%(num)d calendar days imported from %(file)s", count, file=file))


@calendar_app.command("list")
def calendar_list(account: AccountOption) -> None:
    """List an account's calendar days."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    _print_rows(alert_config.list_calendar(session_factory=session_factory,
                                       account_id=_account_id(session_factory, account)),
                _("Calendar"), _("no calendar day"))


@calendar_app.command("remove")
def calendar_remove(
    account: AccountOption,
    day: Annotated[str, typer.Argument(help="The day, YYYY-MM-DD.")],
) -> None:
    """Take a day off an account's calendar."""
    from adsentinel.alerts import config as alert_config

    session_factory = _session_factory()[1]
    parsed = option_day(day, "DAY")
    alert_config.remove_calendar_day(session_factory=session_factory,
                                 account_id=_account_id(session_factory, account), day=parsed)
    console.print(_("%(day)s removed from the calendar", day=cli_language().day(parsed)))


# --- anomalies mark ---------------------------------------------------------------------------


@anomalies_app.command("mark")
def anomalies_mark(
    anomaly_id: Annotated[int, typer.Argument(help="Anomaly id (see `adsentinel detect "
                                                   "--format json`).")],
    status: Annotated[str, typer.Argument(
        help="false_positive, expected, acknowledged, resolved or open.")],
    by: Annotated[str | None, typer.Option("--by", help="Who gives the feedback.")] = None,
) -> None:
    """Give feedback on an anomaly. false_positive and expected remove its days from training
    and damp the same pattern of that entity afterwards."""
    from adsentinel.alerts import feedback_service as feedback

    session_factory = _session_factory()[1]
    result = feedback.mark_anomaly(session_factory=session_factory, anomaly_id=anomaly_id,
                                   status=status, by=by)
    if result["children"]:
        console.print(_("anomaly %(id)s marked %(status)s (and %(children)d attached)",
                        id=anomaly_id, status=status, children=result["children"]))
    else:
        console.print(_("anomaly %(id)s marked %(status)s", id=anomaly_id, status=status))
