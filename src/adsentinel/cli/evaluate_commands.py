"""`adsentinel backtest` (walk forward over a CSV) and `adsentinel evaluate` (the labelled suite)."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from adsentinel.cli.app import app, cli_language, console, get_settings, option_day
from adsentinel.cli.app import gettext as _
from adsentinel.errors import AdsentinelError


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
    from adsentinel.detection.account import detector_from_settings
    from adsentinel.evaluation.walk import backtest_csv

    settings = get_settings()
    first, last = option_day(start, "--start"), option_day(end, "--end")
    if last < first:
        raise AdsentinelError(_("--end (%(last)s) is before --start (%(first)s)", last=last,
                                first=first))
    started = time.perf_counter()
    detector = detector_from_settings(settings)
    console.print(settings_line(detector, settings, retrain_every), style="dim", highlight=False)
    found = backtest_csv(input_csv, start=first, end=last,
                         retrain_every=retrain_every if detector.use_isolation_forest else None,
                         min_samples=settings.isolation_forest_min_samples,
                         history_days=settings.isolation_forest_history_days, detector=detector)
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
    count = cli_language().number(len(found), decimals=0)
    console.print(_("%(count)s anomalies from %(first)s to %(last)s in %(seconds)d s "
                    "(%(severities)s) -> %(output)s", count=count, first=first,
                    last=last, seconds=round(time.perf_counter() - started),
                    severities=by_severity, output=output), highlight=False)


def settings_line(detector, settings, retrain_every: int) -> str:
    """The settings a walk runs with, in one line (printed before its results)."""
    forest = (f"on (min {settings.isolation_forest_min_samples} days, refit every "
              f"{retrain_every})" if detector.use_isolation_forest else "off")
    return (f"settings: z threshold {detector.z_threshold:g}, IQR x{detector.iqr_multiplier:g}, "
            f"min history {detector.min_history_days} days, forest {forest}, frequency ideal "
            f"{detector.frequency_ideal:g}")


README_START = "<!-- evaluation:start (written by adsentinel evaluate --readme) -->"
README_END = "<!-- evaluation:end -->"


@app.command()
def evaluate(
    world: Annotated[str, typer.Option(
        help="lab, field or both (decisions are taken on the worse).")] = "both",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds of each world.")] = "1,2,3,4",
    min_severity: Annotated[str, typer.Option(help="Count alarms at or above this severity.")] = "medium",
    naive: Annotated[bool, typer.Option(
        "--naive/--no-naive",
        help="Also run the naive yardstick (mean/std z-score and IQR per metric, a forest at "
        "contamination 0.1).")] = False,
    ablation: Annotated[bool, typer.Option(
        "--ablation/--no-ablation", help="Also run without the forest.")] = True,
    retrain_every: Annotated[int, typer.Option(
        "--retrain-every", min=1, help="Refit forests every N days.")] = 7,
    readme: Annotated[Path | None, typer.Option(
        help="Rewrite the evaluation table in this README: the evaluated worlds' columns; the "
        "other world's stay.")] = None,
    size: Annotated[str, typer.Option(
        help="evaluation (the README's figures) or demo (a quick look).")] = "evaluation",
) -> None:
    """Judge the detector on the labelled worlds (see README, Evaluation): recall per kind and on
    what an oracle could detect, precision per level per ad-day, false alarms per ad-month,
    incident precision, time to detect; with the current settings."""
    from adsentinel.detection.account import detector_from_settings
    from adsentinel.evaluation.walk import engine_walk
    from adsentinel.evaluation.worlds import WORLDS, evaluate_worlds

    settings = get_settings()
    if min_severity not in ("low", "medium", "high", "critical"):
        raise typer.BadParameter(_("must be low, medium, high or critical, got %(value)r",
                                   value=min_severity), param_hint="--min-severity")
    worlds = WORLDS if world == "both" else (world,)
    if any(w not in WORLDS for w in worlds):
        raise typer.BadParameter(_("must be lab, field or both, got %(value)r", value=world),
                                 param_hint="--world")
    try:
        chosen_seeds = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(_("expected comma-separated integers, got %(value)r",
                                   value=seeds), param_hint="--seeds") from None
    if not chosen_seeds or min(chosen_seeds) < 0:
        raise typer.BadParameter(_("expected non-negative integers, got %(value)r", value=seeds),
                                 param_hint="--seeds")
    if size not in ("evaluation", "demo"):
        raise typer.BadParameter(_("must be evaluation or demo, got %(value)r", value=size),
                                 param_hint="--size")
    engines = ("adsentinel",) + (("adsentinel, no forest",) if ablation else ()) + (
        ("naive",) if naive else ())
    detector = detector_from_settings(settings)
    console.print(settings_line(detector, settings, retrain_every), style="dim", highlight=False)
    console.print(f"worlds: {', '.join(worlds)}; seeds: {', '.join(map(str, chosen_seeds))}; "
                  f"engines: {'; '.join(engines)}", style="dim", highlight=False)
    started = time.perf_counter()
    scores = evaluate_worlds(
        engine_walk(detector, retrain_every=retrain_every,
                    min_samples=settings.isolation_forest_min_samples,
                    history_days=settings.isolation_forest_history_days),
        worlds=worlds, seeds=chosen_seeds, engines=engines, min_severity=min_severity, size=size,
        progress=lambda step: console.print(f"  {step}", style="dim", highlight=False))
    frame = scores.table()
    table = Table(title=f"labelled worlds, seeds {seeds}, severity >= {min_severity}")
    table.add_column("measure")
    for column in frame.columns:
        table.add_column(column, justify="right")
    for measure, row in frame.iterrows():
        table.add_row(str(measure), *("" if v is None or v != v else f"{v:g}" for v in row))
    console.print(table)
    console.print(f"{time.perf_counter() - started:.0f} s", style="dim")
    if readme is not None:
        if size != "evaluation":
            raise typer.BadParameter(_("takes the figures of --size evaluation only"),
                                     param_hint="--readme")
        _write_readme_table(readme, frame, seeds=chosen_seeds, min_severity=min_severity,
                            retrain_every=retrain_every, worlds=worlds)
        console.print(_("evaluation table written to %(path)s", path=readme))


def _write_readme_table(path: Path, frame, *, seeds, min_severity: str, retrain_every: int,
                        worlds: tuple[str, ...] = ("lab", "field")) -> None:
    """Rewrite the table between the README's markers with ``frame``'s columns (``"<world>:
    <engine>"``); the columns of worlds this run did not evaluate stay as they were, each world
    with the command that wrote it."""
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise AdsentinelError(_("%(path)s: no evaluation markers; add the lines %(start)r and "
                                "%(end)r where the table goes", path=path, start=README_START,
                                end=README_END))
    before, rest = text.split(README_START, 1)
    old_block, after = rest.split(README_END, 1)
    old_commands, old_columns, old_rows = _read_readme_table(old_block)
    command = (f"adsentinel evaluate{'' if set(worlds) == {'lab', 'field'} else ' --world ' + worlds[0]}"
               f" --seeds {','.join(map(str, seeds))} --min-severity {min_severity}"
               f" --retrain-every {retrain_every} --readme README.md")
    kept = [c for c in old_columns if c.split(":")[0] not in worlds]
    commands = {world: cmd for world, cmd in old_commands.items()
                if world not in worlds and any(c.split(":")[0] == world for c in kept)}
    commands.update({world: command for world in worlds})
    cells = {str(m): {str(c): "" if v is None or v != v else f"{v:g}"
                      for c, v in row.items()} for m, row in frame.iterrows()}
    measures = list(cells) + [m for m in old_rows if m not in cells]
    columns = sorted([*kept, *map(str, frame.columns)], key=_world_order)  # stable sort
    body = ["| " + m + " | " + " | ".join(
        cells.get(m, {}).get(c, old_rows.get(m, {}).get(c, "") if c in kept else "")
        for c in columns) + " |" for m in measures]
    written = [f"* `{world}` columns: written by `{commands[world]}`."
               for world in sorted(commands, key=_world_order)]
    block = "\n".join([README_START, "", *written, "",
                       "| measure | " + " | ".join(columns) + " |",
                       "| --- |" + " ---: |" * len(columns), *body, "", README_END])
    path.write_text(before + block + after, encoding="utf-8")


def _world_order(column: str) -> int:
    """Position of a column's (or a world's) world in the table: the lab's first, as always."""
    world = column.split(":")[0]
    return ("lab", "field").index(world) if world in ("lab", "field") else 2


def _read_readme_table(block: str) -> tuple[dict[str, str], list[str], dict[str, dict[str, str]]]:
    """The commands (by world), columns and rows (measure -> column -> cell) of a table
    :func:`_write_readme_table` wrote; a single "Written by" line applies to every world."""
    commands: dict[str, str] = {}
    columns: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    single = None
    for line in block.splitlines():
        per_world = re.match(r"^\* `(\w+)` columns: written by `([^`]+)`", line)
        if per_world:
            commands[per_world.group(1)] = per_world.group(2)
        elif (whole := re.match(r"^Written by `([^`]+)`", line)):
            single = whole.group(1)
        elif line.startswith("| measure |"):
            columns = [c.strip() for c in line.strip().strip("|").split("|")][1:]
        elif line.startswith("| ") and columns:
            values = [c.strip() for c in line.strip().strip("|").split("|")]
            if values[0] != "---":  # the rule under the header
                rows[values[0]] = dict(zip(columns, values[1:], strict=False))
    if single is not None:
        for column in columns:
            commands.setdefault(column.split(":")[0], single)
    return commands, columns, rows
