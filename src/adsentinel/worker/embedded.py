"""Embedded mode: the same schedule and the same job functions in one process, no broker.

For a single machine on the embedded default (SQLite + local model folder): ``adsentinel run``
trains at the configured time every day and, every hour, syncs each Meta account and detects,
exactly the jobs the Celery tasks run, account after account.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings
from adsentinel.logging_setup import log_context

log = logging.getLogger(__name__)

NextRun = Callable[[datetime], datetime]


def daily_at(at: time, zone: ZoneInfo) -> NextRun:
    """``at`` o'clock every day in ``zone`` (the Beat crontab of the training)."""

    def next_run(now: datetime) -> datetime:
        local = now.astimezone(zone)
        candidate = datetime.combine(local.date(), at, tzinfo=zone)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
        return candidate.astimezone(UTC)

    return next_run


def hourly_at(minute: int) -> NextRun:
    """Minute ``minute`` of every hour."""

    def next_run(now: datetime) -> datetime:
        candidate = now.astimezone(UTC).replace(minute=minute, second=0, microsecond=0)
        return candidate if candidate > now else candidate + timedelta(hours=1)

    return next_run


def every(seconds: float) -> NextRun:
    """Every ``seconds`` (for tests and short demos)."""
    return lambda now: now + timedelta(seconds=seconds)


@dataclass
class Job:
    """A named job and when it runs next."""

    name: str
    next_run: NextRun
    run: Callable[[], dict]
    due: datetime | None = None
    runs: int = 0
    last_result: dict | None = field(default=None)


def scheduled_jobs(*, settings: Settings, session_factory: sessionmaker[Session],
                   training: NextRun | None = None, detection: NextRun | None = None) -> list[Job]:
    """The production schedule (or the given one) over every active account."""
    from adsentinel.scope import active_account_ids
    from adsentinel.training.service import train_account_models

    def for_every_account(run: Callable[..., dict]) -> Callable[[], dict]:
        def run_all() -> dict:
            results = {}
            for account_id in active_account_ids(session_factory=session_factory):
                with log_context(account=account_id):  # every log line says whose it is
                    results[account_id] = _safely(partial(
                        run, session_factory=session_factory, settings=settings,
                        account_id=account_id))
            return results
        return run_all

    train_all = for_every_account(train_account_models)
    detect_all = for_every_account(sync_then_detect)

    from adsentinel.alerts import service as alerting
    from adsentinel.worker.schedule import ALERT_DELIVERY_SECONDS, ALERT_DIGEST_CHECK_MINUTES

    def deliver() -> dict:
        return _safely(lambda: alerting.deliver_alerts(session_factory=session_factory,
                                                       settings=settings))

    def digests() -> dict:
        return _safely(lambda: alerting.send_digests(session_factory=session_factory,
                                                     settings=settings))

    return [
        Job("training", training or daily_at(settings.training_time, settings.zone), train_all),
        Job("detection", detection or hourly_at(settings.detection_minute), detect_all),
        Job("alerts", every(ALERT_DELIVERY_SECONDS), deliver),
        Job("digests", every(60.0 * ALERT_DIGEST_CHECK_MINUTES), digests),
    ]


def sync_then_detect(*, session_factory: sessionmaker[Session], settings: Settings,
                     account_id: int) -> dict:
    """The hourly job of one account: sync it from Meta when it can be (CSV accounts cannot),
    then detect. A failed sync is reported under ``"sync"`` and detection runs anyway."""
    from adsentinel.detection.service import detect_in_chunks, retrain_refused
    from adsentinel.sync.service import sync_before_detection

    synced = _safely(lambda: sync_before_detection(
        session_factory=session_factory, settings=settings, account_id=account_id) or {})
    detection = detect_in_chunks(session_factory=session_factory, settings=settings,
                                 account_id=account_id)
    result = detection.summary()
    # detection is done and stored: a retraining that fails (the store unwritable) is reported
    # beside it, not instead of it
    retrained = _safely(lambda: retrain_refused(
        session_factory=session_factory, settings=settings, detection=detection) or {})
    if retrained:
        result = {**result, "retrained": retrained}
    return {**result, "sync": synced} if synced else result


def _safely(call: Callable[[], dict]) -> dict:
    """One account's failure is logged and does not stop the others."""
    try:
        return call()
    except Exception as exc:  # reported, the loop goes on
        log.exception("job failed")
        return {"error": f"{type(exc).__name__}: {exc}"}


def _due(job: Job) -> datetime:
    assert job.due is not None, "run_schedule sets every job's due time before its loop"
    return job.due


def run_schedule(jobs: list[Job], *, stop: threading.Event, run_first: bool = False,
                 max_runs: int | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Run ``jobs`` when due until ``stop`` is set (or ``max_runs`` job runs happened).

    ``run_first`` runs every job once at start, in order (training before detection).
    """
    now = clock()
    for job in jobs:
        job.due = now if run_first else job.next_run(now)
        log.info("%s: next run at %s", job.name, job.due.isoformat(timespec="seconds"))
    total = 0
    while not stop.is_set() and (max_runs is None or total < max_runs):
        job = min(jobs, key=_due)
        wait = (_due(job) - clock()).total_seconds()
        if wait > 0 and stop.wait(wait):
            break
        log.info("running %s", job.name)
        with log_context(task=f"adsentinel.{job.name}", run_id=uuid.uuid4().hex):
            job.last_result = job.run()
        job.runs += 1
        total += 1
        job.due = job.next_run(max(clock(), _due(job)))
        log.info("%s done; next run at %s", job.name, job.due.isoformat(timespec="seconds"))
