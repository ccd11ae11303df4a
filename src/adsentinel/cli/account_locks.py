"""The per-account locks of the workers, taken by CLI commands that do the same work, so that
`adsentinel sync` typed by a person never overlaps the scheduled sync of the same account."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adsentinel.config import Settings

log = logging.getLogger(__name__)

#: exit code of a command that left an account alone because a scheduled run held it
ACCOUNT_BUSY_EXIT_CODE = 75  # EX_TEMPFAIL


@contextmanager
def worker_account_lock(settings: Settings, kind: str, account_id: int) -> Iterator[bool]:
    """The workers' lock ``adsentinel:lock:<kind>:<account>`` (see
    :func:`adsentinel.worker.locks.account_lock`) on a deployment with a broker (PostgreSQL).

    Yields ``True`` when this command may go on (lock taken, or the embedded SQLite default,
    which has no broker and no workers), ``False`` when a scheduled run holds it. A broker that
    does not answer is logged and the command goes on without the lock.
    """
    if settings.effective_database_url.startswith("sqlite"):
        yield True
        return
    import redis

    from adsentinel.worker.locks import account_lock

    client = redis.Redis.from_url(settings.broker_url.get_secret_value(),
                                  socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        log.warning("the broker at %s does not answer (%s): %s of account %s runs without the "
                    "workers' lock", settings.masked()["broker_url"], exc, kind, account_id)
        yield True
        return
    with account_lock(client, kind, account_id, None, ttl=settings.task_time_limit) as acquired:
        yield acquired
