"""`adsentinel serve` (the API and dashboard) and `adsentinel tokens create|list|revoke`."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Table

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.cli.app import gettext as _
from adsentinel.errors import AdsentinelError

tokens_app = typer.Typer(help="API tokens of the HTTP API and dashboard.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


def _session_factory(settings):
    from adsentinel.db.engine import make_session_factory, open_database

    return make_session_factory(open_database(settings))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    jobs: Annotated[str, typer.Option(
        help="Who runs trainings and detections enqueued through the API: 'celery' (workers), "
             "'in-process' (a background thread of this server) or 'auto' (in-process on "
             "SQLite, else Celery when the broker answers).")] = "auto",
    workers: Annotated[int, typer.Option(
        min=1, max=64,
        help="Server processes. Charts are CPU-bound Python: one process per core serves them "
             "in parallel. More than one needs --jobs celery.")] = 1,
) -> None:
    """Run the HTTP API (/api/v1, docs at /docs) and the dashboard on the configured database."""
    import uvicorn

    from adsentinel.api import create_app

    if jobs not in ("auto", "celery", "in-process"):
        raise AdsentinelError(_("--jobs must be auto, celery or in-process, got %(value)r",
                                value=jobs))
    settings = get_settings()
    # built here even with several workers: the database is checked (and a fresh one migrated)
    # and the key files created once, before the server processes start
    application = create_app(settings, jobs=jobs)
    dispatcher = application.state.dispatcher.name
    processes = _(", %(workers)d server processes", workers=workers) if workers > 1 else ""
    console.print(_("adsentinel API and dashboard on http://%(host)s:%(port)s (database "
                    "%(database)s, jobs %(jobs)s%(processes)s)", host=host, port=port,
                    database=settings.masked()["database_url"], jobs=dispatcher,
                    processes=processes), highlight=False)
    # log_config=None: uvicorn's records go through adsentinel's handler (ADSENTINEL_LOG_FORMAT)
    options: dict[str, Any] = dict(host=host, port=port, log_level=settings.log_level.lower(),
                                   proxy_headers=True, server_header=False, log_config=None)
    if workers == 1:
        uvicorn.run(application, **options)
        return
    application.state.dispatcher.close()
    if dispatcher != "celery":
        raise AdsentinelError(
            _("--workers %(workers)d needs the Celery job runner, and jobs would run %(jobs)s",
              workers=workers, jobs=dispatcher),
            hint=_("start Redis and the workers and pass --jobs celery: a job run inside one "
                   "server process could only be followed through that process"))
    from adsentinel.api.asgi import SERVE_JOBS_ENV

    os.environ[SERVE_JOBS_ENV] = "celery"
    uvicorn.run("adsentinel.api.asgi:app_from_environment", factory=True, workers=workers,
                **options)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="Who or what uses the token (unique).")],
    accounts: Annotated[str | None, typer.Option(
        help="Comma-separated accounts (names, platform ids or ids) the token is limited to; "
             "default: every account.")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="May read, not change.")] = False,
) -> None:
    """Create a token. It is printed once: only its hash is stored."""
    from adsentinel.service.tokens import create_token

    settings = get_settings()
    created = create_token(session_factory=_session_factory(settings), name=name,
                           accounts=accounts.split(",") if accounts is not None else None,
                           read_only=read_only)
    scope = (_("every account") if created.info.account_ids is None
             else _("account ids %(ids)s", ids=", ".join(map(str, created.info.account_ids))))
    if created.info.read_only:
        scope += _(", read-only")
    err_console.print(_("token %(name)r created (%(scope)s). Store it now: it cannot be shown "
                        "again.", name=created.info.name, scope=scope), highlight=False)
    print(created.secret)


@tokens_app.command("list")
def tokens_list(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List tokens (name, prefix, scope, last use); secrets are never shown."""
    from adsentinel.service.tokens import account_names, list_tokens

    factory = _session_factory(get_settings())
    tokens = list_tokens(session_factory=factory, include_revoked=all_)
    if as_json:
        print(json.dumps([{
            "name": t.name, "prefix": t.prefix,
            "account_ids": list(t.account_ids) if t.account_ids is not None else None,
            "read_only": t.read_only, "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None} for t in tokens],
            indent=2))
        return
    if not tokens:
        console.print(_("no tokens; create one with `adsentinel tokens create --name NAME`"))
        return
    table = Table(_("name"), _("prefix"), _("accounts"), _("access"), _("created"),
                  _("last used"), _("revoked"))
    for t in tokens:
        table.add_row(t.name, t.prefix + "…",
                      _("all") if t.account_ids is None
                      else ", ".join(account_names(session_factory=factory, ids=t.account_ids)),
                      _("read-only") if t.read_only else _("read-write"),
                      t.created_at.strftime("%Y-%m-%d %H:%M"),
                      t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else _("never"),
                      t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else "")
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name (or its displayed prefix).")],
) -> None:
    """Revoke a token: it stops working at once, dashboard sessions included."""
    from adsentinel.service.tokens import revoke_token

    info = revoke_token(session_factory=_session_factory(get_settings()), name_or_prefix=name)
    console.print(_("token %(name)r revoked", name=info.name), highlight=False)
