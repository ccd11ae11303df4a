"""Who runs enqueued jobs: Celery through a real Redis broker, or a thread of the API process."""

from __future__ import annotations

import time

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient

from adsentinel.api import create_app
from adsentinel.api.dispatch import (
    CeleryDispatcher,
    InProcessDispatcher,
    broker_reachable,
    choose_dispatcher,
)
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.service.tokens import create_token
from service_checks import REDIS_URL, service_missing

UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_db():
    """The test Redis database, emptied before and after."""
    client = redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis_lib.exceptions.ConnectionError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    yield client
    client.flushdb()
    client.close()


def test_auto_runs_jobs_in_process_on_sqlite(settings):
    chosen = choose_dispatcher("auto", settings=settings, session_factory=None)
    assert isinstance(chosen, InProcessDispatcher)
    chosen.close()


def test_auto_on_postgresql_falls_back_to_in_process_without_a_broker(tmp_path, caplog):
    settings = load_settings(data_dir=tmp_path, database_url="postgresql://u@db/x",
                             broker_url=UNREACHABLE_BROKER)
    assert not broker_reachable(settings, timeout=0.5)
    chosen = choose_dispatcher("auto", settings=settings, session_factory=None)
    assert isinstance(chosen, InProcessDispatcher)
    assert "will run inside this process" in caplog.text
    chosen.close()


def test_auto_on_postgresql_uses_celery_when_the_broker_answers(tmp_path, redis_db):
    settings = load_settings(data_dir=tmp_path, database_url="postgresql://u@db/x",
                             broker_url=REDIS_URL)
    chosen = choose_dispatcher("auto", settings=settings, session_factory=None)
    assert isinstance(chosen, CeleryDispatcher)
    chosen.close()
    with pytest.raises(ValueError, match="auto, celery or in-process"):
        choose_dispatcher("later", settings=settings, session_factory=None)


def test_celery_dispatcher_puts_the_task_on_its_queue(tmp_path, redis_db):
    dispatcher = CeleryDispatcher(load_settings(data_dir=tmp_path, broker_url=REDIS_URL))
    try:
        task_id = dispatcher.enqueue("training", 7)
        detect_id = dispatcher.enqueue("detection", 7)
        assert redis_db.llen("training") == 1 and redis_db.llen("detection") == 1
        message = redis_db.lindex("training", 0).decode()
        assert "adsentinel.train_anomaly_detector" in message and task_id in message
        assert detect_id != task_id
        assert dispatcher.state(task_id).state == "pending"  # no worker is running
    finally:
        dispatcher.close()


def test_unreachable_broker_is_a_503_with_a_hint(settings):
    engine = open_database(settings)
    factory = make_session_factory(engine)
    from adsentinel.ingest.csv_import import import_insights_csv
    from factories import insight_rows, write_csv

    import_insights_csv(write_csv(settings.data_dir / "a.csv", insight_rows(days=2, ads=1)),
                        engine=engine)
    token = create_token(session_factory=factory, name="ops").secret
    broken = load_settings(data_dir=settings.data_dir, broker_url=UNREACHABLE_BROKER)
    app = create_app(broken, session_factory=factory, dispatcher=CeleryDispatcher(broken))
    started = time.monotonic()
    with TestClient(app) as client:
        response = client.post("/api/v1/accounts/1/training",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert "cannot send the training task: the broker at redis://127.0.0.1:1/0 does not answer" in (
        response.json()["detail"])
    assert "ADSENTINEL_BROKER_URL" in response.json()["detail"]
    assert time.monotonic() - started < 15
    engine.dispose()


def test_in_process_dispatcher_records_a_failed_job(settings):
    engine = open_database(settings)
    dispatcher = InProcessDispatcher(settings, make_session_factory(engine))
    task_id = dispatcher.enqueue("training", 424242)
    deadline = time.monotonic() + 30
    while dispatcher.state(task_id).state in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    failed = dispatcher.state(task_id)
    assert failed.state == "failed" and "424242" in failed.error
    assert failed.account_id == 424242
    assert dispatcher.state("unknown") is None
    dispatcher.close()
    engine.dispose()
