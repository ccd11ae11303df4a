"""Who runs a training or a detection that the API was asked to enqueue.

Two dispatchers share one small interface (:class:`JobDispatcher`):

* :class:`CeleryDispatcher` (production): sends ``train_anomaly_detector`` /
  ``detect_anomalies`` to the broker, exactly as Beat does; the task id is Celery's.
* :class:`InProcessDispatcher` (embedded mode): runs the same job functions
  (:func:`~adsentinel.training.service.train_account_models`,
  :func:`~adsentinel.detection.service.detect_in_chunks`) one at a time in a background thread of
  the API process, on the API's own database. Meant for ``adsentinel serve`` on the embedded
  SQLite default, where no broker or worker exists; its task states live in memory (lost on
  restart).

:func:`choose_dispatcher` picks one for ``adsentinel serve --jobs auto``: in-process on SQLite
(workers could not share a local file anyway), Celery when the broker answers, otherwise
in-process with a warning.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings
from adsentinel.errors import AdsentinelError, StorageError
from adsentinel.jsonable import json_ready

log = logging.getLogger(__name__)

JobKind = Literal["training", "detection"]
_KEPT_STATES = 1000  # the in-process dispatcher remembers this many finished tasks


class JobAlreadyQueued(AdsentinelError):
    """The same job of the same account is already waiting its turn (the API answers 409)."""


@dataclass
class TaskState:
    """What is known of an enqueued task."""

    state: str
    account_id: int | None = None  # None: not known (a Celery task still pending)
    result: dict[str, Any] | None = None
    error: str | None = None


class JobDispatcher(Protocol):
    """Enqueues an account's training or detection and reports on it."""

    name: str

    def enqueue(self, kind: JobKind, account_id: int) -> str:
        """Queue the job; return its task id. Raises :class:`StorageError` if it cannot."""

    def state(self, task_id: str) -> TaskState | None:
        """What became of ``task_id``; ``None`` when unknown."""

    def close(self) -> None:
        """Stop accepting work; queued jobs are dropped, a running one finishes."""


class CeleryDispatcher:
    """Sends the jobs to Celery workers through the broker of ``settings``.

    The tasks are sent by name (``adsentinel.train_anomaly_detector`` /
    ``adsentinel.detect_anomalies``, routed to the ``training`` / ``detection`` queues), exactly
    what ``train_anomaly_detector.delay(account_id)`` sends, but on a Celery app built from the
    API's own settings rather than the process environment.
    """

    name = "celery"
    TASKS: ClassVar[dict[str, str]] = {"training": "adsentinel.train_anomaly_detector",
                                       "detection": "adsentinel.detect_anomalies"}

    def __init__(self, settings: Settings) -> None:
        from adsentinel.worker.app import create_celery_app

        quick = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
        # Sending needs no result backend: with one, Celery would subscribe this process to
        # every task's result channel (and keep the subscriptions, since nobody waits here).
        self._sender = create_celery_app(settings)
        self._sender.conf.result_backend = None
        self._sender.conf.broker_connection_timeout = 3
        self._reader = create_celery_app(settings)
        self._reader.conf.result_backend_transport_options = {
            **self._reader.conf.result_backend_transport_options, "retry_policy": quick}
        self._settings = settings
        self._quick = quick

    def enqueue(self, kind: JobKind, account_id: int) -> str:
        if not broker_reachable(self._settings, timeout=2.0):
            raise StorageError(f"cannot send the {kind} task: the broker at "
                               f"{self._settings.masked()['broker_url']} does not answer",
                               hint="check ADSENTINEL_BROKER_URL and that Redis is running")
        try:
            result = self._sender.send_task(self.TASKS[kind], args=[account_id],
                                            retry_policy=self._quick)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds of connection errors
            raise StorageError(f"cannot send the {kind} task to the broker: {exc}",
                               hint="check ADSENTINEL_BROKER_URL and that Redis is running"
                               ) from None
        log.info("%s of account %s sent to Celery as %s", kind, account_id, result.id)
        return result.id

    def state(self, task_id: str) -> TaskState | None:
        try:
            result = self._reader.AsyncResult(task_id)
            state = result.state
            payload = result.result if state == "SUCCESS" and isinstance(result.result, dict) \
                else None
            error = str(result.result) if state == "FAILURE" else None
        except Exception as exc:  # noqa: BLE001 - backend unreachable
            raise StorageError(f"cannot read the task state from the broker: {exc}",
                               hint="check ADSENTINEL_BROKER_URL and that Redis is running"
                               ) from None
        account_id = payload.get("account_id") if payload else None
        return TaskState(state.lower(), account_id if isinstance(account_id, int) else None,
                         payload, error)

    def close(self) -> None:
        self._sender.close()
        self._reader.close()


@dataclass
class InProcessDispatcher:
    """Runs jobs one after the other in a background thread of this process."""

    settings: Settings
    session_factory: sessionmaker[Session]
    name: str = "in-process"
    _executor: ThreadPoolExecutor = field(init=False)
    _states: OrderedDict[str, TaskState] = field(init=False, default_factory=OrderedDict)
    _queued: dict[tuple[JobKind, int], str] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # one worker: two trainings of the same account must never overlap, and SQLite has a
        # single writer anyway
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adsentinel-job")

    def enqueue(self, kind: JobKind, account_id: int) -> str:
        """Queue the job; :class:`JobAlreadyQueued` when the same one of the account still
        waits (one running and one queued at most: the queued one will see every change)."""
        task_id = str(uuid.uuid4())
        with self._lock:
            waiting = self._queued.get((kind, account_id))
            if waiting is not None:
                raise JobAlreadyQueued(f"a {kind} of account {account_id} is already queued as "
                                       f"task {waiting}",
                                       hint=f"follow it at /api/v1/tasks/{waiting}")
            self._queued[(kind, account_id)] = task_id
            self._states[task_id] = TaskState("queued", account_id)
            while len(self._states) > _KEPT_STATES:
                self._states.popitem(last=False)
        self._executor.submit(self._run, task_id, kind, account_id)
        log.info("%s of account %s queued in process as %s", kind, account_id, task_id)
        return task_id

    def _run(self, task_id: str, kind: JobKind, account_id: int) -> None:
        from adsentinel.detection.service import detect_in_chunks, retrain_refused
        from adsentinel.training.service import train_account_models

        with self._lock:
            self._queued.pop((kind, account_id), None)
            self._states[task_id] = TaskState("running", account_id)
        try:
            if kind == "training":
                result = train_account_models(session_factory=self.session_factory,
                                              settings=self.settings, account_id=account_id)
            else:
                detection = detect_in_chunks(session_factory=self.session_factory,
                                             settings=self.settings, account_id=account_id)
                result = detection.summary()
                retrained = retrain_refused(session_factory=self.session_factory,
                                            settings=self.settings, detection=detection)
                if retrained is not None:
                    result = {**result, "retrained": retrained}
        except Exception as exc:  # a failed job is recorded, the thread goes on
            log.exception("%s of account %s failed", kind, account_id)
            self._set(task_id, TaskState("failed", account_id,
                                         error=f"{type(exc).__name__}: {exc}"))
            return
        self._set(task_id, TaskState("succeeded", account_id, result=json_ready(result)))

    def _set(self, task_id: str, state: TaskState) -> None:
        with self._lock:
            self._states[task_id] = state

    def state(self, task_id: str) -> TaskState | None:
        with self._lock:
            return self._states.get(task_id)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)  # the running job ends cleanly


def broker_reachable(settings: Settings, timeout: float = 1.0) -> bool:
    """True when the configured Redis broker answers a PING within ``timeout`` seconds."""
    import redis

    try:
        client = redis.Redis.from_url(settings.broker_url.get_secret_value(),
                                      socket_connect_timeout=timeout, socket_timeout=timeout)
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def choose_dispatcher(mode: str, *, settings: Settings,
                      session_factory: sessionmaker[Session]) -> JobDispatcher:
    """The dispatcher for ``mode`` (``auto``, ``celery`` or ``in-process``)."""
    if mode == "celery":
        return CeleryDispatcher(settings)
    if mode == "in-process":
        return InProcessDispatcher(settings, session_factory)
    if mode != "auto":
        raise ValueError(f"mode must be auto, celery or in-process, got {mode!r}")
    if settings.effective_database_url.startswith("sqlite"):
        return InProcessDispatcher(settings, session_factory)
    if broker_reachable(settings):
        return CeleryDispatcher(settings)
    log.warning("the broker at %s does not answer: trainings and detections asked through the "
                "API will run inside this process", settings.masked()["broker_url"])
    return InProcessDispatcher(settings, session_factory)


__all__ = ["CeleryDispatcher", "InProcessDispatcher", "JobAlreadyQueued", "JobDispatcher",
           "TaskState",
           "broker_reachable", "choose_dispatcher"]
