"""Train and detect through real worker processes on Redis and PostgreSQL (no eager mode)."""

from __future__ import annotations

import pytest
import redis as redis_lib
from sqlalchemy import delete, func, select, update
from worker_support import import_demo_account, wait_for

from adsentinel.db.models import Anomaly, Entity, TrainingRun
from adsentinel.detection.service import run_detection
from adsentinel.model_store.store import PACK_SUFFIX
from adsentinel.worker.locks import account_lock

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def _anomaly_rows(factory):
    with factory() as session:
        return sorted(session.execute(select(Anomaly.entity_id, Anomaly.day, Anomaly.metric,
                                             Anomaly.score)).all())


def test_train_then_detect_end_to_end_is_idempotent(deployment):
    factory, account_id = import_demo_account(deployment.settings, deployment.tmp)
    deployment.start_worker("w1")
    app = deployment.celery()

    trained = app.send_task("adsentinel.train_anomaly_detector", args=[account_id]).get(
        timeout=180)
    assert sum(trained[level]["trained"] for level in ("campaign", "adset", "ad")) > 0, \
        deployment.log()
    metadata = deployment.settings.effective_models_path / "anomaly_detector" / \
        f"config_{account_id}" / "metadata.json"
    assert metadata.exists()

    first = app.send_task("adsentinel.detect_anomalies", args=[account_id]).get(timeout=180)
    rows = _anomaly_rows(factory)
    assert first["anomalies"] > 0 and rows
    second = app.send_task("adsentinel.detect_anomalies", args=[account_id]).get(timeout=180)
    assert second["anomalies"] == first["anomalies"]
    assert _anomaly_rows(factory) == rows  # same rows, no duplicates


def test_locked_account_is_retried_not_run_twice(deployment):
    factory, account_id = import_demo_account(deployment.settings, deployment.tmp)
    deployment.start_worker("w1")
    app = deployment.celery()
    client = redis_lib.Redis.from_url(deployment.settings.broker_url.get_secret_value())

    with account_lock(client, "detect", account_id, None, ttl=60) as held:
        assert held
        result = app.send_task("adsentinel.detect_anomalies", args=[account_id])
        wait_for(lambda: result.state == "RETRY", 60, "the task to be retried")
        assert _anomaly_rows(factory) == []  # nothing ran while the lock was held
    assert result.get(timeout=120)["anomalies"] > 0
    assert result.state == "SUCCESS"


def _scores_by_model(store, account_id):
    """Every model pack of the account read and verified (none refused), each model scored on
    a fixed matrix."""
    import numpy as np

    probe = np.random.default_rng(0).normal(size=(16, 8))
    loaded = store.load_models(account_id)
    assert loaded.refused_campaigns == frozenset() and loaded.refused_entities == frozenset()
    return {entity_id: found.model.score_samples(probe).tolist()
            for entity_id, found in loaded.models.items()}


def test_worker_killed_mid_training_leaves_whole_models_and_work_is_redone(deployment, tmp_path):
    from adsentinel.model_store.store import ModelStore
    from adsentinel.training.service import train_account_models

    deployment.env.update({"ADSENTINEL_TASK_SOFT_TIME_LIMIT": "40",
                           "ADSENTINEL_TASK_TIME_LIMIT": "45",
                           "ADSENTINEL_BROKER_VISIBILITY_TIMEOUT": "50",
                           # packs are written batch after batch: the kill lands between two
                           "ADSENTINEL_TRAINING_BATCH_ENTITIES": "60"})
    factory, account_id = import_demo_account(deployment.settings, deployment.tmp, ads=800)
    victim = deployment.start_worker("victim")
    app = deployment.celery()
    result = app.send_task("adsentinel.train_anomaly_detector", args=[account_id])

    def training_started():
        with factory() as session:
            return session.scalar(select(func.count()).select_from(TrainingRun)) > 0
    wait_for(training_started, 120, "training to start", interval=0.05)
    store = ModelStore.from_settings(deployment.settings)
    account_dir = store.account_dir(account_id)
    wait_for(lambda: any(account_dir.glob("*" + PACK_SUFFIX)), 60, "first models written",
             interval=0.02)
    deployment.kill(victim)

    with factory() as session:
        assert session.scalars(select(TrainingRun.status)).all() == ["running"], \
            "training finished before the kill: give the test a larger account"
    _scores_by_model(store, account_id)  # every pack on disk is whole and verifies

    deployment.start_worker("rescuer")
    outcome = result.get(timeout=240)
    with factory() as session:
        runs = sorted(session.scalars(select(TrainingRun)).all(), key=lambda r: r.id)
    # redelivered once (only after the visibility timeout, so past the hard time limit: the
    # killed run is closed as interrupted) and finished once
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert "interrupted" in runs[0].error

    clean_settings = deployment.settings.model_copy(
        update={"models_storage_path": deployment.tmp / "clean-models"})
    clean = ModelStore.from_settings(clean_settings)
    train_account_models(session_factory=factory, settings=clean_settings,
                         account_id=account_id, store=clean)
    assert _scores_by_model(store, account_id) == _scores_by_model(clean, account_id)
    assert outcome["ad"]["trained"] > 0


def test_two_workers_share_a_large_account(deployment):
    import json

    deployment.env["ADSENTINEL_CHUNK_ENTITIES"] = "25"
    factory, account_id = import_demo_account(deployment.settings, deployment.tmp, ads=60)
    deployment.start_worker("w1")
    deployment.start_worker("w2")
    app = deployment.celery()

    dispatched = app.send_task("adsentinel.train_anomaly_detectors_all").get(timeout=60)
    assert dispatched["tasks"][0]["chunks"] >= 3
    metadata = deployment.settings.effective_models_path / "anomaly_detector" / \
        f"config_{account_id}" / "metadata.json"
    wait_for(metadata.exists, 240, "the chunks' merged metadata.json")
    merged = json.loads(metadata.read_text())
    assert merged["chunks"] == dispatched["tasks"][0]["chunks"]
    from adsentinel.model_store.store import ModelStore

    models = ModelStore.from_settings(deployment.settings).load_models(account_id).models
    assert sum(merged["models_count"].values()) == len(models) > 0
    assert len(list(metadata.parent.glob("*" + PACK_SUFFIX))) >= 3  # one pack per campaign

    chord_result = app.AsyncResult(dispatched["tasks"][0]["task_id"]).get(timeout=60)
    assert {w.split("@")[0] for w in chord_result["workers"]} == {"w1", "w2"}, deployment.log()

    detection = app.send_task("adsentinel.detect_anomalies_all").get(timeout=60)
    assert len(detection["task_ids"]) == merged["chunks"]
    for task_id in detection["task_ids"]:
        app.AsyncResult(task_id).get(timeout=240)
    chunked = _anomaly_rows(factory)
    assert chunked
    with factory() as session:
        runs = session.scalar(select(func.count()).select_from(TrainingRun))
    assert runs == merged["chunks"]

    # the chunks, each given the whole account's facts, judged as the whole account at once
    with factory.begin() as session:
        session.execute(delete(Anomaly))
        session.execute(update(Entity).values(judged_at=None))
    run_detection(session_factory=factory, settings=deployment.settings, account_id=account_id)
    assert _anomaly_rows(factory) == chunked
