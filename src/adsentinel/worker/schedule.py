"""The Beat schedule and queue routing, built from the settings."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from adsentinel.config import Settings

TRAINING_QUEUE = "training"
DETECTION_QUEUE = "detection"

TASK_ROUTES: dict[str, dict[str, str]] = {
    "adsentinel.train_anomaly_detectors_all": {"queue": TRAINING_QUEUE},
    "adsentinel.train_anomaly_detector": {"queue": TRAINING_QUEUE},
    "adsentinel.finish_account_training": {"queue": TRAINING_QUEUE},
    "adsentinel.detect_anomalies_all": {"queue": DETECTION_QUEUE},
    "adsentinel.detect_anomalies": {"queue": DETECTION_QUEUE},
    # the hourly sync runs just before its account's detection, on the same workers
    "adsentinel.sync_account": {"queue": DETECTION_QUEUE},
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The plan's daily training (04:00 by default) and the hourly detection."""
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
    }
