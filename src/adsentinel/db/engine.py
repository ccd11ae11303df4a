"""Engines and sessions. The first use of a fresh database creates and migrates it.

SQLite (the embedded default) and PostgreSQL behave the same to the rest of the code; the
differences (foreign keys pragma, WAL) are handled here; :mod:`adsentinel.db.migrate` holds the
schema's revisions and the advisory lock around migrations.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings
from adsentinel.db import migrate
from adsentinel.errors import StorageError

log = logging.getLogger(__name__)


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite files get their folder, WAL and foreign keys.

    A new SQLite file is created with mode 0600 in a folder created with mode 0700 (it holds
    channel settings and token hashes; SQLite gives its -wal and -shm files the same mode).
    """
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private_file(database.split("?", 1)[0])
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _create_private_file(path: str) -> None:
    """Create an empty ``path`` with mode 0600 unless it exists; SQLite then uses it as a new
    database. Any failure is left for SQLite to report with its own message."""
    with suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(settings: Settings, *, migrate_fresh: bool = True) -> Engine:
    """Return an engine on the configured database, ready for use.

    A database without adsentinel's tables is created and migrated to the latest schema.
    An embedded SQLite database that is behind is upgraded too; a PostgreSQL database that is
    behind is refused with a hint to run ``adsentinel db upgrade`` (deployments upgrade
    explicitly, once, not from every worker at once).
    """
    url = settings.effective_database_url
    engine = create_db_engine(url)
    try:
        current = migrate.current_revision(engine)
    except OperationalError as exc:
        raise StorageError(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{_first_line(exc)}",
            hint="check ADSENTINEL_DATABASE_URL and that the server is running",
        ) from None
    head = migrate.head_revision()
    if current == head:
        return engine
    if current is None and migrate_fresh and not _has_foreign_tables(engine):
        log.info("creating a fresh database at %s", engine.url.render_as_string(hide_password=True))
        migrate.upgrade(engine)
    elif engine.dialect.name == "sqlite" and migrate_fresh:
        log.info("upgrading the embedded database from %s to %s", current, head)
        migrate.upgrade(engine)
    elif migrate_fresh:
        raise StorageError(
            f"the database schema is at revision {current or 'none'}, this version of adsentinel "
            f"needs {head}",
            hint="run `adsentinel db upgrade` once for the deployment",
        )
    return engine


def _has_foreign_tables(engine: Engine) -> bool:
    """True when the database holds tables of adsentinel but no migration record (unsafe)."""
    from adsentinel.db.models import Base

    names = set(inspect(engine).get_table_names())
    ours = names & set(Base.metadata.tables)
    if ours:
        raise StorageError(
            f"the database has adsentinel tables ({', '.join(sorted(ours))}) but no migration "
            "record (alembic_version)",
            hint="point ADSENTINEL_DATABASE_URL at an empty database or restore alembic_version",
        )
    return False


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(exc: SQLAlchemyError) -> str:
    driver_error = getattr(exc, "orig", None)  # (DBAPIError's: the driver's own error)
    return str(driver_error if driver_error else exc).strip().splitlines()[0]
