"""The Beat schedule, queue routing and the embedded scheduler's clock maths."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from celery.schedules import crontab

from adsentinel.config import load_settings
from adsentinel.worker.embedded import Job, daily_at, every, hourly_at, run_schedule
from adsentinel.worker.schedule import TASK_ROUTES, beat_schedule


def test_daily_training_at_four_on_the_training_queue():
    schedule = beat_schedule(load_settings())
    entry = schedule["daily-anomaly-detector-training"]
    assert entry["task"] == "adsentinel.train_anomaly_detectors_all"
    assert entry["schedule"] == crontab(hour=4, minute=0)
    assert entry["options"] == {"queue": "training"}
    hourly = schedule["hourly-anomaly-detection"]
    assert hourly["schedule"] == crontab(minute=5)
    assert hourly["options"] == {"queue": "detection"}


def test_training_time_and_timezone_come_from_settings():
    from adsentinel.worker.app import create_celery_app

    settings = load_settings(training_time="02:30", timezone="America/Sao_Paulo")
    app = create_celery_app(settings)
    assert app.conf.timezone == "America/Sao_Paulo"
    assert app.conf.beat_schedule["daily-anomaly-detector-training"]["schedule"] == \
        crontab(hour=2, minute=30)
    assert app.conf.task_acks_late is True and app.conf.task_reject_on_worker_lost is True


def test_every_task_is_routed_to_its_queue():
    from adsentinel.worker import alert_tasks, tasks  # noqa: F401 - registers the tasks
    from adsentinel.worker.app import celery_app

    ours = {name for name in celery_app.tasks if name.startswith("adsentinel.")}
    assert ours == set(TASK_ROUTES)
    queues = {name.removeprefix("adsentinel."): route["queue"] for name, route in TASK_ROUTES.items()}
    assert queues == {"train_anomaly_detectors_all": "training", "train_anomaly_detector": "training",
                      "finish_account_training": "training", "detect_anomalies_all": "detection",
                      "detect_anomalies": "detection", "sync_account": "detection",
                      "deliver_alerts": "alerts", "send_alert_digests": "alerts"}


def test_alerts_are_delivered_every_minute_and_digests_checked_every_five():
    schedule = beat_schedule(load_settings())
    assert schedule["alert-delivery"]["task"] == "adsentinel.deliver_alerts"
    assert schedule["alert-delivery"]["schedule"] == 60.0
    assert schedule["alert-digests"]["schedule"] == crontab(minute="*/5")
    assert {schedule[k]["options"]["queue"] for k in ("alert-delivery", "alert-digests")} == {
        "alerts"}


def test_daily_at_respects_the_timezone_and_dst():
    next_run = daily_at(time(4, 0), ZoneInfo("America/New_York"))
    # 2026-03-08 is the US spring-forward day: 04:00 EDT = 08:00 UTC, the day before 09:00 UTC
    assert next_run(datetime(2026, 3, 7, 10, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert next_run(datetime(2026, 3, 7, 8, 0, tzinfo=UTC)) == \
        datetime(2026, 3, 7, 9, 0, tzinfo=UTC)


def test_hourly_at_minute():
    next_run = hourly_at(5)
    assert next_run(datetime(2026, 1, 1, 10, 4, tzinfo=UTC)) == \
        datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert next_run(datetime(2026, 1, 1, 10, 5, tzinfo=UTC)) == \
        datetime(2026, 1, 1, 11, 5, tzinfo=UTC)


def test_run_schedule_runs_training_before_detection_then_on_schedule():
    order: list[str] = []
    jobs = [Job("training", every(0.2), lambda: order.append("training") or {}),
            Job("detection", every(0.05), lambda: order.append("detection") or {})]
    run_schedule(jobs, stop=threading.Event(), run_first=True, max_runs=6)
    assert order[:2] == ["training", "detection"]
    assert order.count("detection") >= 3 and len(order) == 6
