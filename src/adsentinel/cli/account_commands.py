"""`adsentinel accounts add|list|disable|enable`: which ad accounts sync from Meta, with which token.

The token itself is never taken on the command line (it would land in shell history) nor
stored: an account keeps the NAME of the environment variable that holds it.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.service.sync import (
    AccountListing,
    add_meta_account,
    check_meta_account,
    list_accounts,
    set_account_active,
)

accounts_app = typer.Typer(help="Ad accounts synced from the Meta Marketing API.",
                           no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


def _session_factory():
    settings = get_settings()
    return settings, make_session_factory(open_database(settings))


@accounts_app.command("add")
def add_command(
    account_id: Annotated[str, typer.Option(
        "--account-id", help="Meta ad account id, e.g. act_1234567890.")],
    token_env: Annotated[str, typer.Option(
        "--token-env", help="NAME of the environment variable holding the access token "
                            "(never the token itself).")],
    name: Annotated[str | None, typer.Option(
        "--name", help="Name shown in adsentinel (default: the account id).")] = None,
    result_action_types: Annotated[str | None, typer.Option(
        "--result-action-types", help="Comma-separated Meta action types counted as results "
                                      "(default: the RESULT_ACTION_TYPES setting, 'lead').")] = None,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Read the account once with the token (when the variable "
                                   "is set here) to prove it works.")] = True,
) -> None:
    """Sync an ad account from Meta (or attach a new token to it, clearing needs-attention)."""
    settings, factory = _session_factory()
    listing = add_meta_account(session_factory=factory, platform_account_id=account_id,
                               token_env=token_env, name=name,
                               result_action_types=result_action_types)
    console.print(f"account [bold]{listing.name}[/] ({listing.platform_account_id}) syncs with "
                  f"the token in ${listing.token_env}", highlight=False)
    if not os.environ.get(token_env, "").strip():
        err_console.print(f"[yellow]warning:[/] {token_env} is not set in this shell; set it "
                          "wherever `adsentinel sync`, `run` or the workers run", highlight=False)
    elif check:
        info = check_meta_account(session_factory=factory, settings=settings,
                                  account_id=listing.id)
        console.print(f"Meta reads it: {info.name or '(no name)'}, {info.currency}, "
                      f"{info.timezone}", highlight=False)


@accounts_app.command("list")
def list_command() -> None:
    """Every account: Meta id, token variable, results counted, last sync, attention needed."""
    settings, factory = _session_factory()
    print_accounts(list_accounts(session_factory=factory, settings=settings))


@accounts_app.command("disable")
def disable_command(
    account: Annotated[str, typer.Argument(help="Account name, Meta id or numeric id.")],
) -> None:
    """Stop syncing and detecting an account (its data stays)."""
    _, factory = _session_factory()
    listing = set_account_active(session_factory=factory, wanted=account, active=False)
    console.print(f"account [bold]{listing.name}[/] disabled", highlight=False)


@accounts_app.command("enable")
def enable_command(
    account: Annotated[str, typer.Argument(help="Account name, Meta id or numeric id.")],
) -> None:
    """Sync and detect an account again; clears a needs-attention mark (after a new token)."""
    _, factory = _session_factory()
    listing = set_account_active(session_factory=factory, wanted=account, active=True)
    console.print(f"account [bold]{listing.name}[/] enabled", highlight=False)


def print_accounts(accounts: list[AccountListing]) -> None:
    """The accounts as a table; the token column shows the variable's name only."""
    table = Table(title="ad accounts")
    # ids and the token variable are what users copy: never cut; the rest folds on a narrow
    # terminal instead of being cut with an ellipsis
    for column, keep_whole in (("id", True), ("name", False), ("Meta id", True),
                               ("token", True), ("active", True), ("results", False),
                               ("last sync", False), ("attention", False)):
        table.add_column(column, no_wrap=keep_whole, overflow="fold")
    for a in accounts:
        synced = a.last_synced_at.strftime("%Y-%m-%d %H:%M") if a.last_synced_at else "-"
        if a.last_sync_status and a.last_sync_status != "succeeded":
            synced += f" ({a.last_sync_status})"
        if a.broken_since is not None:
            synced += (f"\n[red]sync broken since {a.broken_since:%Y-%m-%d %H:%M} UTC, "
                       f"{a.failed_in_a_row} failed in a row[/]")
        table.add_row(str(a.id), a.name, a.platform_account_id or "-",
                      f"${a.token_env}" if a.token_env else "(CSV only)",
                      "yes" if a.is_active else "no", a.result_action_types, synced,
                      escape(a.needs_attention or ""))
    console.print(table)
