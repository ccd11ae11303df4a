"""The Celery application: Redis broker, late acknowledgement, time limits, Beat schedule.

Run workers with ``adsentinel worker -Q training,detection`` (or
``celery -A adsentinel.worker worker -Q training,detection``) and exactly one
``adsentinel beat``.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from adsentinel.config import Settings, load_settings
from adsentinel.worker.schedule import TASK_ROUTES, beat_schedule


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app configured from ``settings``."""
    broker = settings.broker_url.get_secret_value()
    app = Celery("adsentinel", broker=broker, backend=broker,
                 include=["adsentinel.worker.tasks", "adsentinel.worker.alert_tasks"])
    app.conf.update(
        timezone=settings.timezone,
        enable_utc=True,
        task_routes=TASK_ROUTES,
        task_default_queue="detection",
        beat_schedule=beat_schedule(settings),
        # A task is acknowledged only once done: a worker killed mid-task leaves it to be
        # delivered again (after the visibility timeout), and tasks are idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        result_backend_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        result_expires=86400,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # adsentinel's own logging handler stays in charge (stderr); redirecting stdout and
        # stderr into logging as well would loop through that handler and lose every line.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        # Redis restarted: a result is stored once it is back instead of being lost (the task's
        # work is done by then), and a message is published once it is back (about 40 s allowed)
        result_backend_always_retry=True,
        result_backend_max_retries=30,
        task_publish_retry_policy={"max_retries": 10, "interval_start": 0,
                                   "interval_step": 1, "interval_max": 5},
    )
    return app


celery_app = create_celery_app(load_settings())


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    """A forked child must not reuse its parent's database connections."""
    from adsentinel.worker.runtime import _runtime_for

    _runtime_for.cache_clear()


from adsentinel.worker import observability  # noqa: E402,F401  (task log context, metrics)
