"""The demo: synthetic accounts generated, imported, trained, examined and reported on the
configured store (the embedded SQLite default unless told otherwise)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adsentinel.config import Settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import Anomaly
from adsentinel.detection.account import detect_account
from adsentinel.detection.service import model_loader_or_none
from adsentinel.evaluation.dataset_files import write_dataset
from adsentinel.evaluation.lab_world import generate_dataset, preset_config, summarize
from adsentinel.i18n import language
from adsentinel.ingest.csv_import import ImportSummary, import_insights_csv
from adsentinel.scope import active_account_ids
from adsentinel.service.report import build_report, report_path, write_report
from adsentinel.training.service import train_account_models

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo produced: the files, the import, the models, the anomalies, the report."""

    data_folder: Path
    insights_csv: Path
    labels_csv: Path
    dataset_summary: dict
    import_summary: ImportSummary
    training: list[dict]
    anomalies: list[Anomaly]
    report: Path
    ongoing_incidents: list[dict]


def run_demo(*, settings: Settings, seed: int = 42, end_date: dt.date | None = None,
             on_bytes: Callable[[int], None] | None = None) -> DemoResult:
    """Generate the ``demo`` preset ending yesterday (UTC), import it, train the per-entity
    models, detect, and write the HTML report of the top anomalies.

    Running it again re-imports the same rows and re-detects the same days: nothing is
    duplicated.
    """
    end = end_date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    dataset = generate_dataset(preset_config("demo", seed=seed, end_date=end))
    folder = settings.data_dir / "demo"
    files = write_dataset(dataset, folder)
    log.info("demo data written to %s", folder)
    engine = open_database(settings)
    try:
        imported = import_insights_csv(files.insights, engine=engine, on_bytes=on_bytes)
        session_factory = make_session_factory(engine)
        account_ids = active_account_ids(session_factory=session_factory)
        training = [train_account_models(session_factory=session_factory, settings=settings,
                                 account_id=account_id) for account_id in account_ids]
        anomalies = []
        for account_id in account_ids:
            anomalies.extend(detect_account(
                session_factory=session_factory, settings=settings, account_id=account_id,
                model_loader=model_loader_or_none(settings, account_id)))
        report = write_report(session_factory=session_factory, path=report_path(settings.data_dir),
                              report=build_report(session_factory=session_factory),
                              lang=language(settings.locale), public_url=settings.public_url)
    finally:
        engine.dispose()
    labels = dataset.labels
    ongoing = labels[labels["end_date"] >= (end - dt.timedelta(days=1)).isoformat()]
    return DemoResult(folder, files.insights, files.labels, summarize(dataset), imported,
                      training, sorted(anomalies, key=lambda a: -a.score), report,
                      ongoing.to_dict("records"))
