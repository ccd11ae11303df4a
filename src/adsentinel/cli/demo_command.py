"""`adsentinel demo`: the main job on the embedded default, end to end."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress

from adsentinel.cli.app import app, console, err_console, get_settings
from adsentinel.cli.data_commands import print_import_summary


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic account.")] = 42,
) -> None:
    """Generate a realistic demo account with labelled incidents, import it, and report."""
    from adsentinel.service.demo import run_demo  # heavy (pandas, numba): only when run

    settings = get_settings()
    console.print(f"[bold]adsentinel demo[/] on {settings.masked()['database_url']}", highlight=False)
    with Progress("[progress.description]{task.description}", BarColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task("importing demo data", total=None)
        result = run_demo(settings=settings, seed=seed,
                          on_bytes=lambda n: progress.advance(task, n))
    data = result.dataset_summary
    console.print(f"generated {data['rows']:,} rows for {data['accounts']} account(s), "
                  f"{data['ads']} ads, {data['start_date']} to {data['end_date']} "
                  f"({data['incidents']} labelled incidents) in {result.data_folder}",
                  highlight=False)
    print_import_summary(result.import_summary)
