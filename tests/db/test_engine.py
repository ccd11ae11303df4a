"""Database creation and migration on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from adsentinel.db import migrate
from adsentinel.db.engine import create_db_engine, open_database, session_scope
from adsentinel.db.models import AdAccount, Base, DailyInsight, Entity
from adsentinel.errors import StorageError


def test_first_use_creates_every_table(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_daily_insight_is_unique_per_entity_and_day(session_factory):
    from datetime import date

    with session_scope(session_factory) as session:
        account = AdAccount(name="a")
        ad = Entity(account=account, level="ad", platform_id="1")
        session.add_all([account, ad])
        session.flush()
        session.add(DailyInsight(entity_id=ad.id, day=date(2026, 1, 1)))
    with pytest.raises(IntegrityError), session_scope(session_factory) as session:
        session.add(DailyInsight(entity_id=ad.id, day=date(2026, 1, 1)))


def test_deleting_an_account_removes_its_entities(engine, session_factory):
    with session_scope(session_factory) as session:
        account = AdAccount(name="gone")
        session.add_all([account, Entity(account=account, level="campaign", platform_id="c")])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ad_accounts"))
        assert conn.execute(text("SELECT COUNT(*) FROM entities")).scalar() == 0


def test_postgres_behind_head_is_refused_until_db_upgrade(fresh_postgres_url, tmp_path):
    from adsentinel.config import load_settings

    settings = load_settings(data_dir=tmp_path, database_url=fresh_postgres_url)
    engine = open_database(settings)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    with pytest.raises(StorageError, match="adsentinel db upgrade"):
        open_database(settings)
    engine.dispose()


def test_tables_without_migration_record_are_not_touched(tmp_path):
    from adsentinel.config import load_settings

    settings = load_settings(data_dir=tmp_path)
    engine = create_db_engine(settings.effective_database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE entities (id INTEGER PRIMARY KEY)"))
    with pytest.raises(StorageError, match="no migration record"):
        open_database(settings)


def test_migrations_create_exactly_the_models(engine):
    """The Alembic chain and the SQLAlchemy models describe the same schema (no drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert drift == []
