"""The demo: a synthetic account generated, imported and examined on the configured store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adsentinel.config import Settings
from adsentinel.db.engine import open_database
from adsentinel.ingest.csv_import import ImportSummary, import_insights_csv
from adsentinel.ingest.synthetic import generate_dataset, preset_config, summarize, write_dataset

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo produced: the generated files, the import, the labelled truth."""

    data_folder: Path
    insights_csv: Path
    labels_csv: Path
    dataset_summary: dict
    import_summary: ImportSummary


def run_demo(*, settings: Settings, seed: int = 42, end_date: dt.date | None = None,
             on_bytes: Callable[[int], None] | None = None) -> DemoResult:
    """Generate the ``demo`` preset ending yesterday (UTC) and import it.

    Running it again re-imports the same rows: nothing is duplicated, unchanged days stay as
    they were.
    """
    end = end_date or (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
    dataset = generate_dataset(preset_config("demo", seed=seed, end_date=end))
    folder = settings.data_dir / "demo"
    files = write_dataset(dataset, folder)
    log.info("demo data written to %s", folder)
    engine = open_database(settings)
    try:
        imported = import_insights_csv(files.insights, engine=engine, on_bytes=on_bytes)
    finally:
        engine.dispose()
    return DemoResult(folder, files.insights, files.labels, summarize(dataset), imported)
