"""Per-account locks in Redis, so that two runs on the same account never overlap.

A lock expires on its own after ``ttl`` seconds (the task's hard time limit), so a worker killed
while holding one blocks the account for at most that long.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


@contextmanager
def account_lock(client: redis.Redis, kind: str, account_id: int, part: str | None,
                 ttl: int) -> Iterator[bool]:
    """Try to take the lock ``adsentinel:lock:<kind>:<account>[:<part>]`` without waiting.

    Yields ``True`` when taken (and releases it afterwards), ``False`` when another run holds it.
    """
    name = f"adsentinel:lock:{kind}:{account_id}" + (f":{part}" if part else "")
    lock = client.lock(name, timeout=ttl, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired meanwhile: another run may own it now, leave it alone


def lock_is_held(client: redis.Redis, kind: str, account_id: int, part: str | None = None) -> bool:
    """Whether someone holds the lock (for status displays and tests)."""
    name = f"adsentinel:lock:{kind}:{account_id}" + (f":{part}" if part else "")
    return bool(client.exists(name))
