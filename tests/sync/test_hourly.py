"""The hourly job syncs Meta accounts before detecting them: embedded scheduler and Celery task."""

from __future__ import annotations

import pytest
import redis as redis_lib
from graph_api import ACCOUNT, TOKEN, serve_insights, serve_structure
from sqlalchemy import func, select

from adsentinel.accounts.service import add_meta_account
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import AdAccount, DailyInsight, SyncRun
from adsentinel.ingest.csv_import import import_insights_csv
from adsentinel.worker.embedded import every, scheduled_jobs
from factories import insight_rows, write_csv
from service_checks import REDIS_URL, service_missing


@pytest.fixture
def accounts(settings, tmp_path, graph, monkeypatch):
    """A CSV-imported account and a Meta account, on the embedded SQLite database."""
    monkeypatch.setenv("META_TOKEN", TOKEN)
    engine = open_database(settings)
    import_insights_csv(write_csv(tmp_path / "csv.csv", insight_rows(days=3, ads=2,
                                                                     account="act_777")),
                        engine=engine, account_name="from csv")
    factory = make_session_factory(engine)
    meta = add_meta_account(session_factory=factory, platform_account_id=ACCOUNT,
                            token_env="META_TOKEN", name="from meta").id
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    with factory() as session:
        csv_account = session.scalar(select(AdAccount.id).where(AdAccount.name == "from csv"))
    return factory, csv_account, meta


def test_embedded_hourly_job_syncs_then_detects(settings, accounts, graph):
    factory, csv_account, meta = accounts
    jobs = scheduled_jobs(settings=settings, session_factory=factory, training=every(3600),
                          detection=every(3600))
    results = jobs[1].run()
    assert results[meta]["sync"]["status"] == "succeeded"
    assert "anomalies" in results[meta]
    assert "sync" not in results[csv_account] and "anomalies" in results[csv_account]
    assert graph.asked("GET", f"{ACCOUNT}/insights")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 1


def test_celery_sync_task_stores_then_dispatches_detection(settings, accounts, monkeypatch):
    from adsentinel.worker import runtime, tasks
    from adsentinel.worker.app import celery_app

    client = redis_lib.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis_lib.exceptions.ConnectionError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    factory, _csv_account, meta = accounts
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ADSENTINEL_BROKER_URL", REDIS_URL)
    runtime._runtime_for.cache_clear()
    celery_app.conf.task_always_eager = True  # .delay() runs in this process
    try:
        result = tasks.sync_account.apply(args=(meta,), kwargs={"detect_after": True}).get()
        assert result["status"] == "succeeded"
        # the recorded pages answer every date range of the first sync's window
        assert result["insight_rows"] == 5 * result["ranges_stored"] > 0
        assert len(result["detect_task_ids"]) == 1

        hourly = tasks.detect_anomalies_all.apply().get()
        assert len(hourly["sync_task_ids"]) == 1 and len(hourly["task_ids"]) == 1
    finally:
        celery_app.conf.task_always_eager = False
        runtime._runtime_for.cache_clear()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)
                              .where(SyncRun.status == "succeeded")) == 2
        assert session.scalar(select(func.count()).select_from(DailyInsight)) > 0
