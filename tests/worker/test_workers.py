"""Train and detect through real worker processes on Redis and PostgreSQL (no eager mode)."""

from __future__ import annotations

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from adsentinel.db.models import Anomaly, TrainingRun
from adsentinel.worker.locks import account_lock
from worker_support import import_demo_account, wait_for

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
