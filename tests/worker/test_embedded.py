"""Embedded mode: one process, no broker, training then detection on a given schedule."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from worker_support import import_demo_account

from adsentinel.db.models import Anomaly, TrainingRun
from adsentinel.worker.embedded import every, run_schedule, scheduled_jobs


def test_embedded_scheduler_trains_then_detects_on_sqlite(settings, tmp_path):
    factory, account_id = import_demo_account(settings, tmp_path)
    jobs = scheduled_jobs(settings=settings, session_factory=factory,
                          training=every(3600), detection=every(0.1))
    # at start: training, detection, alert delivery, digests; then detection again
    run_schedule(jobs, stop=threading.Event(), run_first=True, max_runs=5)

    training, detection, alerts, digests = jobs
    assert (training.runs, detection.runs, alerts.runs, digests.runs) == (1, 2, 1, 1)
    assert set(alerts.last_result) == {"sent", "retrying", "failed", "held"}
    assert "error" not in training.last_result[account_id]
    assert detection.last_result[account_id]["anomalies"] > 0
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(TrainingRun)
                              .where(TrainingRun.status == "succeeded")) == 1
        stored = session.scalar(select(func.count()).select_from(Anomaly))
    assert stored >= detection.last_result[account_id]["anomalies"] > 0
    model_root = settings.effective_models_path / "anomaly_detector" / f"config_{account_id}"
    assert (model_root / "metadata.json").exists()


def test_one_failing_account_does_not_stop_the_others(settings, tmp_path):
    factory, account_id = import_demo_account(settings, tmp_path)
    broken = settings.model_copy(update={"models_storage_path": tmp_path / "file-not-folder"})
    (tmp_path / "file-not-folder").write_text("not a folder")
    jobs = scheduled_jobs(settings=broken, session_factory=factory,
                          training=every(3600), detection=every(3600))
    run_schedule(jobs, stop=threading.Event(), run_first=True, max_runs=2)
    training, detection, *_ = jobs
    assert "error" in training.last_result[account_id]
    assert detection.last_result[account_id]["anomalies"] >= 0  # detection still ran
