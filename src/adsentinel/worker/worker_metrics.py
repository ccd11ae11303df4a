"""The Prometheus metrics of a Celery worker, and the server that exposes them.

Imported only once ``PROMETHEUS_MULTIPROC_DIR`` is set (see :mod:`.observability`): every pool
process writes its figures there and the main process serves their sum.

* ``adsentinel_worker_tasks_total{task,state}``: finished tasks (SUCCESS, FAILURE, RETRY, ...);
* ``adsentinel_worker_task_duration_seconds{task}``: how long they ran;
* ``adsentinel_worker_task_last_success_timestamp_seconds{task,account}``;
* ``adsentinel_worker_anomalies_stored_total{account,severity}``: anomalies a detection stored;
* ``adsentinel_worker_model_files_refused_total{account}``: damaged, tampered or foreign model
  files that detection refused (statistical detection only until retrained);
* ``adsentinel_worker_alerts_total{outcome}``: deliveries sent, retrying, failed, held;
* ``adsentinel_worker_graph_api_usage_percent{account,budget}``: the highest share of each of
  Meta's rate-limit budgets during the account's latest sync on this worker (the API server's
  ``adsentinel_graph_api_usage_percent`` says the same from the database, whoever synced).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: the worker's own registry (never the server's default one); in multiprocess mode the
#: figures go to files whatever the registry, and :func:`serve_worker_metrics` reads those
WORKER_REGISTRY = CollectorRegistry()
TASKS = Counter("adsentinel_worker_tasks", "Celery tasks finished, by task and final state.",
                ["task", "state"], registry=WORKER_REGISTRY)
TASK_SECONDS = Histogram("adsentinel_worker_task_duration_seconds",
                         "Run time of Celery tasks.", ["task"],
                         buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600),
                         registry=WORKER_REGISTRY)
LAST_SUCCESS = Gauge("adsentinel_worker_task_last_success_timestamp_seconds",
                     "When a task last succeeded, by task and account (Unix time).",
                     ["task", "account"], multiprocess_mode="max", registry=WORKER_REGISTRY)
ANOMALIES = Counter("adsentinel_worker_anomalies_stored",
                    "Anomalies stored by detection tasks.", ["account", "severity"],
                    registry=WORKER_REGISTRY)
REFUSED = Counter("adsentinel_worker_model_files_refused",
                  "Model files detection refused (damaged, tampered with, foreign).", ["account"],
                  registry=WORKER_REGISTRY)
ALERTS = Counter("adsentinel_worker_alerts", "Alert deliveries by outcome.", ["outcome"],
                 registry=WORKER_REGISTRY)
GRAPH_API_USAGE = Gauge("adsentinel_worker_graph_api_usage_percent",
                        "Highest share of a Meta rate-limit budget during the latest sync.",
                        ["account", "budget"], multiprocess_mode="mostrecent",
                        registry=WORKER_REGISTRY)

_ALERT_OUTCOMES = ("sent", "retrying", "failed", "held")


def record_task(*, task: str, state: str, seconds: float, account: int | None,
                result: Any) -> None:
    """Count one finished task, and what its result says it did."""
    TASKS.labels(task=task, state=state).inc()
    TASK_SECONDS.labels(task=task).observe(seconds)
    if state != "SUCCESS" or not isinstance(result, dict):
        return
    label = "" if account is None else str(account)
    LAST_SUCCESS.labels(task=task, account=label).set(time.time())
    for severity, count in (result.get("by_severity") or {}).items():
        ANOMALIES.labels(account=label, severity=severity).inc(count)
    if result.get("refused_models"):
        REFUSED.labels(account=label).inc(result["refused_models"])
    for budget, percent in (result.get("api_usage_percent") or {}).items():
        GRAPH_API_USAGE.labels(account=label, budget=budget).set(percent)
    for outcome in _ALERT_OUTCOMES:
        if isinstance(result.get(outcome), int) and result[outcome]:
            ALERTS.labels(outcome=outcome).inc(result[outcome])


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve the sum of every process's metrics on ``host:port`` (a daemon thread)."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
