"""A real Celery worker (`adsentinel worker --metrics-port`) on PostgreSQL and Redis: its task
log lines are JSON carrying the task, run id and account, and Prometheus scrapes the figures of
its pool processes from the port (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from ops_world import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_grafana import METRIC, dashboard_queries

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from factories import small_account

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_for_port(port: int, worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert worker.poll() is None, log.read_text()
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"no metrics on port {port}:\n{log.read_text()}")


def test_worker_logs_json_with_task_context_and_serves_pool_metrics(
        fresh_postgres_url, redis_url, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ADSENTINEL_", "PROMETHEUS_"))}
    env.update(ADSENTINEL_DATABASE_URL=fresh_postgres_url, ADSENTINEL_BROKER_URL=redis_url,
               ADSENTINEL_DATA_DIR=str(tmp_path / "data"),
               ADSENTINEL_MODEL_SIGNING_KEY="ops-test-signing-key-0123456789abcdef",
               ADSENTINEL_LOG_FORMAT="json", ADSENTINEL_WORKER_METRICS_PORT=str(port))
    settings = load_settings(**{k.removeprefix("ADSENTINEL_").lower(): v
                                for k, v in env.items() if k.startswith("ADSENTINEL_")})
    account = small_account(make_session_factory(open_database(settings)))["account"]

    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "adsentinel", "worker", "-Q", "detection",
             "--concurrency", "2", "-n", f"ops@{uuid.uuid4().hex[:6]}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, worker, log)
        from adsentinel.worker.app import create_celery_app

        celery = create_celery_app(settings)
        task_ids = []
        for _ in range(2):
            result = celery.send_task("adsentinel.detect_anomalies", args=[account],
                                      queue="detection")
            result.get(timeout=120)
            task_ids.append(result.id)
        samples = scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    task = "adsentinel.detect_anomalies"
    assert samples[("adsentinel_worker_tasks_total",
                    (("state", "SUCCESS"), ("task", task)))] == 2
    assert samples[("adsentinel_worker_task_duration_seconds_count", (("task", task),))] == 2
    last = samples[("adsentinel_worker_task_last_success_timestamp_seconds",
                    (("account", str(account)), ("task", task)))]
    assert time.time() - 300 < last <= time.time()
    worker_names = {name for name, _ in samples}
    for name in {n for q in dashboard_queries() for n in METRIC.findall(q)
                 if n.startswith("adsentinel_worker_")}:
        if name != "adsentinel_worker_model_files_refused_total":  # none refused here
            assert name in worker_names or name.startswith(("adsentinel_worker_alerts",
                                                            "adsentinel_worker_anomalies")), name

    records = [json.loads(line) for line in log.read_text().splitlines()
               if line.startswith("{")]
    assert records, log.read_text()
    in_tasks = [r for r in records if r.get("task") == task]
    assert {r["run_id"] for r in in_tasks} == set(task_ids), log.read_text()[-3000:]
    assert all(r["account"] == account for r in in_tasks)
    # Celery prints its shutdown notice itself, bypassing logging: the one exception
    other = [line for line in log.read_text().splitlines()
             if line.strip() and not line.startswith("{") and "shutdown (MainProcess)" not in line]
    assert not other, f"lines that are not JSON: {other[:5]}"
