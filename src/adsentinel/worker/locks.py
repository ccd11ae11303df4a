"""Per-account locks in Redis, so that two runs on the same account never overlap.

A lock expires on its own after ``ttl`` seconds (the task's hard time limit), so a worker killed
while holding one blocks the account for at most that long.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from adsentinel.worker.transient import ride_out

log = logging.getLogger(__name__)


@contextmanager
def account_lock(client: redis.Redis, kind: str, account_id: int, part: str | None,
                 ttl: int) -> Iterator[bool]:
    """Try to take the lock ``adsentinel:lock:<kind>:<account>[:<part>]`` without waiting.

    Yields ``True`` when taken (and releases it afterwards), ``False`` when another run holds it.
    Redis briefly away is waited for (:func:`~adsentinel.worker.transient.ride_out`), when taking
    the lock and when releasing it; a lock that cannot be released because Redis stays away
    expires on its own after ``ttl``.
    """
    name = f"adsentinel:lock:{kind}:{account_id}" + (f":{part}" if part else "")
    lock = client.lock(name, timeout=ttl, blocking=False)
    acquired = ride_out(f"taking lock {name}", lock.acquire)
    try:
        yield acquired
    finally:
        if acquired:
            try:
                # with the token kept: redis-py forgets it on the first try of ``release``
                token = lock.local.token
                ride_out(f"releasing lock {name}", lambda: lock.do_release(token))
            except redis.exceptions.LockError:
                pass  # expired meanwhile: another run may own it now, leave it alone
            except redis.exceptions.ConnectionError as exc:
                # the work is done and stored; failing the task now would only lose its result
                log.warning("lock %s not released (Redis unreachable: %s); it expires in %s s",
                            name, exc, ttl)


def lock_is_held(client: redis.Redis, kind: str, account_id: int, part: str | None = None) -> bool:
    """Whether someone holds the lock (for status displays and tests)."""
    name = f"adsentinel:lock:{kind}:{account_id}" + (f":{part}" if part else "")
    return bool(client.exists(name))
