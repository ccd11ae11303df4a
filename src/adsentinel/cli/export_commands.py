"""`adsentinel export anomalies --to-sql URL --table T | --parquet FILE`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from adsentinel.cli.app import app, console, get_settings
from adsentinel.errors import AdsentinelError

export_app = typer.Typer(help="Export data for other tools (dbt, Looker, Metabase).",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("anomalies")
def export_anomalies(
    to_sql: Annotated[str | None, typer.Option(
        "--to-sql", help="SQLAlchemy URL of the database to write to, e.g. "
        "postgresql://user@host/db (its dialect and driver must be installed).")] = None,
    table: Annotated[str | None, typer.Option(help="Table to write (with --to-sql).")] = None,
    mode: Annotated[str, typer.Option(
        help="replace: drop and recreate the table; append: add the rows.")] = "replace",
    parquet: Annotated[Path | None, typer.Option(
        "--parquet", help="Parquet file to write (needs pyarrow: adsentinel[parquet]).")] = None,
    account: Annotated[str | None, typer.Option(
        help="Only this account (name, platform id or numeric id).")] = None,
    since: Annotated[str | None, typer.Option(help="Only anomalies of days from YYYY-MM-DD.")] = None,
) -> None:
    """Write every anomaly (one row each: account, entity, day, metric, actual, expected,
    bounds, score, severity, message, status) to a database table or a Parquet file."""
    if (to_sql is None) == (parquet is None):
        raise AdsentinelError("give exactly one of --to-sql URL or --parquet FILE")
    if to_sql is not None and not table:
        raise AdsentinelError("--to-sql needs --table NAME")
    first_day = _parse_day(since)
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.service import export

    engine = open_database(settings)
    account_ids = None
    if account is not None:
        from adsentinel.service.sync import find_account

        with make_session_factory(engine)() as session:
            account_ids = [find_account(session, account).id]
    chunks = export.anomaly_chunks(engine, account_ids=account_ids, since=first_day)
    if to_sql is not None:
        summary = export.export_to_sql(chunks, url=to_sql, table=table, mode=mode)
    else:
        summary = export.export_to_parquet(chunks, path=parquet)
    console.print(f"{summary.rows} anomalies written to {summary.target}", highlight=False,
                  soft_wrap=True)


def _parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AdsentinelError(f"--since must be a date YYYY-MM-DD, got {text!r}") from None
