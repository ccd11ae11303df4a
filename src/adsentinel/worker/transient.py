"""Riding out a short outage of PostgreSQL or Redis inside the task that meets it.

Celery's own retry publishes a new message through the broker. When the broker is the thing that
is away, that publish fails and Celery drops the task (``Reject(requeue=False)``): a restart of
Redis in the middle of a cycle would lose the tasks that were running. So a task first tries
again where it is, with backoff, and only falls back on Celery's retry once the outage has lasted
longer than :data:`ATTEMPTS` tries. Every task's work is idempotent, so trying again is safe.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)

#: failures worth another try: database or broker briefly away, a full or busy disk
TRANSIENT_ERRORS = (OSError, OperationalError, redis.exceptions.ConnectionError)
#: tries in the task; the waits between them are 1, 2, 4, 8, 16, 30 s (+ up to 25 % jitter)
ATTEMPTS = 7
MAX_WAIT_SECONDS = 30.0

T = TypeVar("T")


def ride_out(what: str, work: Callable[[], T], *, attempts: int = ATTEMPTS,
             sleep: Callable[[float], None] = time.sleep,
             jitter: Callable[[], float] = random.random) -> T:
    """``work()``, tried again after a transient failure; the last failure is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise
            wait = min(MAX_WAIT_SECONDS, 2.0 ** (attempt - 1)) * (1 + 0.25 * jitter())
            log.warning("%s interrupted (%s: %s); trying again in %.1f s (try %d of %d)",
                        what, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
                        wait, attempt + 1, attempts)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
