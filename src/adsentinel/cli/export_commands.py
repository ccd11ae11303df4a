"""`adsentinel export anomalies --to-sql URL --table T | --parquet FILE`, and
`adsentinel report`: the HTML report of the open incidents, in a language."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adsentinel.cli.app import app, console, get_settings, ngettext, option_day
from adsentinel.cli.app import gettext as _
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
        raise AdsentinelError(_("give exactly one of --to-sql URL or --parquet FILE"))
    if to_sql is not None and not table:
        raise AdsentinelError(_("--to-sql needs --table NAME"))
    first_day = option_day(since, "--since")
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.service import export

    engine = open_database(settings)
    account_ids = None
    if account is not None:
        from adsentinel.accounts.service import find_account

        with make_session_factory(engine)() as session:
            account_ids = [find_account(session, account).id]
    chunks = export.anomaly_chunks(engine, account_ids=account_ids, since=first_day)
    if to_sql is not None:
        assert table is not None  # checked above
        summary = export.export_to_sql(chunks, url=to_sql, table=table, mode=mode)
    else:
        assert parquet is not None  # exactly one of the two, checked above
        summary = export.export_to_parquet(chunks, path=parquet)
    console.print(ngettext("%(num)d anomaly written to %(target)s",
                                          "%(num)d anomalies written to %(target)s",
                                          summary.rows, target=summary.target),
                  highlight=False, soft_wrap=True)


@app.command("report")
def report_command(
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="HTML file to write.")] = Path("adsentinel-report.html"),
    account: Annotated[str | None, typer.Option(
        help="Only this account (name, platform id or numeric id); default: every active "
             "account.")] = None,
    since: Annotated[str | None, typer.Option(
        help="First day, YYYY-MM-DD (default: the 30 days ending on --until).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Last day, YYYY-MM-DD (default: the newest day of data).")] = None,
    limit: Annotated[int, typer.Option(
        min=1, help="Incidents listed with a chart at most (the rest are counted).")] = 20,
    locale: Annotated[str | None, typer.Option(
        "--locale", help="Language of the report: en or pt_BR (default: the account's "
                         "language with --account, else the LOCALE setting).")] = None,
) -> None:
    """Write an HTML report: a summary (accounts, range, incidents by severity, money at
    stake), then the open incidents at medium and above, worst first, each with a chart and a
    link to its dashboard page."""
    from adsentinel.i18n import language, parse_locale

    if locale is not None:
        try:
            locale = parse_locale(locale)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--locale'") from None
    first_day, last_day = option_day(since, "--since"), option_day(until, "--until")
    if first_day and last_day and first_day > last_day:
        raise AdsentinelError(_("--since %(since)s is after --until %(until)s", since=since,
                                until=until), hint=_("give the earlier day to --since"))
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.service.report import build_report, write_report

    factory = make_session_factory(open_database(settings))
    account_ids = None
    if account is not None:
        from adsentinel.accounts.service import find_account

        with factory() as session:
            found = find_account(session, account)
            account_ids, locale = [found.id], locale or found.locale
    report = build_report(session_factory=factory, account_ids=account_ids,
                          first_day=first_day, last_day=last_day, limit=limit)
    path = write_report(session_factory=factory, path=output, report=report,
                        lang=language(locale or settings.locale), public_url=settings.public_url)
    listed = len(report.incidents) + report.not_shown
    console.print(ngettext(
        "report of %(num)d incident at medium or above written to %(path)s",
        "report of %(num)d incidents at medium or above written to %(path)s",
        listed, path=path), highlight=False, soft_wrap=True)
