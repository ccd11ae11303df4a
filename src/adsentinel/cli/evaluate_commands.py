"""`adsentinel backtest` (walk forward over a CSV) and `adsentinel evaluate` (the labelled suite)."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, console, get_settings
from adsentinel.errors import AdsentinelError


def _day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AdsentinelError(f"{option}: expected YYYY-MM-DD, got {value!r}") from None


@app.command()
def backtest(
    input_csv: Annotated[Path, typer.Option("--input", help="Insights CSV (the import format).")],
    start: Annotated[str, typer.Option("--start", help="First day to judge, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day to judge, YYYY-MM-DD.")],
    output: Annotated[Path, typer.Option("--output", help="JSON Lines file, one anomaly a line.")],
    retrain_every: Annotated[int, typer.Option(
        "--retrain-every", min=1, help="Refit the per-entity forests every N days (production: 1).")] = 1,
) -> None:
    """Judge every day from --start to --end with only the days before it, as production would."""
    from adsentinel.service.evaluation import backtest_csv

    settings = get_settings()
    first, last = _day("--start", start), _day("--end", end)
    if last < first:
        raise AdsentinelError(f"--end ({last}) is before --start ({first})")
    started = time.perf_counter()
    found = backtest_csv(input_csv, start=first, end=last, retrain_every=retrain_every,
                         min_samples=settings.isolation_forest_min_samples,
                         history_days=settings.isolation_forest_history_days)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for record in found.to_dict("records"):
            record["date"] = str(record["date"])
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in record.items()}
            handle.write(json.dumps(clean, default=str) + "\n")
    os.replace(temporary, output)
    by_severity = found["severity"].value_counts().to_dict() if len(found) else {}
    console.print(f"{len(found):,} anomalies from {first} to {last} in "
                  f"{time.perf_counter() - started:.0f} s ({by_severity}) -> {output}",
                  highlight=False)


@app.command()
def evaluate(
    seed: Annotated[int | None, typer.Option(help="Seed of the evaluation data (default: the preset's).")] = None,
    min_severity: Annotated[str, typer.Option(help="Count alarms at or above this severity.")] = "medium",
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="Also run the plan's naive configuration.")] = True,
) -> None:
    """Run the labelled synthetic suite and print recall, precision, false alarms and time to
    detect, for adsentinel and for the plan's naive configuration side by side."""
    from adsentinel.service.evaluation import evaluate_preset, results_table

    get_settings()
    if min_severity not in ("low", "medium", "high", "critical"):
        raise AdsentinelError(f"--min-severity must be low, medium, high or critical, "
                              f"got {min_severity!r}")
    started = time.perf_counter()
    results = evaluate_preset(seed=seed, min_severity=min_severity,
                              engines=("adsentinel", "naive") if naive else ("adsentinel",))
    table = Table(title=f"labelled evaluation suite, severity >= {min_severity}")
    frame = results_table(results)
    table.add_column("measure")
    for engine in frame.columns:
        table.add_column(engine, justify="right")
    for measure, row in frame.iterrows():
        table.add_row(str(measure), *(str(v) for v in row))
    console.print(table)
    console.print(f"{time.perf_counter() - started:.0f} s", style="dim")
