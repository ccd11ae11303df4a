"""Celery worker, Beat schedule and the embedded single-process scheduler.

``celery -A adsentinel.worker`` finds the application as :data:`app`.
"""

from adsentinel.worker.app import celery_app

app = celery_app

__all__ = ["app", "celery_app"]
