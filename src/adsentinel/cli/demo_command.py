"""`adsentinel demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

from typing import Annotated

import typer

from adsentinel.cli.app import app, cli_language, console, err_console, get_settings, ngettext
from adsentinel.cli.app import gettext as _
from adsentinel.cli.data_commands import print_import_summary
from adsentinel.cli.detect_commands import anomaly_rows, print_anomaly_table, worst_first


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic account.")] = 42,
) -> None:
    """Generate realistic demo accounts with labelled incidents, import them, train the
    per-entity models, detect, print the anomalies and write an HTML report."""
    from rich.progress import BarColumn, Progress

    from adsentinel.service.demo import run_demo  # heavy (pandas, numba): only when run

    settings = get_settings()
    console.print(f"[bold]adsentinel demo[/] on {settings.masked()['database_url']}", highlight=False)
    with Progress("[progress.description]{task.description}", BarColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task(_("importing demo data"), total=None)
        result = run_demo(settings=settings, seed=seed,
                          on_bytes=lambda n: progress.advance(task, n))
    data = result.dataset_summary
    console.print(_("generated %(rows)s rows for %(accounts)s, %(ads)d ads, %(first)s to "
                    "%(last)s (%(incidents)d labelled incidents) in %(folder)s",
                    rows=cli_language().number(data["rows"], decimals=0), ads=data["ads"],
                    first=data["start_date"], last=data["end_date"], incidents=data["incidents"],
                    folder=result.data_folder,
                    accounts=ngettext("%(num)d account", "%(num)d accounts", data["accounts"])),
                  highlight=False)
    print_import_summary(result.import_summary)
    trained = sum(r[level]["trained"] for r in result.training
                  for level in ("campaign", "adset", "ad"))
    console.print(_("trained %(count)d per-entity models", count=trained), highlight=False)

    from adsentinel.accounts.service import select_accounts
    from adsentinel.db.engine import make_session_factory, open_database

    session_factory = make_session_factory(open_database(settings))
    rows = []
    for ref in select_accounts(session_factory=session_factory, wanted=None):
        rows.extend(anomaly_rows(session_factory, ref,
                                 [a for a in result.anomalies if a.account_id == ref.id]))
    top = worst_first([r for r in rows if r["severity"] in ("medium", "high", "critical")
                       and r["kind"] != "good_news"])  # money at stake, then severity
    print_anomaly_table(top[:20], title=_("anomalies found (medium and above, worst first)"))
    if result.ongoing_incidents:
        console.print(_("incidents the generator injected that are still on at the end (the "
                        "truth to compare with):"), style="bold")
        for label in result.ongoing_incidents:
            console.print("  " + _("%(kind)s on %(level)s %(entity)s since %(start)s",
                                   kind=label["kind"], level=label["entity_type"],
                                   entity=label["entity_id"], start=label["start_date"]),
                          highlight=False)
    console.print(_("report of the open incidents, worst first: %(path)s", path=result.report),
                  highlight=False)
    console.print(_("in the dashboard: `adsentinel tokens create --name you`, then `adsentinel "
                    "serve` and open http://127.0.0.1:8000"), highlight=False)
