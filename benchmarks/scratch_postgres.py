"""A throw-away PostgreSQL database for a benchmark run, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(admin_url: str | None = None) -> Iterator[str]:
    """Create an empty database beside ``admin_url`` (default: ``ADSENTINEL_TEST_POSTGRES_URL``
    or the local server) and yield its URL; it is dropped on exit, whatever happened."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(admin_url or os.environ.get("ADSENTINEL_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL))
    name = f"adsentinel_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # outlives restarts
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
