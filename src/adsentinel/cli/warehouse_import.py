"""`adsentinel import --from-sql URL --source fivetran|airbyte|query`: the warehouse edge of
`adsentinel import` (see :mod:`adsentinel.ingest.warehouse`)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from adsentinel.cli.app import cli_language, console, get_settings
from adsentinel.cli.app import gettext as _
from adsentinel.errors import AdsentinelError


def import_from_sql(*, file: Path | None, url: str, source: str, query: str | None,
                    schema: str | None, account: str | None, skip_invalid: bool) -> None:
    """Import from the warehouse at ``url`` and print what was done."""
    if file is not None:
        raise AdsentinelError(_("give a FILE or --from-sql URL, not both"))
    if account is not None or skip_invalid:
        raise AdsentinelError(_("--account and --skip-invalid are for files; a warehouse row "
                                "names its account, and a bad row stops the import"))
    settings = get_settings()
    from adsentinel.db.engine import open_database
    from adsentinel.ingest.warehouse import import_from_warehouse

    types = [t.strip() for t in settings.result_action_types.split(",") if t.strip()]
    summary = import_from_warehouse(engine=open_database(settings), url=url, source=source,
                                    query=query, schema=schema, action_types=types)
    count = lambda value: cli_language().number(value, decimals=0)  # noqa: E731
    table = Table(title=_("imported %(file)s", file=summary.source), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(_("accounts"), ", ".join(summary.accounts) or "-")
    table.add_row(_("rows read"), count(summary.rows_read))
    table.add_row(_("new days"), count(summary.days_new))
    table.add_row(_("restated days"), count(summary.days_restated))
    console.print(table)
