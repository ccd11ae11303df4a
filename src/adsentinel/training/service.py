"""Training service: one Isolation Forest per entity of an account, read and fitted in chunks.

* The history of every entity of the account is read with one query per chunk of a few thousand
  entities (not one query per entity; through ``COPY`` on PostgreSQL): complete days only, inside the last
  ``isolation_forest_history_days`` days up to the account's latest complete day.
* An entity with fewer than ``isolation_forest_min_samples`` such days is skipped with reason
  ``insufficient_data`` (a model it had before goes with its campaign's new pack, so detection
  does not use a stale one); the others are fitted on
  :func:`~adsentinel.detect.features.isolation_forest_features`.
* Entities are taken in chunks of whole campaigns. Fitting runs on every core with threads (the
  compiled engine releases the GIL while it grows trees); then each campaign's models are
  written as one signed pack, the chunk's packs with one disk flush
  (:meth:`~adsentinel.model_store.store.ModelStore.save_campaign_models`), and the older
  single-model files of the chunk's entities are removed.
* The result counts trained / skipped / failed per level; the account's ``metadata.json`` in
  the model store and a :class:`~adsentinel.db.models.TrainingRun` row record the run.

Models are keyed by ``str(Entity.id)``, the key the detection service asks the store for.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numba
import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.account_calendar import calendar_labels
from adsentinel.alerts.incidents import DISMISSED_STATUSES
from adsentinel.config import Settings
from adsentinel.db.bulk import read_frame
from adsentinel.db.engine import session_scope
from adsentinel.db.models import (
    AdAccount,
    Anomaly,
    DailyInsight,
    Entity,
    TrainingRun,
    TrainingStatus,
    utcnow,
)
from adsentinel.detect.features import COUNT_COLUMNS, FOREST_FEATURES, isolation_forest_features
from adsentinel.detect.forest import IsolationForest, sorted_quantiles
from adsentinel.errors import ModelStoreError, NotFoundError
from adsentinel.model_store.store import ENTITY_TYPES, ModelMetadata, ModelStore
from adsentinel.scope import campaign_of, entities_under_campaigns
from adsentinel.sync.account_changes import comparable_since
from adsentinel.timezones import as_utc

__all__ = ["N_ESTIMATORS", "SCORE_QUANTILES", "merge_chunk_results", "train_account_models"]

log = logging.getLogger(__name__)

N_ESTIMATORS = 100
SCORE_QUANTILES = np.linspace(0.0, 1.0, 101)  # stored with each model, for calibration
INSUFFICIENT_DATA = "insufficient_data"

#: ``progress(done, total)``: entities processed so far out of the account's total.
Progress = Callable[[int, int], None]


def _close_interrupted_runs(session: Session, account_id: int, settings: Settings,
                            now: datetime) -> None:
    """Mark as failed the account's runs still ``running`` after the hard task time limit.

    A worker killed mid-training never finishes its row (its task is redelivered and a new run
    is recorded); no run can still be alive past ``task_time_limit``, since the worker process is
    killed then, so such a row is an interruption, not work in progress.
    """
    cutoff = now - timedelta(seconds=settings.task_time_limit)
    for run in session.scalars(select(TrainingRun).where(
            TrainingRun.account_id == account_id,
            TrainingRun.status == TrainingStatus.running.value)):
        started = as_utc(run.started_at)
        if started < cutoff:
            run.status = TrainingStatus.failed.value
            run.finished_at = now
            run.error = ("interrupted: its worker stopped before finishing (killed, or the "
                         "machine went down); the task was delivered again")
            log.warning("account %s: training run %s started %s never finished; marked failed",
                        account_id, run.id, started.isoformat(timespec="seconds"))


def train_account_models(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    account_id: int,
    progress: Progress | None = None,
    store: ModelStore | None = None,
    workers: int | None = None,
    campaign_ids: Sequence[int] | None = None,
    last_day: date | None = None,
) -> dict[str, Any]:
    """Train and store an Isolation Forest for every entity of ``account_id`` with enough history.

    Parameters
    ----------
    session_factory : sessionmaker
        Sessions on the database.
    settings : Settings
        ``isolation_forest_*`` knobs, model store root and signing key.
    account_id : int
        ``AdAccount.id`` (the Celery tasks' ``config_id``).
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch of entities.
    store : ModelStore, optional
        Where models go; by default the one ``settings`` describes.
    workers : int, optional
        Fitting threads; default twice the number of CPUs (writing files waits on the disk
        without holding the GIL, so extra threads keep the cores busy meanwhile).
    campaign_ids : sequence of int, optional
        Train only these campaigns and everything below them (one chunk of a large account).
    last_day : date, optional
        The account's last complete day (:func:`training_last_day`), the end of every
        entity's training window; read here when not given. The task that splits a large
        account reads it once for all its chunks: a scan of the account's rows each.

    Returns
    -------
    dict
        ``{"config_id", "account_id", "run_id", "campaign": {"trained", "skipped", "failed"},
        "adset": {...}, "ad": {...}, "skip_reasons": {reason: n}, "training_window":
        {"first_day", "last_day"}, "training_duration_seconds"}``.

    Raises
    ------
    NotFoundError
        No account has this id.
    """
    started = time.perf_counter()
    store = store or ModelStore.from_settings(settings)
    with session_scope(session_factory) as session:
        if session.get(AdAccount, account_id) is None:
            raise NotFoundError(f"no ad account with id {account_id}",
                                hint="pass the id of an imported account")
        _close_interrupted_runs(session, account_id, settings, utcnow())
        run = TrainingRun(account_id=account_id, status=TrainingStatus.running.value)
        session.add(run)
        session.flush()
        run_id = run.id
    counts = {level: {"trained": 0, "skipped": 0, "failed": 0} for level in ENTITY_TYPES}
    skip_reasons: Counter[str] = Counter()
    try:
        store.remove_stale_temp_files(account_id)
        window = _train(session_factory, settings, account_id, store, counts, skip_reasons,
                        progress, workers or 2 * (os.cpu_count() or 1), campaign_ids, last_day)
    except BaseException as exc:
        _finish_run(session_factory, run_id, TrainingStatus.failed, counts, skip_reasons,
                    time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        raise
    duration = time.perf_counter() - started
    metadata = {
        "config_id": account_id,
        "last_training": datetime.now(UTC).isoformat(),
        "models_count": {level: counts[level]["trained"] for level in ENTITY_TYPES},
        "training_duration_seconds": round(duration, 3),
        "skip_reasons": dict(skip_reasons),
        "training_window": window,
    }
    if campaign_ids is None:
        store.write_account_metadata(account_id, metadata)
    _finish_run(session_factory, run_id, TrainingStatus.succeeded, counts, skip_reasons, duration)
    log.info(
        "account %s trained in %.1f s: %s", account_id, duration,
        ", ".join(f"{level} {c['trained']} trained / {c['skipped']} skipped / {c['failed']} failed"
                  for level, c in counts.items()),
    )
    return {"config_id": account_id, "account_id": account_id, "run_id": run_id, **counts,
            "skip_reasons": dict(skip_reasons), "training_window": window,
            "training_duration_seconds": duration}


def merge_chunk_results(*, settings: Settings, account_id: int,
                        chunk_results: Sequence[dict[str, Any]],
                        store: ModelStore | None = None) -> dict[str, Any]:
    """Write the account's ``metadata.json`` (in the model store) for an account trained in
    chunks, and the totals.

    ``chunk_results`` are the return values of :func:`train_account_models` for each chunk.
    """
    store = store or ModelStore.from_settings(settings)
    counts = {level: {k: sum(r[level][k] for r in chunk_results)
                      for k in ("trained", "skipped", "failed")} for level in ENTITY_TYPES}
    skip_reasons: Counter[str] = Counter()
    for result in chunk_results:
        skip_reasons.update(result.get("skip_reasons", {}))
    windows = [r["training_window"] for r in chunk_results if r["training_window"]["last_day"]]
    duration = max((r["training_duration_seconds"] for r in chunk_results), default=0.0)
    store.write_account_metadata(account_id, {
        "config_id": account_id,
        "last_training": datetime.now(UTC).isoformat(),
        "models_count": {level: counts[level]["trained"] for level in ENTITY_TYPES},
        "training_duration_seconds": round(duration, 3),
        "skip_reasons": dict(skip_reasons),
        "training_window": windows[0] if windows else {"first_day": None, "last_day": None},
        "chunks": len(chunk_results),
    })
    workers = sorted({r["worker"] for r in chunk_results if r.get("worker")})
    return {"config_id": account_id, "account_id": account_id, **counts,
            "skip_reasons": dict(skip_reasons), "chunks": len(chunk_results),
            "workers": workers, "training_duration_seconds": duration}


def _finish_run(session_factory, run_id, status, counts, skip_reasons, duration, error=None):
    with session_scope(session_factory) as session:
        run = session.get(TrainingRun, run_id)
        run.status = status.value
        run.finished_at = utcnow()
        run.counts = counts
        run.skip_reasons = dict(skip_reasons)
        run.duration_seconds = duration
        run.error = error


def training_last_day(session: Session, account_id: int) -> date | None:
    """The account's last complete day (``None``: it has none): where training windows end."""
    last_day: date | None = session.execute(
        select(func.max(DailyInsight.day))
        .join(Entity, Entity.id == DailyInsight.entity_id)
        .where(Entity.account_id == account_id, DailyInsight.is_complete.is_(True))
    ).scalar_one_or_none()
    return last_day


def _training_scope(session_factory, account_id: int, campaign_ids, last_day: date | None,
                    ) -> tuple[list, date | None, tuple[set[tuple[int, date]], set[date]]]:
    """The entities to train (``(id, level, parent_id)`` rows, of ``campaign_ids`` when given),
    the account's last complete day (``last_day`` when given) and the days not to learn from."""
    query = (select(Entity.id, Entity.level, Entity.parent_id)
             .where(Entity.account_id == account_id).order_by(Entity.id))
    with session_factory() as session:
        if campaign_ids is None:
            entities = list(session.execute(query).all())
        else:  # a chunk of a large account reads its own entities, not the account's tree
            scope = sorted(entities_under_campaigns(session, account_id, campaign_ids))
            entities = []
            for start in range(0, len(scope), 10_000):  # SQLite's bound-parameter limit
                entities += session.execute(
                    query.where(Entity.id.in_(scope[start:start + 10_000]))).all()
        if last_day is None:
            last_day = training_last_day(session, account_id)
        # days people dismissed as not incidents, and calendar days, teach the wrong normal
        excluded = _excluded_days(session, account_id)
    return entities, last_day, excluded


def _excluded_days(session: Session, account_id: int) -> tuple[set[tuple[int, date]], set[date]]:
    """Days left out of training: ``(entity, day)`` pairs with an anomaly marked
    false_positive or expected, and the account's calendar days (every entity)."""
    pairs = {(r.entity_id, r.day) for r in session.execute(
        select(Anomaly.entity_id, Anomaly.day).where(
            Anomaly.account_id == account_id, Anomaly.status.in_(tuple(DISMISSED_STATUSES))))}
    return pairs, set(calendar_labels(session, account_id))


def _train(session_factory, settings, account_id, store, counts, skip_reasons, progress,
           workers, campaign_ids=None, last_day=None) -> dict[str, str | None]:
    entities, last_day, excluded = _training_scope(session_factory, account_id, campaign_ids,
                                                   last_day)
    total = len(entities)
    if last_day is None:
        for entity in entities:
            counts[entity.level]["skipped"] += 1
        skip_reasons[INSUFFICIENT_DATA] += total
        if progress:
            progress(total, total)
        return {"first_day": None, "last_day": None}
    first_day = last_day - timedelta(days=settings.isolation_forest_history_days - 1)
    parents = {e.id: e.parent_id for e in entities}
    levels = {e.id: e.level for e in entities}
    campaign = {e.id: campaign_of(e.id, parents) for e in entities}
    chunks = _campaign_chunks(campaign, settings.training_batch_size)

    def read(chunk: np.ndarray) -> _History:
        # a chunk of whole campaigns interleaves with other campaigns' ids: name them exactly
        exact = None if len(chunk) == total and campaign_ids is None else chunk
        return _read_history(session_factory, account_id, int(chunk.min()), int(chunk.max()),
                             first_day, last_day, exact_ids=exact, excluded=excluded)

    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="train") as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="read") as reader:
        upcoming = reader.submit(read, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            assert upcoming is not None  # each chunk's read is submitted before its turn
            history = upcoming.result()
            # read the next chunk while this one is fitted
            upcoming = reader.submit(read, chunks[index + 1]) if index + 1 < len(chunks) else None
            slices = np.array_split(chunk, min(workers, len(chunk)))
            jobs = [pool.submit(_fit_slice, part, history, levels, account_id, settings)
                    for part in slices if len(part)]
            fitted: dict[int, list[tuple[IsolationForest, ModelMetadata]]] = {
                campaign[int(e)]: [] for e in chunk}
            for job in jobs:
                outcomes, models = job.result()
                for level, outcome in outcomes:
                    counts[level][outcome] += 1
                    if outcome == "skipped":
                        skip_reasons[INSUFFICIENT_DATA] += 1
                for model, metadata in models:
                    fitted[campaign[int(metadata.entity_id)]].append((model, metadata))
            _save_packs(store, account_id, fitted, [(levels[int(e)], int(e)) for e in chunk])
            for models in fitted.values():
                for _, metadata in models:
                    counts[metadata.entity_type]["trained"] += 1
            done += len(chunk)
            if progress:
                progress(done, total)
    return {"first_day": first_day.isoformat(), "last_day": last_day.isoformat()}


def _campaign_chunks(campaign: dict[int, int], max_entities: int) -> list[np.ndarray]:
    """Entity ids in chunks of whole campaigns of about ``max_entities`` (a larger campaign is
    a chunk of its own): each campaign's models are written as one pack."""
    members: dict[int, list[int]] = {}
    for entity_id in sorted(campaign):
        members.setdefault(campaign[entity_id], []).append(entity_id)
    chunks: list[np.ndarray] = []
    current: list[int] = []
    for campaign_id in sorted(members):
        if current and len(current) + len(members[campaign_id]) > max_entities:
            chunks.append(np.array(current, dtype=np.int64))
            current = []
        current.extend(members[campaign_id])
    if current:
        chunks.append(np.array(current, dtype=np.int64))
    return chunks


def _save_packs(store: ModelStore, account_id: int,
                fitted: dict[int, list[tuple[IsolationForest, ModelMetadata]]],
                covered: list[tuple[str, int]]) -> None:
    """Write one pack per campaign of the chunk (a campaign without a model loses its pack, so
    detection never uses a stale one) and retire the chunk's older single-model files."""
    try:
        store.save_campaign_models(account_id, fitted, retired=covered)
    except ModelStoreError as exc:
        # the store is full or unwritable: no pack of this chunk was replaced, and the next
        # chunks would fail alike, so the run stops here with what to do about it
        count = sum(len(models) for models in fitted.values())
        raise ModelStoreError(
            f"account {account_id}: {count} models could not be saved: {exc}",
            hint=f"free space in, or make writable, the model store {store.location} "
                 "(ADSENTINEL_MODELS_STORAGE_PATH or ADSENTINEL_MODELS_STORAGE_URL), then train "
                 "again; until then detection keeps using the models already there") from None


class _History:
    """Complete days of a range of entities, sorted by entity then day, with their features."""

    def __init__(self, entity_ids: np.ndarray, days: np.ndarray, features: np.ndarray) -> None:
        self.features = features
        self.days = days
        unique, starts, lengths = np.unique(entity_ids, return_index=True, return_counts=True)
        self.rows = {int(e): (int(s), int(s + n)) for e, s, n in zip(unique, starts, lengths, strict=True)}

    def of(self, entity_id: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.rows.get(entity_id, (0, 0))
        return self.features[start:end], self.days[start:end]


def _read_history(session_factory, account_id: int, first_id: int, last_id: int,
                  first_day: date, last_day: date, *,
                  exact_ids: np.ndarray | None = None,
                  excluded: tuple[set[tuple[int, date]], set[date]] | None = None) -> _History:
    """One set-based query for the entities with ids in ``[first_id, last_id]`` (and, when
    given, in ``exact_ids``), without the ``excluded`` days: ``(entity, day)`` pairs marked
    false positive or expected, and calendar days of every entity; never before the account's
    last currency or timezone change up to ``last_day``."""
    with session_factory() as session:
        first_day = max(first_day, comparable_since(session, account_id, last_day) or first_day)
    query = (
        select(DailyInsight.entity_id, DailyInsight.day,
               *(getattr(DailyInsight, c) for c in COUNT_COLUMNS))
        .join(Entity, Entity.id == DailyInsight.entity_id)
        .where(
            Entity.account_id == account_id,
            DailyInsight.entity_id.between(first_id, last_id),
            DailyInsight.is_complete.is_(True),
            DailyInsight.day.between(first_day, last_day),
        )
        .order_by(DailyInsight.entity_id, DailyInsight.day)
    )
    if exact_ids is not None:
        query = query.where(DailyInsight.entity_id.in_([int(i) for i in exact_ids]))
    columns = ["entity_id", "day", *COUNT_COLUMNS]
    with session_factory() as session:
        frame = read_frame(session, query, columns)
    if excluded is not None and (excluded[0] or excluded[1]) and not frame.empty:
        frame = _without_days(frame, *excluded)
    if frame.empty:
        return _History(np.empty(0, np.int64), np.empty(0, dtype=object),
                        np.empty((0, len(FOREST_FEATURES))))
    counts = frame[list(COUNT_COLUMNS)].astype(float).fillna(0.0)
    return _History(frame["entity_id"].to_numpy(np.int64), frame["day"].to_numpy(),
                    isolation_forest_features(counts))


def _without_days(frame: pd.DataFrame, pairs: set[tuple[int, date]],
                  days: set[date]) -> pd.DataFrame:
    """``frame`` without the rows of ``(entity_id, day)`` in ``pairs`` or of a day in ``days``."""
    day = pd.to_datetime(frame["day"]).dt.date
    drop = day.isin(days)
    if pairs:
        drop |= pd.Series([(int(e), d) in pairs for e, d in zip(frame["entity_id"], day, strict=True)],
                          index=frame.index)
    return frame[~drop].reset_index(drop=True)


def _fit_slice(entity_ids, history: _History, levels, account_id: int, settings: Settings
               ) -> tuple[list[tuple[str, str]], list[tuple[IsolationForest, ModelMetadata]]]:
    """Fit the models of some entities: ``(level, outcome)`` of each entity not trained
    (skipped, failed) and the fitted models with their metadata."""
    outcomes: list[tuple[str, str]] = []
    fitted: list[tuple[IsolationForest, ModelMetadata]] = []
    libraries = {"numba": numba.__version__, "numpy": np.__version__}
    for entity_id in entity_ids:
        entity_id = int(entity_id)
        level = levels[entity_id]
        X, days = history.of(entity_id)
        if len(X) < settings.isolation_forest_min_samples:
            outcomes.append((level, "skipped"))
            continue
        try:
            model = IsolationForest(
                n_estimators=N_ESTIMATORS,
                contamination=settings.isolation_forest_contamination,
                random_state=_entity_seed(account_id, entity_id),
            ).fit(X)
            metadata = ModelMetadata(
                account_id=account_id,
                entity_type=level,
                entity_id=str(entity_id),
                feature_names=FOREST_FEATURES,
                n_samples=len(X),
                training_first_day=_iso(days[0]),
                training_last_day=_iso(days[-1]),
                score_quantiles=tuple(
                    sorted_quantiles(np.sort(model.training_scores_), SCORE_QUANTILES).tolist()),
                libraries=libraries,
            )
        except (ValueError, ModelStoreError) as exc:
            log.warning("account %s %s %s: training failed: %s", account_id, level, entity_id, exc)
            outcomes.append((level, "failed"))
            continue
        fitted.append((model, metadata))
    return outcomes, fitted


def _entity_seed(account_id: int, entity_id: int) -> int:
    """A fixed seed per entity, so retraining on the same data gives the same model."""
    return zlib.crc32(f"{account_id}:{entity_id}".encode()) * 2654435761 % (2**63)


def _iso(day) -> str:
    """ISO date of a day as the driver returned it (a ``date``, or text from COPY)."""
    if isinstance(day, str):
        return day[:10]
    if hasattr(day, "isoformat"):
        return day.isoformat()[:10]
    return pd.Timestamp(day).date().isoformat()
