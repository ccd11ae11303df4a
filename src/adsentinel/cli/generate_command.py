"""`adsentinel generate`: write a synthetic, labelled dataset (insights.csv + labels.csv).

``--world lab`` (the default) is :mod:`adsentinel.evaluation.lab_world`; ``--world field`` is the
independent second world of :mod:`adsentinel.evaluation.field_world`, in the same format.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, cli_language, console, ngettext, option_day
from adsentinel.cli.app import gettext as _
from adsentinel.errors import ConfigError

PRESET_NAMES = ("demo", "evaluation", "benchmark")  # adsentinel.evaluation.lab_world.PRESETS
WORLD_NAMES = ("lab", "field")
FIELD_PRESET_NAMES = ("demo", "evaluation")  # adsentinel.evaluation.field_world.SIZES


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
    world: Annotated[str, typer.Option(
        help="Which generator: lab (the default) or field, the independent second world "
             "(presets demo and evaluation; --accounts, --ads, --days and --incident-rate "
             "apply to the lab only).")] = "lab",
) -> None:
    """Generate synthetic Meta ad accounts with injected, labelled incidents."""
    from adsentinel.evaluation.dataset_files import write_dataset
    from adsentinel.evaluation.lab_world import (  # pandas: imported only when generating
        generate_dataset,
        preset_config,
        summarize,
    )

    if world not in WORLD_NAMES:
        raise ConfigError(_("--world must be one of %(choices)s, got %(value)r",
                            choices=", ".join(WORLD_NAMES), value=world))
    started = time.perf_counter()
    if world == "field":
        lab_only = {"--accounts": accounts, "--ads": ads, "--days": days,
                    "--incident-rate": incident_rate}
        given = [name for name, value in lab_only.items() if value is not None]
        if given:
            raise ConfigError(_("--world field does not take %(options)s",
                                options=", ".join(given)),
                              hint=_("the field world draws its sizes from --seed and --preset"))
        dataset, summary = _generate_field(seed, preset, option_day(end_date, "--end-date"))
    else:
        config = preset_config(
            preset, seed=seed, accounts=accounts, ads_per_account=ads, days=days,
            end_date=option_day(end_date, "--end-date"), incidents_per_100_ads=incident_rate,
        )
        dataset = generate_dataset(config)
        summary = summarize(dataset)
    files = write_dataset(dataset, out)
    elapsed = time.perf_counter() - started

    lang = cli_language()
    console.print(_(
        "[bold]%(rows)s[/] rows: %(accounts)s, %(campaigns)d campaigns, %(ads)d ads, %(days)d "
        "days (%(first)s to %(last)s), seed %(seed)d, world %(world)s, preset %(preset)s, "
        "%(seconds)s s", rows=lang.number(summary["rows"], decimals=0),
        accounts=ngettext("%(num)d account", "%(num)d accounts", summary["accounts"]),
        campaigns=summary["campaigns"], ads=summary["ads"], days=summary["days"],
        first=summary["start_date"], last=summary["end_date"], seed=seed, world=world,
        preset=preset, seconds=lang.number(elapsed, decimals=1)))
    console.print(_("%(incidents)d labelled incidents, %(wide)d of them campaign-wide",
                    incidents=summary["incidents"], wide=summary["campaign_wide"]))
    table = Table(title=_("incidents by kind"))
    table.add_column(_("kind"))
    table.add_column(_("incidents"), justify="right")
    for kind, count in summary["incidents_by_kind"].items():
        table.add_row(kind, str(count))
    console.print(table)
    for label, path in (("insights", files.insights), ("labels", files.labels),
                        ("events", files.events)):
        console.print(f"{label:>9}: {path}", highlight=False)


def _generate_field(seed: int, preset: str, end_date: dt.date | None):
    from adsentinel.evaluation.field_world import (
        field_world_config,
        generate_field_world,
        summarize_field_world,
    )

    if preset not in FIELD_PRESET_NAMES:
        raise ConfigError(_("--preset must be one of %(choices)s with --world field, got "
                            "%(value)r", choices=", ".join(FIELD_PRESET_NAMES), value=preset))
    config = field_world_config(seed, preset)
    if end_date is not None:
        config = dataclasses.replace(config, end_date=end_date)
    dataset = generate_field_world(config)
    return dataset, summarize_field_world(dataset)
