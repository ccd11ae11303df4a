"""What a Celery worker tells about itself: log records tagged with the task, and Prometheus
metrics.

Logging: Celery's ``setup_logging`` signal hands logging to :mod:`adsentinel.logging_setup`
(``ADSENTINEL_LOG_FORMAT``), for ``adsentinel worker|beat`` and ``celery -A adsentinel.worker``
alike. Every record a task logs carries ``task`` (its name), ``run_id`` (the Celery task id) and
``account`` (the task's ``config_id``, when it has one).

Metrics, in Celery's usual way for a prefork pool (prometheus-client's multiprocess mode): the
tasks run in child processes, each writes its figures to files in ``PROMETHEUS_MULTIPROC_DIR``,
and the worker's main process serves all of them together on ``ADSENTINEL_WORKER_METRICS_PORT``
(``adsentinel worker --metrics-port P``). Run one worker per machine with its own port, or give
each worker on a machine a port of its own, and scrape them all.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from typing import Any

from celery import signals

from adsentinel.logging_setup import bind_log_context, configure_from_settings, reset_log_context

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: task start times and log-context tokens of this process, by task id
_started: dict[str, tuple[float, Any]] = {}


@signals.setup_logging.connect
def _adsentinel_logging(**_kwargs: Any) -> None:
    """Celery leaves logging alone once someone handles this signal."""
    from adsentinel.config import load_settings

    configure_from_settings(load_settings())


def account_of_task(task: Any, args: tuple, kwargs: dict) -> int | None:
    """The ``config_id`` a task was called with, or ``None`` when it takes none."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return None
    value = bound.arguments.get("config_id")
    return value if isinstance(value, int) else None


@signals.task_prerun.connect
def _task_started(task_id: str, task: Any, args: tuple = (), kwargs: dict | None = None,
                  **_extra: Any) -> None:
    token = bind_log_context(task=task.name, run_id=task_id,
                             account=account_of_task(task, args, kwargs or {}))
    _started[task_id] = (time.monotonic(), token)


@signals.task_postrun.connect
def _task_finished(task_id: str, task: Any, args: tuple = (), kwargs: dict | None = None,
                   retval: Any = None, state: str | None = None, **_extra: Any) -> None:
    started, token = _started.pop(task_id, (None, None))
    try:
        if started is not None and metrics_enabled():
            from adsentinel.worker import worker_metrics

            worker_metrics.record_task(
                task=task.name, state=state or "UNKNOWN", seconds=time.monotonic() - started,
                account=account_of_task(task, args, kwargs or {}), result=retval)
    finally:
        if token is not None:
            reset_log_context(token)


def metrics_enabled() -> bool:
    """True in a worker started with a metrics port (multiprocess mode is on)."""
    return bool(os.environ.get(MULTIPROC_ENV))


@signals.worker_process_shutdown.connect
def _child_gone(pid: int | None = None, **_kwargs: Any) -> None:
    """A pool process exits: its live gauges stop counting (its counters are kept)."""
    if metrics_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


@signals.worker_init.connect
def _serve_metrics(**_kwargs: Any) -> None:
    """In the worker's main process, before the pool starts: serve the pool's metrics."""
    from adsentinel.config import load_settings

    port = load_settings().worker_metrics_port
    if not port:
        return
    if not metrics_enabled():
        log.error("ADSENTINEL_WORKER_METRICS_PORT is set but %s is not: no worker metrics "
                  "(`adsentinel worker` sets it; with `celery -A adsentinel.worker worker` set "
                  "it to an empty folder)", MULTIPROC_ENV)
        return
    from adsentinel.worker.worker_metrics import serve_worker_metrics

    serve_worker_metrics(port)
    log.info("worker metrics on port %d (multiprocess folder %s)", port,
             os.environ[MULTIPROC_ENV])


def prepare_worker_metrics(port: int) -> str:
    """Before the worker app is imported: turn on the multiprocess mode and the metrics port.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied of the figures of a previous run, as
    prometheus-client requires) or a fresh temporary folder. Returns the folder. Raises
    :class:`~adsentinel.errors.ConfigError` when ``port`` is already taken.
    """
    import socket
    import tempfile
    from pathlib import Path

    from adsentinel.errors import ConfigError

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            raise ConfigError(f"the worker metrics port {port} is not free: "
                              f"{exc.strerror or exc}",
                              hint="give each worker on a machine its own --metrics-port") from None
    folder = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="adsentinel-metrics-")
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = folder
    os.environ["ADSENTINEL_WORKER_METRICS_PORT"] = str(port)
    return folder
