"""Shared fixtures: settings on a temporary folder, and databases on SQLite and PostgreSQL.

PostgreSQL and Redis are real servers (127.0.0.1 by default; override with
``ADSENTINEL_TEST_POSTGRES_URL`` / ``ADSENTINEL_TEST_REDIS_URL``). When one is missing the tests that
need it are skipped on a developer's machine and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adsentinel.config import Settings, load_settings
from adsentinel.db.engine import make_session_factory, open_database
from service_checks import POSTGRES_ADMIN_URL, service_missing


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No test reads the developer's ADSENTINEL_* variables or .env file."""
    for name in list(os.environ):
        if name.startswith("ADSENTINEL_") and not name.startswith("ADSENTINEL_TEST_"):
            monkeypatch.delenv(name)
    # the CLI speaks the language of LANG (adsentinel.i18n): tests read English unless they ask
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(tmp_path)
    # a command without ADSENTINEL_DATA_DIR uses the user data folder: the test's own
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    # tests send bad tokens by the hundred from one client; the throttle has its own tests
    monkeypatch.setenv("ADSENTINEL_AUTH_FAILURE_LIMIT", "0")


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Embedded-default settings rooted in the test's temporary folder."""
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test process; dropped at the end."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"adsentinel_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "missing"
        service_missing(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)}", exc)
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_settings(request, tmp_path) -> Iterator[Settings]:
    """Settings on a fresh, empty database of each supported kind."""
    if request.param == "sqlite":
        yield load_settings(data_dir=tmp_path / "data")
        return
    url = request.getfixturevalue("fresh_postgres_url")
    yield load_settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def fresh_postgres_url(postgres_database) -> Iterator[str]:
    """URL of an empty PostgreSQL database of its own, dropped after the test."""
    url = _fresh_postgres_copy(postgres_database)
    try:
        yield url
    finally:
        _drop_postgres(url)


def _fresh_postgres_copy(base_url: str) -> str:
    """An empty database per test (cheap: CREATE DATABASE of an empty template)."""
    url = make_url(base_url)
    name = f"{url.database}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def engine(db_settings):
    """A migrated engine on each database kind."""
    engine = open_database(db_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine):
    return make_session_factory(engine)
