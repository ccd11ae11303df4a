"""Helpers of the worker tests: a deployment of real worker processes, demo data, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from adsentinel.config import Settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.evaluation.dataset_files import write_dataset
from adsentinel.evaluation.lab_world import generate_dataset, preset_config
from adsentinel.ingest.csv_import import import_insights_csv


@dataclass
class Deployment:
    """A production-like deployment: PostgreSQL, Redis broker, shared model folder."""

    env: dict[str, str]
    settings: Settings
    tmp: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        log = open(self.tmp / f"worker-{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "adsentinel", "worker", "-Q", "training,detection",
             "--concurrency", str(concurrency), "-n", f"{name}@{uuid.uuid4().hex[:6]}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()  # warm shutdown: the main process lets tasks finish
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.tmp.glob("worker-*.log"))

    def celery(self):
        from adsentinel.worker.app import create_celery_app

        return create_celery_app(self.settings)


def import_demo_account(settings: Settings, tmp: Path, *, ads: int = 20, days: int = 90,
                        seed: int = 3) -> tuple:
    """Import one synthetic account; returns (session_factory, account id)."""
    from sqlalchemy import select

    from adsentinel.db.models import AdAccount

    dataset = generate_dataset(preset_config("demo", seed=seed, accounts=1, ads_per_account=ads,
                                             days=days, end_date=date(2026, 11, 20)))
    files = write_dataset(dataset, tmp / f"gen{seed}")
    engine = open_database(settings)
    import_insights_csv(files.insights, engine=engine)
    factory = make_session_factory(engine)
    with factory() as session:
        account_id = session.scalars(select(AdAccount.id)).one()
    return factory, account_id


def wait_for(condition, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message}")
