"""What a worker process needs to run tasks: settings, database sessions, the model store.

Built lazily, once per process (after Celery forks its children, never before, so no database
connection is shared across processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings, load_settings
from adsentinel.db.engine import make_session_factory, open_database


@dataclass(frozen=True)
class Runtime:
    """Per-process handles shared by every task of that process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    pid: int


@lru_cache(maxsize=1)
def _runtime_for(pid: int) -> Runtime:
    settings = load_settings()
    engine = open_database(settings)
    return Runtime(settings, engine, make_session_factory(engine), pid)


def get_runtime() -> Runtime:
    """The runtime of the calling process (rebuilt in a forked child)."""
    return _runtime_for(os.getpid())
