"""The Beat schedule and queue routing, built from the settings."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from adsentinel.config import Settings

TRAINING_QUEUE = "training"
DETECTION_QUEUE = "detection"
ALERTS_QUEUE = "alerts"  # short tasks: never queued behind a long detection chunk

ALERT_DELIVERY_SECONDS = 60.0
ALERT_DIGEST_CHECK_MINUTES = 5  # a digest goes out at the first check after its local time

TASK_ROUTES: dict[str, dict[str, str]] = {
    "adsentinel.train_anomaly_detectors_all": {"queue": TRAINING_QUEUE},
    "adsentinel.train_anomaly_detector": {"queue": TRAINING_QUEUE},
    "adsentinel.finish_account_training": {"queue": TRAINING_QUEUE},
    "adsentinel.detect_anomalies_all": {"queue": DETECTION_QUEUE},
    "adsentinel.detect_anomalies": {"queue": DETECTION_QUEUE},
    # the hourly sync runs just before its account's detection, on the same workers
    "adsentinel.sync_account": {"queue": DETECTION_QUEUE},
    "adsentinel.deliver_alerts": {"queue": ALERTS_QUEUE},
    "adsentinel.send_alert_digests": {"queue": ALERTS_QUEUE},
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The daily training (``TRAINING_TIME``, 04:00 by default), the hourly detection, the alert
    outbox delivered every minute and the daily digests."""
    return {
        "daily-anomaly-detector-training": {
            "task": "adsentinel.train_anomaly_detectors_all",
            "schedule": crontab(hour=settings.training_time.hour,
                                minute=settings.training_time.minute),
            "options": {"queue": TRAINING_QUEUE},
        },
        "hourly-anomaly-detection": {
            "task": "adsentinel.detect_anomalies_all",
            "schedule": crontab(minute=settings.detection_minute),
            "options": {"queue": DETECTION_QUEUE},
        },
        "alert-delivery": {
            "task": "adsentinel.deliver_alerts",
            "schedule": ALERT_DELIVERY_SECONDS,
            "options": {"queue": ALERTS_QUEUE, "expires": ALERT_DELIVERY_SECONDS},
        },
        "alert-digests": {
            "task": "adsentinel.send_alert_digests",
            "schedule": crontab(minute=f"*/{ALERT_DIGEST_CHECK_MINUTES}"),
            "options": {"queue": ALERTS_QUEUE},
        },
    }
