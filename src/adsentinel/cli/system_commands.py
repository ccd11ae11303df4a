"""`adsentinel config show` and `adsentinel db upgrade|current`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import config_app, console, db_app, get_settings
from adsentinel.cli.app import gettext as _


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings (secrets masked) and where each can be changed."""
    settings = get_settings()
    values = settings.masked()
    if as_json:
        console.print_json(json.dumps(values, default=str))
        return
    table = Table(title=_("adsentinel settings"), show_lines=False)
    table.add_column(_("setting"), no_wrap=True)
    table.add_column(_("value"), overflow="fold")
    for name, value in values.items():
        table.add_row(name, str(value))
    console.print(table)
    console.print(_("Change a setting with ADSENTINEL_<SETTING> (environment or .env)."),
                  style="dim")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the database schema (run once per deployment on PostgreSQL)."""
    from adsentinel.db import migrate
    from adsentinel.db.engine import create_db_engine

    settings = get_settings()
    engine = create_db_engine(settings.effective_database_url)
    from adsentinel.db.engine import open_database

    before = _current_or_fail(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(_("database %(where)s already at revision %(revision)s", where=where,
                        revision=after))
    else:
        console.print(_("database %(where)s migrated from %(before)s to %(after)s", where=where,
                        before=before or _("empty"), after=after))
    open_database(settings)  # verifies the result is usable


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the newest one this code knows."""
    from adsentinel.db import migrate
    from adsentinel.db.engine import create_db_engine

    settings = get_settings()
    engine = create_db_engine(settings.effective_database_url)
    current = _current_or_fail(engine)
    console.print(_("current: %(current)s   head: %(head)s", current=current or _("empty"),
                    head=migrate.head_revision()))


def _current_or_fail(engine):
    from sqlalchemy.exc import OperationalError

    from adsentinel.db import migrate
    from adsentinel.errors import StorageError

    try:
        return migrate.current_revision(engine)
    except OperationalError as exc:
        raise StorageError(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}",
            hint=_("check ADSENTINEL_DATABASE_URL and that the server is running"),
        ) from None
