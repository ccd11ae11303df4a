"""The three CSV files of a labelled dataset of either world: ``insights.csv`` (the import
format), ``labels.csv`` and ``events.csv``, written whole or not at all.

``adsentinel generate``, the demo and the tests read them back; their columns are the lab
world's ``INSIGHT_COLUMNS``, ``LABEL_COLUMNS`` and ``EVENT_COLUMNS``
(:mod:`adsentinel.evaluation.lab_world`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adsentinel.errors import ConfigError
from adsentinel.evaluation.lab_world import INSIGHT_COLUMNS, SyntheticDataset

INSIGHTS_FILE = "insights.csv"
LABELS_FILE = "labels.csv"
EVENTS_FILE = "events.csv"


@dataclass(frozen=True)
class WrittenFiles:
    """Paths of the files :func:`write_dataset` wrote."""

    insights: Path
    labels: Path
    events: Path


def write_dataset(dataset: SyntheticDataset, out_dir: str | os.PathLike[str]) -> WrittenFiles:
    """Write ``insights.csv``, ``labels.csv`` and ``events.csv`` into ``out_dir``.

    Each file is written to a temporary name in ``out_dir`` and renamed over the target only
    when all three are complete, so a failure never leaves a half-written CSV.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    if not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder")
    targets = WrittenFiles(out / INSIGHTS_FILE, out / LABELS_FILE, out / EVENTS_FILE)
    writers = ((_write_insights_csv, dataset.insights, targets.insights),
               (_write_table_csv, dataset.labels, targets.labels),
               (_write_table_csv, dataset.events, targets.events))
    temporaries: list[tuple[Path, Path]] = []
    try:
        for write, frame, target in writers:
            temporary = out / f".{target.name}.{os.getpid()}.tmp"
            temporaries.append((temporary, target))
            with open(temporary, "w", encoding="utf-8", newline="") as stream:
                write(frame, stream)
        for temporary, target in temporaries:
            os.replace(temporary, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the dataset into {out}: {exc.strerror or exc}") from None
    finally:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
    return targets


def _write_table_csv(frame: pd.DataFrame, stream) -> None:
    """A small table as CSV, booleans as ``true`` / ``false``."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == bool:
            out[column] = np.where(out[column], "true", "false")
    out.to_csv(stream, index=False, lineterminator="\n")


def _write_insights_csv(frame: pd.DataFrame, stream, chunk_rows: int = 200_000) -> None:
    """The insights rows as CSV, the same bytes as ``to_csv(float_format="%.2f")``, 3x faster.

    The nine account-to-ad columns are fixed per ad, so each ad's part of the line is formatted
    once; spend is written from integer cents, so it always has exactly two decimals.
    """
    stream.write(",".join(INSIGHT_COLUMNS) + "\n")
    if frame.empty:
        return
    entity_columns = list(INSIGHT_COLUMNS[1:10])
    codes, uniques = pd.factorize(frame["ad_id"])
    first_row = np.zeros(len(uniques), dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    entity_part = np.array(
        [",".join(_csv_field(value) for value in row)
         for row in frame.iloc[first_row][entity_columns].itertuples(index=False)],
        dtype=object)
    dates = frame["date"].to_numpy(dtype=object)
    spend = frame["spend"].to_numpy(dtype=float)
    counts = [frame[name].to_numpy() for name in ("impressions", "clicks", "leads", "reach")]
    for first in range(0, len(frame), chunk_rows):
        part = slice(first, first + chunk_rows)
        cents = np.round(spend[part] * 100.0).astype(np.int64).tolist()
        rows = zip(dates[part].tolist(), entity_part[codes[part]].tolist(), cents,
                   *(values[part].tolist() for values in counts), strict=True)
        stream.write("".join(
            f"{day},{entity},{c // 100}.{c % 100:02d},{imp},{clk},{lead},{rch}\n"
            for day, entity, c, imp, clk, lead, rch in rows))


def _csv_field(value: object) -> str:
    """One CSV field, quoted only when needed (as the csv module's QUOTE_MINIMAL)."""
    text = str(value)
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
