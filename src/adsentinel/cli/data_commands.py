"""`adsentinel import`: load an insights CSV into the configured database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.db.engine import open_database
from adsentinel.errors import NotFoundError
from adsentinel.ingest.csv_import import ImportSummary, import_insights_csv


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="Insights CSV: canonical columns or an Ads Manager export.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account", help="Import every row into this account (needed if the file has no account_id).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Import the valid rows and report the invalid ones, instead of importing nothing.")] = False,
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
    if from_sql is not None:
        from adsentinel.cli.warehouse_import import import_from_sql

        import_from_sql(file=file, url=from_sql, source=source, query=query, schema=schema,
                        account=account, skip_invalid=skip_invalid)
        return
    if file is None:  # the usage error a required FILE argument would give
        from typer._click.exceptions import MissingParameter  # Typer's own click

        raise MissingParameter(ctx=ctx, param=next(
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
        raise NotFoundError(f"{file}: no such file", hint="check the path")
    if file.is_dir():
        raise NotFoundError(f"{file} is a folder, not a file", hint="give the path of the file to import")
    if not os.access(file, os.R_OK):
        raise NotFoundError(f"{file}: permission denied", hint="make the file readable by this user")


def run_import_with_progress(file: Path, *, engine, account: str | None,
                             skip_invalid: bool) -> ImportSummary:
    """Import ``file`` showing a progress bar over its bytes (on a terminal)."""
    total = file.stat().st_size if file.is_file() else None
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task(f"importing {file.name}", total=total)
        return import_insights_csv(file, engine=engine, account_name=account,
                                   skip_invalid=skip_invalid,
                                   on_bytes=lambda n: progress.advance(task, n))


def print_import_summary(summary: ImportSummary) -> None:
    """A short table of what the import did, then the skipped lines if any."""
    table = Table(title=f"imported {summary.file}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("accounts", ", ".join(summary.accounts) or "-")
    table.add_row("rows read", f"{summary.rows_read:,}")
    table.add_row("rows imported", f"{summary.rows_imported:,}")
    if summary.duplicate_rows:
        table.add_row("identical duplicates", f"{summary.duplicate_rows:,}")
    if summary.invalid_rows:
        table.add_row("invalid rows skipped", f"{summary.invalid_rows:,}")
    table.add_row("ad-days new / restated / unchanged",
                  f"{summary.days_new:,} / {summary.days_restated:,} / {summary.days_unchanged:,}")
    created = summary.entities_created
    table.add_row("new campaigns / ad sets / ads",
                  f"{created.get('campaign', 0):,} / {created.get('adset', 0):,} / {created.get('ad', 0):,}")
    if summary.first_day:
        table.add_row("days", f"{summary.first_day} .. {summary.last_day}")
    console.print(table)
    if summary.problems_total:
        err_console.print(f"[yellow]{summary.problems_total} problem(s); these lines were skipped:[/]")
        for problem in summary.problems:
            err_console.print(f"  {problem}", highlight=False)
        if summary.problems_total > len(summary.problems):
            err_console.print(f"  ... and {summary.problems_total - len(summary.problems)} more")
