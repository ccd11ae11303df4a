"""`adsentinel import`: load an insights CSV into the configured database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, cli_language, console, err_console, get_settings, ngettext
from adsentinel.cli.app import gettext as _
from adsentinel.errors import NotFoundError

if TYPE_CHECKING:
    from adsentinel.ingest.csv_import import ImportSummary


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(
        help="Insights CSV: canonical columns or an Ads Manager export.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account",
        help="Import every row into this account (needed if the file has no account_id).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid",
        help="Import the valid rows and report the invalid ones, instead of importing nothing.")] = False,
    from_sql: Annotated[str | None, typer.Option(
        "--from-sql", help="Read a warehouse instead of a file: its SQLAlchemy URL.")] = None,
    source: Annotated[str, typer.Option(
        help="With --from-sql: fivetran, airbyte (their Facebook Ads tables) or query.")] = "fivetran",
    query: Annotated[str | None, typer.Option(
        help="With --source query: a SELECT returning the canonical columns.")] = None,
    schema: Annotated[str | None, typer.Option(
        help="With --from-sql: the schema holding the Fivetran or Airbyte tables.")] = None,
) -> None:
    """Import daily insights per ad; campaign and ad set days are aggregated from their ads.

    The import is one transaction: on any problem nothing is written (unless --skip-invalid).
    Importing a day again restates it with the new numbers.
    """
    from adsentinel.db.engine import open_database

    if from_sql is not None:
        from adsentinel.cli.warehouse_import import import_from_sql

        import_from_sql(file=file, url=from_sql, source=source, query=query, schema=schema,
                        account=account, skip_invalid=skip_invalid)
        return
    if file is None:  # the usage error a required FILE argument would give
        from typer._click.exceptions import MissingParameter  # Typer's own click

        raise MissingParameter(ctx=ctx, param=next(  # type: ignore[arg-type]  # (click's type for Typer's)
            p for p in ctx.command.params if p.name == "file"))
    require_readable_file(file)
    settings = get_settings()
    engine = open_database(settings)
    summary = run_import_with_progress(file, engine=engine, account=account, skip_invalid=skip_invalid)
    print_import_summary(summary)


def require_readable_file(file: Path) -> None:
    """Refuse an input file that is missing, a folder or unreadable: exit 66 (EX_NOINPUT), before
    any database is opened or created."""
    if not file.exists():
        raise NotFoundError(_("%(file)s: no such file", file=file), hint=_("check the path"))
    if file.is_dir():
        raise NotFoundError(_("%(file)s is a folder, not a file", file=file),
                            hint=_("give the path of the file to import"))
    if not os.access(file, os.R_OK):
        raise NotFoundError(_("%(file)s: permission denied", file=file),
                            hint=_("make the file readable by this user"))


def run_import_with_progress(file: Path, *, engine, account: str | None,
                             skip_invalid: bool) -> ImportSummary:
    """Import ``file`` showing a progress bar over its bytes (on a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from adsentinel.ingest.csv_import import import_insights_csv

    total = file.stat().st_size if file.is_file() else None
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task(_("importing %(file)s", file=file.name), total=total)
        return import_insights_csv(file, engine=engine, account_name=account,
                                   skip_invalid=skip_invalid,
                                   on_bytes=lambda n: progress.advance(task, n))


def print_import_summary(summary: ImportSummary) -> None:
    """A short table of what the import did, then the skipped lines if any."""
    lang = cli_language()
    count = lambda value: lang.number(value, decimals=0)  # noqa: E731
    table = Table(title=_("imported %(file)s", file=summary.file), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(_("accounts"), ", ".join(summary.accounts) or "-")
    table.add_row(_("rows read"), count(summary.rows_read))
    table.add_row(_("rows imported"), count(summary.rows_imported))
    if summary.duplicate_rows:
        table.add_row(_("identical duplicates"), count(summary.duplicate_rows))
    if summary.invalid_rows:
        table.add_row(_("invalid rows skipped"), count(summary.invalid_rows))
    table.add_row(_("ad-days new / restated / unchanged"),
                  f"{count(summary.days_new)} / {count(summary.days_restated)} / "
                  f"{count(summary.days_unchanged)}")
    created = summary.entities_created
    table.add_row(_("new campaigns / ad sets / ads"),
                  " / ".join(count(created.get(level, 0)) for level in ("campaign", "adset", "ad")))
    if summary.first_day:
        table.add_row(_("days"), f"{_day_text(lang, summary.first_day)} .. "
                                 f"{_day_text(lang, summary.last_day)}")
    console.print(table)
    if summary.problems_total:
        err_console.print("[yellow]" + ngettext("%(num)d problem; these lines were skipped:",
                                                "%(num)d problems; these lines were skipped:",
                                                summary.problems_total) + "[/]")
        for problem in summary.problems:
            err_console.print(f"  {problem}", highlight=False)
        if summary.problems_total > len(summary.problems):
            err_console.print("  " + _("... and %(more)d more",
                                       more=summary.problems_total - len(summary.problems)))


def _day_text(lang, day) -> str:
    """A day of the summary as the CLI's language writes it (an ISO string is parsed first)."""
    from datetime import date

    try:
        return lang.day(day if isinstance(day, date) else date.fromisoformat(str(day)))
    except ValueError:
        return str(day)
