"""Celery tasks: ids in, one call into a service (:mod:`adsentinel.detection.service`,
:mod:`adsentinel.training.service`), a small dict out.

Every task is idempotent (training is deterministic per entity, anomalies are upserted), holds a
per-account lock so two runs of the same account never overlap, and is retried (with backoff)
rather than run twice when the lock is held. A database or broker briefly away is ridden out
inside the task (:mod:`adsentinel.worker.transient`) before Celery's own retry is used.
"""

from __future__ import annotations

import logging

import redis
from celery import chord, group

from adsentinel.worker.app import celery_app
from adsentinel.worker.locks import account_lock
from adsentinel.worker.runtime import get_runtime
from adsentinel.worker.transient import TRANSIENT_ERRORS, ride_out

log = logging.getLogger(__name__)

LOCK_MAX_RETRIES = 240  # with the default 30 s between tries: about two hours


class AccountBusy(Exception):
    """Another run holds this account's lock."""


def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_runtime().settings.broker_url.get_secret_value())


def _part_name(campaign_ids: list[int] | None) -> str | None:
    return None if not campaign_ids else f"c{min(campaign_ids)}-{max(campaign_ids)}"


def _locked(task, kind: str, account_id: int, campaign_ids, work):
    runtime = get_runtime()
    with account_lock(_redis(), kind, account_id, _part_name(campaign_ids),
                      ttl=runtime.settings.task_time_limit) as acquired:
        if not acquired:
            wait = runtime.settings.lock_retry_seconds
            log.info("%s of account %s is already running; retrying in %ss", kind, account_id,
                     wait)
            raise task.retry(exc=AccountBusy(f"{kind} of account {account_id} is running"),
                             countdown=wait, max_retries=LOCK_MAX_RETRIES)
        part = _part_name(campaign_ids)
        return ride_out(f"{kind} of account {account_id}" + (f" ({part})" if part else ""),
                        lambda: work(runtime))


@celery_app.task(name="adsentinel.train_anomaly_detectors_all")
def train_anomaly_detectors_all() -> dict:
    """Daily at 04:00: one training per active account, large accounts split into chunks."""
    from adsentinel.db.engine import session_scope
    from adsentinel.scope import active_account_ids, campaign_chunks
    from adsentinel.training.service import training_last_day

    runtime = get_runtime()
    dispatched = []
    for account_id in active_account_ids(session_factory=runtime.session_factory):
        chunks = campaign_chunks(session_factory=runtime.session_factory,
                                 account_id=account_id,
                                 max_entities=runtime.settings.chunk_size)
        if chunks == [None]:
            result = train_anomaly_detector.delay(account_id)
        else:
            with session_scope(runtime.session_factory) as session:  # once, not once a chunk
                last_day = training_last_day(session, account_id)
            result = chord(group(
                train_anomaly_detector.s(account_id, chunk,
                                         last_day.isoformat() if last_day else None)
                for chunk in chunks))(finish_account_training.s(account_id))
        dispatched.append({"config_id": account_id, "task_id": result.id,
                           "chunks": len(chunks)})
    log.info("training dispatched for %d account(s)", len(dispatched))
    return {"status": "dispatched", "configs_count": len(dispatched), "tasks": dispatched}


@celery_app.task(name="adsentinel.train_anomaly_detector", bind=True, max_retries=2,
                 autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True)
def train_anomaly_detector(self, config_id: int, campaign_ids: list[int] | None = None,
                           last_day: str | None = None) -> dict:
    """Train the per-entity models of one account (or of some of its campaigns, with the
    account's last complete day ``last_day``, ISO, read once for all of them)."""
    from datetime import date

    from adsentinel.training.service import train_account_models

    result = _locked(self, "train", config_id, campaign_ids, lambda runtime: train_account_models(
        session_factory=runtime.session_factory, settings=runtime.settings,
        account_id=config_id, campaign_ids=campaign_ids,
        last_day=date.fromisoformat(last_day) if last_day else None))
    return {**result, "worker": self.request.hostname}


@celery_app.task(name="adsentinel.finish_account_training")
def finish_account_training(chunk_results: list[dict], config_id: int) -> dict:
    """After the chunks of a split account: the account's ``metadata.json`` in the model store
    (models per level, skip reasons, time of the last training) for the whole account."""
    from adsentinel.training.service import merge_chunk_results

    return merge_chunk_results(settings=get_runtime().settings, account_id=config_id,
                               chunk_results=chunk_results)


@celery_app.task(name="adsentinel.detect_anomalies_all")
def detect_anomalies_all() -> dict:
    """Hourly: detection for every active account, large accounts split by campaigns.

    An account synced from Meta is synced first: its ``sync_account`` task dispatches the
    detection itself once the new numbers are stored (the chunks are only known then).
    """
    from adsentinel.scope import active_account_ids
    from adsentinel.sync.service import is_syncable

    runtime = get_runtime()
    task_ids, sync_task_ids = [], []
    for account_id in active_account_ids(session_factory=runtime.session_factory):
        if is_syncable(session_factory=runtime.session_factory, account_id=account_id):
            sync_task_ids.append(sync_account.delay(account_id, detect_after=True).id)
        else:
            task_ids.extend(_dispatch_detection(account_id))
    return {"status": "dispatched", "tasks": len(task_ids), "task_ids": task_ids,
            "sync_task_ids": sync_task_ids}


def _dispatch_detection(account_id: int) -> list[str]:
    """One detection task per chunk of the account, each with the whole account's facts
    (computed once here; left out of the task's logged arguments)."""
    from adsentinel.detection.service import detection_chunks

    runtime = get_runtime()
    return [detect_anomalies.apply_async(
        (account_id, chunk), {"account_facts": facts} if facts is not None else {},
        kwargsrepr="{'account_facts': ...}" if facts is not None else None).id
        for chunk, facts in detection_chunks(session_factory=runtime.session_factory,
                                             settings=runtime.settings, account_id=account_id)]


@celery_app.task(name="adsentinel.sync_account", bind=True, max_retries=2,
                 autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True)
def sync_account(self, config_id: int, detect_after: bool = False) -> dict:
    """Pull one account from Meta; with ``detect_after``, then dispatch its detection.

    A sync that Meta refuses (throttled past the allowance, token expired, malformed payload) is
    recorded and reported, not retried here, and detection still runs on what is stored.
    """
    from adsentinel.sync.service import sync_before_detection

    result = _locked(self, "sync", config_id, None, lambda runtime: sync_before_detection(
        session_factory=runtime.session_factory, settings=runtime.settings,
        account_id=config_id)) or {"status": "skipped"}
    if detect_after:
        result["detect_task_ids"] = _dispatch_detection(config_id)
    return {**result, "worker": self.request.hostname}


@celery_app.task(name="adsentinel.detect_anomalies", bind=True, max_retries=2,
                 autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_jitter=True)
def detect_anomalies(self, config_id: int, campaign_ids: list[int] | None = None,
                     account_facts: dict | None = None) -> dict:
    """Detect and store the anomalies of one account (or of some of its campaigns, with the
    whole account's facts: see ``detection.service.detection_chunks``)."""
    from adsentinel.detection.service import run_detection

    result = _locked(self, "detect", config_id, campaign_ids, lambda runtime: run_detection(
        session_factory=runtime.session_factory, settings=runtime.settings,
        account_id=config_id, campaign_ids=campaign_ids, account_facts=account_facts).summary())
    if result.get("retrain_campaigns"):  # refused models: their forests back within the hour
        result["retrain_task_id"] = train_anomaly_detector.delay(
            config_id, result["retrain_campaigns"]).id
    return {**result, "worker": self.request.hostname}
