"""The hourly detection of an account, as one function: :func:`run_detection` reads the
account's verified models once, judges and stores the new days (:mod:`.account`), marks the model
files it refused and plans the alerts, and returns a :class:`DetectionRun`.

The Celery task (:mod:`adsentinel.worker.tasks`) calls it for one chunk of an account; the
embedded scheduler (:mod:`adsentinel.worker.embedded`), the API's in-process jobs and
``adsentinel detect`` call :func:`detect_in_chunks`, which runs it on the same chunks
(:func:`detection_chunks`) one after the other, so every mode does the same work within the same
memory budget. The campaigns whose models were refused are in the result for the caller to
retrain (:func:`retrain_refused` in process, a training task on the workers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts.service import plan_alerts
from adsentinel.config import Settings
from adsentinel.db.engine import session_scope
from adsentinel.db.models import Anomaly, Entity
from adsentinel.detect.account_facts import AccountFacts
from adsentinel.detect.features import FOREST_FEATURES
from adsentinel.detection.account import (
    account_facts_for_run,
    detect_account,
    detector_from_settings,
)
from adsentinel.errors import ModelStoreError
from adsentinel.model_store.store import ModelSet, ModelStore
from adsentinel.scope import campaign_chunks, campaign_of, entities_in_campaigns, entity_parents
from adsentinel.training.service import train_account_models

log = logging.getLogger(__name__)


def model_store_or_none(settings: Settings) -> ModelStore | None:
    """The model store, or ``None`` (statistical detection only) when the forest is off or the
    store cannot be used, which is logged rather than fatal."""
    if not settings.use_isolation_forest:
        return None
    try:
        return ModelStore.from_settings(settings)
    except (ModelStoreError, OSError) as exc:
        log.error("model store unusable (%s); statistical detection only", exc)
        return None


def load_detection_models(*, settings: Settings, account_id: int,
                          campaign_ids: list[int] | None = None,
                          store: ModelStore | None = None) -> ModelSet:
    """The verified models of an account (or of some campaigns), read once for the cycle.

    An empty :class:`ModelSet` (statistical detection only) when the forest is off or the
    store cannot be used; refused models are returned in it, never raised."""
    store = store or model_store_or_none(settings)
    if store is None:
        return ModelSet({})
    try:
        return store.load_models(account_id, campaign_ids=campaign_ids,
                                 feature_names=FOREST_FEATURES)
    except ModelStoreError as exc:  # the store itself unreachable: detection goes on
        log.error("account %s: models unreadable (%s); statistical detection only",
                  account_id, exc)
        return ModelSet({})


def model_loader_or_none(settings: Settings, account_id: int, store: ModelStore | None = None):
    """A ``model_loader`` over the account's models; ``None`` (statistical detection only) when
    the forest is off or the store cannot be used."""
    if store is None and not settings.use_isolation_forest:
        return None
    return load_detection_models(settings=settings, account_id=account_id,
                                 store=store).loader()


def campaigns_to_retrain(*, session_factory: sessionmaker[Session], models: ModelSet,
                         account_id: int, campaign_ids: list[int] | None = None) -> list[int]:
    """The campaigns whose models detection refused (damaged, tampered with, or trained on
    other features), within ``campaign_ids`` when given: retraining them restores their
    forests now rather than at the next nightly training."""
    refused = set(models.refused_campaigns)
    if models.refused_entities:  # older single-model files: their campaign from the tree
        with session_factory() as session:
            parents = entity_parents(session, account_id)
        refused |= {campaign_of(entity_id, parents) for entity_id in models.refused_entities
                    if entity_id in parents}
    if campaign_ids is not None:
        refused &= set(campaign_ids)
    with session_factory() as session:  # a pack's name is all a refused pack tells: check it
        known = set(session.scalars(select(Entity.id).where(
            Entity.account_id == account_id, Entity.id.in_(sorted(refused))))) if refused else set()
    return sorted(refused & known)


def mark_refused_models(*, session_factory: sessionmaker[Session], models: ModelSet,
                        account_id: int, campaign_ids: list[int] | None = None,
                        now: datetime | None = None) -> None:
    """Mark what this detection refused (``entities.model_refused_at``, shown by ``adsentinel
    status``): the campaign of each refused pack, each entity of a refused older model file;
    and clear the mark of the others it covered (the account, or the given campaigns), so that
    a mark lasts until a detection reads sound models."""
    refused = set(models.refused_campaigns) | set(models.refused_entities)
    with session_factory() as session, session.begin():
        cleared = set(session.scalars(select(Entity.id).where(
            Entity.account_id == account_id, Entity.model_refused_at.is_not(None)))) - refused
        if cleared and campaign_ids is not None:
            parents = entity_parents(session, account_id)
            cleared &= entities_in_campaigns(parents, campaign_ids)
        for ids, value in ((cleared, None), (refused, now or datetime.now(UTC))):
            if ids:
                session.execute(update(Entity).where(Entity.account_id == account_id,
                                                     Entity.id.in_(sorted(ids)))
                                .values(model_refused_at=value))


@dataclass(frozen=True)
class DetectionRun:
    """What one detection of an account (or of some of its campaigns) did.

    ``anomalies`` are the rows it stored; ``retrain_campaigns`` the campaigns whose model files
    were refused, for the caller to retrain (:func:`retrain_refused` in process, a training task
    on the workers); ``alerts`` what alert planning did (``{"error": ...}`` when it failed:
    the anomalies are stored whatever happens there).
    """

    account_id: int
    anomalies: list[Anomaly]
    alerts: dict[str, Any]
    retrain_campaigns: list[int]
    refused_models: int

    def summary(self) -> dict[str, Any]:
        """Counts only, JSON-ready: a task's result, the embedded scheduler's log line."""
        by_severity: dict[str, int] = {}
        for anomaly in self.anomalies:
            by_severity[anomaly.severity] = by_severity.get(anomaly.severity, 0) + 1
        return {"account_id": self.account_id, "anomalies": len(self.anomalies),
                "by_severity": by_severity, "alerts": self.alerts,
                "retrain_campaigns": self.retrain_campaigns,
                "refused_models": self.refused_models}


def detection_chunks(*, session_factory: sessionmaker[Session], settings: Settings,
                     account_id: int, analysis_date: date | None = None,
                     ) -> list[tuple[list[int] | None, dict[str, Any] | None]]:
    """How an account's detection is split: ``(campaign_ids, account_facts)`` per chunk of
    whole campaigns, as many entities as ``WORKER_MEMORY_MIB`` (or ``CHUNK_ENTITIES``) gives a
    process (``[(None, None)]``: the whole account at once). Each chunk is given the whole
    account's facts (JSON, :class:`~adsentinel.detect.account_facts.AccountFacts`) for the days
    a run up to ``analysis_date`` (default: the latest day) judges, computed here once: every
    chunk then judges its entities as the whole account would, however the account was cut."""
    chunks = campaign_chunks(session_factory=session_factory, account_id=account_id,
                             max_entities=settings.chunk_size)
    if chunks == [None]:
        return [(None, None)]
    with session_scope(session_factory) as session:
        facts = account_facts_for_run(session, detector_from_settings(settings), account_id,
                                     analysis_date=analysis_date)
    return [(chunk, None if facts is None or chunk is None
             else facts.for_campaigns(chunk).to_jsonable()) for chunk in chunks]


def detect_in_chunks(*, session_factory: sessionmaker[Session], settings: Settings,
                     account_id: int, analysis_date: date | None = None) -> DetectionRun:
    """:func:`run_detection` of every chunk of the account (:func:`detection_chunks`), one after
    the other in this process: a large account detected in process (``adsentinel detect``, the
    embedded scheduler, the API's jobs) stays within the memory budget the workers keep, and is
    judged as they judge it. One run, the chunks' results together."""
    runs = [run_detection(session_factory=session_factory, settings=settings,
                          account_id=account_id, campaign_ids=chunk,
                          analysis_date=analysis_date, account_facts=facts)
            for chunk, facts in detection_chunks(session_factory=session_factory,
                                                 settings=settings, account_id=account_id,
                                                 analysis_date=analysis_date)]
    if len(runs) == 1:
        return runs[0]
    errors = [run.alerts["error"] for run in runs if "error" in run.alerts]
    alerts: dict[str, Any] = {"error": errors[0]} if errors else {
        key: sum(int(run.alerts.get(key, 0)) for run in runs)
        for key in dict.fromkeys(k for run in runs for k in run.alerts)}
    return DetectionRun(
        account_id=account_id,
        anomalies=sorted((a for run in runs for a in run.anomalies), key=lambda a: -a.score),
        alerts=alerts,
        retrain_campaigns=sorted({c for run in runs for c in run.retrain_campaigns}),
        refused_models=sum(run.refused_models for run in runs))


def run_detection(*, session_factory: sessionmaker[Session], settings: Settings, account_id: int,
                  campaign_ids: list[int] | None = None,
                  analysis_date: date | None = None,
                  account_facts: Mapping[str, Any] | None = None) -> DetectionRun:
    """Detect anomalies on an account (or some campaigns) with its stored models, store them,
    mark refused model files and plan the alerts: the one detection of the Celery task, the
    embedded scheduler, the API's in-process jobs and ``adsentinel detect``.

    ``analysis_date`` judges that day (and the days before it that detection re-checks)
    instead of the rows added since the last run (see
    :func:`~adsentinel.detection.account.detect_account`). ``account_facts``: a chunk's share
    of :func:`detection_chunks` (read again by the chunk when they do not cover its days)."""
    models = load_detection_models(settings=settings, account_id=account_id,
                                   campaign_ids=campaign_ids)
    stored = detect_account(session_factory=session_factory, settings=settings,
                            account_id=account_id, analysis_date=analysis_date,
                            model_loader=models.loader(), campaign_ids=campaign_ids,
                            account_facts=None if account_facts is None
                            else AccountFacts.from_jsonable(account_facts))
    retrain = campaigns_to_retrain(session_factory=session_factory, models=models,
                                   account_id=account_id, campaign_ids=campaign_ids)
    mark_refused_models(session_factory=session_factory, models=models, account_id=account_id,
                        campaign_ids=campaign_ids)
    if retrain:
        log.warning("account %s: %d model file(s) refused; retraining campaign(s) %s queued",
                    account_id, models.refused_count, retrain)
    # the anomalies are stored whatever happens here; a failed planning is redone next hour
    alerts: dict[str, Any]
    try:
        alerts = plan_alerts(session_factory=session_factory, settings=settings,
                             account_id=account_id, campaign_ids=campaign_ids)
    except Exception as exc:  # logged and reported, detection still counts
        log.exception("account %s: planning alerts failed", account_id)
        alerts = {"error": f"{type(exc).__name__}: {exc}"}
    return DetectionRun(account_id=account_id, anomalies=stored, alerts=alerts,
                        retrain_campaigns=retrain, refused_models=models.refused_count)


def retrain_refused(*, session_factory: sessionmaker[Session], settings: Settings,
                    detection: DetectionRun) -> dict[str, Any] | None:
    """In process (embedded mode, the API's in-process jobs, ``adsentinel detect``): retrain
    the campaigns a detection found refused models in; ``None`` when there were none."""
    if not detection.retrain_campaigns:
        return None
    return train_account_models(session_factory=session_factory, settings=settings,
                                account_id=detection.account_id,
                                campaign_ids=detection.retrain_campaigns)
