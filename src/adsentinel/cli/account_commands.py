"""`adsentinel accounts add|discover|list|disable|enable|edit`: which ad accounts sync from
Meta, with which token, and in which language their alerts and report are written.

The token itself is never taken on the command line (it would land in shell history) nor
stored: an account keeps the NAME of the environment variable that holds it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adsentinel.cli.app import app, cli_language, console, err_console, get_settings
from adsentinel.cli.app import gettext as _
from adsentinel.errors import ConfigError
from adsentinel.i18n import LOCALE_NAMES, parse_locale
from adsentinel.sync.error_kinds import attention_sentence

if TYPE_CHECKING:
    from adsentinel.accounts.service import AccountListing, DiscoveredAccount

accounts_app = typer.Typer(help="Ad accounts synced from the Meta Marketing API.",
                           no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


def _session_factory():
    from adsentinel.db.engine import make_session_factory, open_database

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
        "--check/--no-check", help="Read the account once with the token before storing "
                                   "anything (--no-check stores it unproved, e.g. on a "
                                   "machine without the token).")] = True,
    locale: Annotated[str | None, typer.Option(
        "--locale", help="Language of the account's alerts and report: en or pt_BR "
                         "(default: the LOCALE setting).")] = None,
) -> None:
    """Sync an ad account from Meta (or attach a new token to it, clearing needs-attention).

    The token is proved first: without the variable set, or with a token Meta refuses,
    nothing is stored.
    """
    from adsentinel.accounts.service import (
        add_meta_account,
        probe_meta_account,
        record_account_facts,
        set_account_locale,
    )

    locale = _checked_locale(locale)
    settings, factory = _session_factory()
    info = None
    if check:
        info = probe_meta_account(settings=settings, platform_account_id=account_id,
                                  token_env=token_env)
    listing = add_meta_account(session_factory=factory, platform_account_id=account_id,
                               token_env=token_env, name=name,
                               result_action_types=result_action_types)
    console.print(_("account [bold]%(name)s[/] (%(meta_id)s) syncs with the token in "
                    "$%(variable)s", name=escape(listing.name),
                    meta_id=listing.platform_account_id, variable=listing.token_env),
                  highlight=False)
    if locale is not None:
        set_account_locale(session_factory=factory, wanted=str(listing.id), locale=locale)
        console.print(_("its alerts and report are written in %(language)s",
                        language=LOCALE_NAMES[locale]), highlight=False)
    if info is not None:
        record_account_facts(session_factory=factory, account_id=listing.id, info=info)
        console.print(_("Meta reads it: %(name)s, %(currency)s, %(timezone)s",
                        name=escape(info.name or _("(no name)")), currency=info.currency,
                        timezone=info.timezone), highlight=False)
    elif not os.environ.get(token_env, "").strip():
        err_console.print(_("[yellow]warning:[/] %(variable)s is not set in this shell; set it "
                            "wherever `adsentinel sync`, `run` or the workers run",
                            variable=token_env), highlight=False)


@accounts_app.command("discover")
def discover_command(
    token_env: Annotated[str, typer.Option(
        "--token-env", help="NAME of the environment variable holding the access token.")],
    business: Annotated[str | None, typer.Option(
        "--business", help="A Meta business id: list its owned and client ad accounts "
                           "(default: every ad account the token can read).")] = None,
    add: Annotated[str | None, typer.Option(
        "--add", help="Add these accounts to adsentinel: 'all', or act_ ids separated by "
                      "commas.")] = None,
) -> None:
    """List the ad accounts the token can read (name, currency, timezone, status), and add the
    chosen ones."""
    from adsentinel.accounts.service import add_meta_account, discover_meta_accounts, record_account_facts

    settings, factory = _session_factory()
    found = discover_meta_accounts(session_factory=factory, settings=settings,
                                   token_env=token_env, business_id=business)
    table = Table(title=_("ad accounts readable with $%(variable)s", variable=token_env))
    for column in (_("Meta id"), _("name"), _("currency"), _("timezone"), _("status"),
                   _("in adsentinel")):
        table.add_column(column, overflow="fold", no_wrap=column == _("Meta id"))
    for d in found:
        table.add_row(d.info.platform_account_id, escape(d.info.name or ""), d.info.currency,
                      d.info.timezone, d.status, escape(d.added_as or "-"))
    console.print(table)
    if not found:
        err_console.print(_("the token in $%(variable)s reads no ad account: assign ad accounts "
                            "to its system user in Business Settings", variable=token_env),
                          highlight=False)
        raise typer.Exit(1)
    if add is None:
        console.print(_("add them with --add all, or --add act_...,act_..."), highlight=False)
        return
    for d in _chosen(found, add):
        listing = add_meta_account(session_factory=factory,
                                   platform_account_id=d.info.platform_account_id,
                                   token_env=token_env,
                                   name=d.added_as or _free_name(factory, d))
        record_account_facts(session_factory=factory, account_id=listing.id, info=d.info)
        console.print(_("added [bold]%(name)s[/] (%(meta_id)s)", name=escape(listing.name),
                        meta_id=listing.platform_account_id), highlight=False)


def _chosen(found: list[DiscoveredAccount], add: str) -> list[DiscoveredAccount]:
    from adsentinel.accounts.service import normalise_account_id

    if add.strip().lower() == "all":
        return found
    wanted = [normalise_account_id(part) for part in add.split(",") if part.strip()]
    by_id = {d.info.platform_account_id: d for d in found}
    missing = [w for w in wanted if w not in by_id]
    if missing:
        raise ConfigError(_("--add names %(ids)s, which the token cannot read",
                            ids=", ".join(missing)), hint=_("choose ids from the list above"))
    return [by_id[w] for w in wanted]


def _free_name(factory, discovered: DiscoveredAccount) -> str:
    """Meta's name for the account, unless another account already has it (then the id)."""
    from adsentinel.accounts.service import list_accounts

    name = discovered.info.name or discovered.info.platform_account_id
    taken = {a.name for a in list_accounts(session_factory=factory, settings=get_settings())}
    return name if name not in taken else discovered.info.platform_account_id


@accounts_app.command("list")
def list_command() -> None:
    """Every account: Meta id, token variable, results counted, last sync, attention needed."""
    from adsentinel.accounts.service import list_accounts

    settings, factory = _session_factory()
    print_accounts(list_accounts(session_factory=factory, settings=settings))


@accounts_app.command("disable")
def disable_command(
    account: Annotated[str, typer.Argument(help="Account name, Meta id or numeric id.")],
) -> None:
    """Stop syncing and detecting an account (its data stays)."""
    from adsentinel.accounts.service import set_account_active

    factory = _session_factory()[1]
    listing = set_account_active(session_factory=factory, wanted=account, active=False)
    console.print(_("account [bold]%(name)s[/] disabled", name=escape(listing.name)),
                  highlight=False)


@accounts_app.command("enable")
def enable_command(
    account: Annotated[str, typer.Argument(help="Account name, Meta id or numeric id.")],
) -> None:
    """Sync and detect an account again; clears a needs-attention mark (after a new token)."""
    from adsentinel.accounts.service import set_account_active

    factory = _session_factory()[1]
    listing = set_account_active(session_factory=factory, wanted=account, active=True)
    console.print(_("account [bold]%(name)s[/] enabled", name=escape(listing.name)),
                  highlight=False)


def _settings_cell(account: AccountListing) -> str:
    """``EUR, Europe/Lisbon`` and each change, in yellow: history compares from the last."""
    cell = escape(f"{account.currency or '-'}, {account.timezone or '-'}")
    for change in account.setting_changes:
        cell += f"\n[yellow]{escape(change)}[/]"
    if account.setting_changes:
        cell += "\n[yellow](detection compares from the last change on)[/]"
    return cell


@accounts_app.command("edit")
def edit_command(
    account: Annotated[str, typer.Argument(help="Account name, Meta id or numeric id.")],
    locale: Annotated[str | None, typer.Option(
        "--locale", help="Language of the account's alerts and report: en or pt_BR; 'default' "
                         "goes back to the LOCALE setting.")] = None,
) -> None:
    """Change how an account is told about: the language of its alerts and report."""
    from adsentinel.accounts.service import set_account_locale

    if locale is None:
        raise typer.BadParameter(_("nothing to change: give --locale"), param_hint="'--locale'")
    wanted = None if locale.strip().lower() == "default" else _checked_locale(locale)
    _settings, factory = _session_factory()
    ref = set_account_locale(session_factory=factory, wanted=account, locale=wanted)
    if wanted is None:
        console.print(_("account [bold]%(name)s[/]: alerts and report in the LOCALE setting's "
                        "language", name=escape(ref.name)), highlight=False)
    else:
        console.print(_("account [bold]%(name)s[/]: alerts and report in %(language)s",
                        name=escape(ref.name), language=LOCALE_NAMES[wanted]), highlight=False)


def _checked_locale(locale: str | None) -> str | None:
    """``--locale`` as stored (``pt-br`` -> ``pt_BR``), or a usage error naming the choices."""
    if locale is None:
        return None
    try:
        return parse_locale(locale)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--locale'") from None


def _attention(account: AccountListing) -> str:
    """The account's attention mark in the CLI's language (the kind's what-to-do, or the mark as
    written: :func:`adsentinel.sync.error_kinds.attention_sentence`)."""
    if not account.needs_attention:
        return ""
    return attention_sentence(cli_language(), account.needs_attention_kind,
                              account.needs_attention)


def print_accounts(accounts: list[AccountListing]) -> None:
    """The accounts as a table; the token column shows the variable's name only."""
    table = Table(title="ad accounts")
    # ids and the token variable are what users copy: never cut; the rest folds on a narrow
    # terminal instead of being cut with an ellipsis
    for column, keep_whole in (("id", True), ("name", False), ("Meta id", True),
                               ("token", True), ("active", True), ("results", False),
                               ("currency, timezone", False), ("last sync", False),
                               ("attention", False)):
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
                      "yes" if a.is_active else "no", a.result_action_types,
                      _settings_cell(a), synced, escape(_attention(a)))
    console.print(table)
