"""`adsentinel generate`: write a synthetic, labelled dataset (insights.csv + labels.csv)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, console
from adsentinel.errors import ConfigError

PRESET_NAMES = ("demo", "evaluation", "benchmark")  # adsentinel.ingest.synthetic.PRESETS


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CSV files into.")],
    seed: Annotated[int, typer.Option(
        help="Random seed; the same seed gives the same files.")] = 42,
    preset: Annotated[str, typer.Option(
        help=f"Size and incident rate: {', '.join(PRESET_NAMES)}.")] = "demo",
    accounts: Annotated[int | None, typer.Option(help="Number of ad accounts.")] = None,
    ads: Annotated[int | None, typer.Option(help="Ads per account.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of data, ending on --end-date.")] = None,
    end_date: Annotated[str | None, typer.Option(
        "--end-date", help="Last day of data, YYYY-MM-DD (default: the preset's fixed date).")
    ] = None,
    incident_rate: Annotated[float | None, typer.Option(
        help="Incidents per 100 ads of an account.")] = None,
) -> None:
    """Generate synthetic Meta ad accounts with injected, labelled incidents."""
    from adsentinel.ingest.synthetic import (  # pandas: imported only when generating
        generate_dataset,
        preset_config,
        summarize,
        write_dataset,
    )

    config = preset_config(
        preset, seed=seed, accounts=accounts, ads_per_account=ads, days=days,
        end_date=_parse_date(end_date), incidents_per_100_ads=incident_rate,
    )
    started = time.perf_counter()
    dataset = generate_dataset(config)
    files = write_dataset(dataset, out)
    elapsed = time.perf_counter() - started

    summary = summarize(dataset)
    console.print(
        f"[bold]{summary['rows']:,}[/] rows: {summary['accounts']} account(s), "
        f"{summary['campaigns']} campaigns, {summary['ads']} ads, {summary['days']} days "
        f"({summary['start_date']} to {summary['end_date']}), seed {config.seed}, "
        f"preset {preset}, {elapsed:.1f} s"
    )
    console.print(f"{summary['incidents']} labelled incidents, "
                  f"{summary['campaign_wide']} of them campaign-wide")
    table = Table(title="incidents by kind")
    table.add_column("kind")
    table.add_column("incidents", justify="right")
    for kind, count in summary["incidents_by_kind"].items():
        table.add_row(kind, str(count))
    console.print(table)
    for label, path in (("insights", files.insights), ("labels", files.labels),
                        ("events", files.events)):
        console.print(f"{label:>9}: {path}", highlight=False)


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--end-date must be a date YYYY-MM-DD, got {value!r}") from None
