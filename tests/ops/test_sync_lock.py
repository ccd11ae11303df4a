"""`adsentinel sync` takes the workers' per-account lock: it never overlaps the scheduled sync."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import redis as redis_lib
from ops_world import free_port

from adsentinel.cli.account_locks import ACCOUNT_BUSY_EXIT_CODE, worker_account_lock
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import AdAccount
from adsentinel.worker.locks import account_lock, lock_is_held


@pytest.fixture
def production(fresh_postgres_url, redis_url, tmp_path):
    return load_settings(data_dir=tmp_path / "data", database_url=fresh_postgres_url,
                         broker_url=redis_url)


@pytest.mark.postgres
@pytest.mark.redis
def test_the_cli_lock_is_the_workers_lock(production, redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    with worker_account_lock(production, "sync", 7) as free:
        assert free and lock_is_held(client, "sync", 7)
        with account_lock(client, "sync", 7, None, ttl=60) as worker_got_it:
            assert not worker_got_it  # a scheduled sync would wait and retry
    assert not lock_is_held(client, "sync", 7)
    with (account_lock(client, "sync", 7, None, ttl=60),
          worker_account_lock(production, "sync", 7) as free):
        assert not free


def test_embedded_sqlite_has_no_broker_to_lock_with(settings):
    with worker_account_lock(settings, "sync", 1) as free:  # no Redis needed at all
        assert free


@pytest.mark.postgres
def test_a_broker_that_does_not_answer_is_logged_and_the_sync_goes_on(fresh_postgres_url,
                                                                      tmp_path, caplog):
    settings = load_settings(data_dir=tmp_path / "data", database_url=fresh_postgres_url,
                             broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.WARNING), worker_account_lock(settings, "sync", 1) as free:
        assert free
    assert "runs without the workers' lock" in caplog.text


@pytest.mark.slow  # a CLI process start
@pytest.mark.postgres
@pytest.mark.redis
def test_sync_leaves_an_account_the_workers_are_syncing_and_exits_75(production, redis_url,
                                                                     tmp_path):
    with session_scope(make_session_factory(open_database(production))) as session:
        account = AdAccount(name="Loja Busy", platform_account_id="act_42",
                            credentials_ref="env:META_TOKEN_BUSY")
        session.add(account)
        session.flush()
        account_id = account.id
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"),
               ADSENTINEL_DATABASE_URL=production.effective_database_url,
               ADSENTINEL_BROKER_URL=redis_url, META_TOKEN_BUSY="EAAtoken", COLUMNS="200")
    client = redis_lib.Redis.from_url(redis_url)
    with account_lock(client, "sync", account_id, None, ttl=120) as held:
        assert held
        done = subprocess.run([sys.executable, "-m", "adsentinel", "sync", "--account",
                               "Loja Busy"], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=180)
    assert done.returncode == ACCOUNT_BUSY_EXIT_CODE, done.stderr
    assert "a scheduled sync of this account is running" in done.stdout
