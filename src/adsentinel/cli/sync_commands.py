"""`adsentinel sync`: pull accounts from the Meta Marketing API now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from adsentinel.cli.account_locks import ACCOUNT_BUSY_EXIT_CODE, worker_account_lock
from adsentinel.cli.app import app, console, err_console, get_settings, option_day
from adsentinel.cli.app import gettext as _
from adsentinel.i18n import N_

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from adsentinel.sync.service import SyncSummary


@app.command("sync")
def sync_command(
    account: Annotated[str | None, typer.Option(
        "--account", help="Only this account (name, Meta id or numeric id).")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="First day to pull, YYYY-MM-DD (default: the rolling "
                        "SYNC_WINDOW_DAYS window; at most Meta's 37 months).")] = None,
) -> None:
    """Pull campaigns, ad sets, ads and daily ad insights from Meta and store them.

    Insights are stored one date range at a time, newest first: a failure keeps the ranges
    already stored, and the other accounts go on. Restated days replace the stored ones; today
    is stored as a partial day.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from adsentinel.accounts.service import find_account
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.sync.service import sync_account, syncable_account_ids

    first_day = option_day(since, "--since")  # a usage error before any set-up
    settings = get_settings()
    factory = make_session_factory(open_database(settings))
    if account is not None:
        with factory() as session:
            account_ids = [find_account(session, account).id]
    else:
        account_ids = syncable_account_ids(session_factory=factory)
        if not account_ids:
            err_console.print(_("no account syncs from Meta yet; add one with `adsentinel "
                                "accounts add --account-id act_... --token-env VAR`"))
            raise typer.Exit(0)
    summaries: list[SyncSummary] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        for account_id in account_ids:
            task = progress.add_task(_("account %(id)s: starting", id=account_id), total=None)

            def report(stage: str, done: int, task=task, account_id=account_id) -> None:
                unit = "%" if stage == "insights report job" else " read"
                progress.update(task, description=f"account {account_id}: {stage} {done}{unit}")

            with worker_account_lock(settings, "sync", account_id) as free:  # the workers' lock
                summaries.append(sync_account(session_factory=factory, settings=settings,
                                              account_id=account_id, since=first_day,
                                              on_progress=report) if free
                                 else _busy(factory, account_id))
            progress.remove_task(task)
    print_sync_summaries(summaries)
    failed = [s for s in summaries if s.status in ("failed", "needs_attention")]
    if failed:
        raise typer.Exit(failed[0].error_exit_code or 1)
    if any(s.reason == BUSY_REASON for s in summaries):
        raise typer.Exit(ACCOUNT_BUSY_EXIT_CODE)


BUSY_REASON = "a scheduled sync of this account is running; run `adsentinel sync` again later"


def _busy(factory, account_id: int) -> SyncSummary:
    """The summary of an account left alone because the workers' sync holds its lock."""
    from adsentinel.db.models import AdAccount
    from adsentinel.sync.service import SyncSummary

    with factory() as session:
        name = session.get(AdAccount, account_id).name
    return SyncSummary(account_id=account_id, account_name=name, status="skipped",
                       reason=BUSY_REASON)


def print_sync_summaries(summaries: list[SyncSummary]) -> None:
    """One line per account: outcome, window, what was written, restated days, time."""
    table = Table(title=_("Meta sync"))
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        (N_("account"), "left"), (N_("status"), "left"), (N_("window"), "left"),
        (N_("campaigns/ad sets/ads"), "right"), (N_("ad-day rows"), "right"),
        (N_("days restated"), "right"), (N_("API calls"), "right"), (N_("waited s"), "right"),
        (N_("duration s"), "right"))
    for column, justify in columns:
        # the account and its status are never cut; numbers and the window fold when narrow
        table.add_column(_(column), justify=justify, overflow="fold",
                         no_wrap=column in ("account", "status"))
    for s in summaries:
        colour = {"succeeded": "green", "skipped": "dim"}.get(s.status, "red")
        window = f"{s.since} .. {s.until}" if s.since else "-"
        table.add_row(s.account_name, f"[{colour}]{s.status}[/]", window,
                      f"{s.campaigns}/{s.adsets}/{s.ads}", f"{s.insight_rows:,}",
                      f"{s.days_restated}", f"{s.api_calls}", f"{s.waited_seconds:.0f}",
                      f"{s.duration_seconds:.1f}")
    console.print(table)
    for s in summaries:
        for note in s.notes:
            console.print(_("%(account)s: note: %(note)s", account=s.account_name, note=note),
                          highlight=False)
        if s.reason and s.status != "succeeded":
            target = err_console if s.status != "skipped" else console
            target.print(f"{s.account_name}: {s.reason}", highlight=False)
