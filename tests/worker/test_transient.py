"""A database or broker briefly away is ridden out inside the task, and a lock that cannot be
released once the work is done does not fail the task (which would lose its result). The lock
tests stop and start a Redis server of their own (``redis-server`` on a free port)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from contextlib import suppress

import pytest
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.exc import OperationalError

from adsentinel.worker.locks import account_lock, lock_is_held
from adsentinel.worker.transient import ATTEMPTS, ride_out
from service_checks import service_missing


def _flaky(failures: list[Exception], value: str = "done"):
    calls = []

    def work():
        calls.append(time.monotonic())
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return value

    return work, calls


def test_transient_failures_are_tried_again_with_growing_waits():
    down = OperationalError("SELECT 1", {}, Exception("terminating connection"))
    work, calls = _flaky([down, redis_lib.exceptions.ConnectionError("Error 111"), down])
    waits = []
    assert ride_out("detect of account 1", work, sleep=waits.append, jitter=lambda: 0.0) == "done"
    assert len(calls) == 4
    assert waits == [1.0, 2.0, 4.0]


def test_an_outage_longer_than_every_try_raises_the_last_failure():
    errors = [OSError(f"disk busy {n}") for n in range(ATTEMPTS)]
    work, calls = _flaky(errors)
    waits = []
    with pytest.raises(OSError, match=f"disk busy {ATTEMPTS - 1}"):
        ride_out("train of account 1", work, sleep=waits.append, jitter=lambda: 1.0)
    assert len(calls) == ATTEMPTS
    assert waits == [min(30.0, 2.0 ** n) * 1.25 for n in range(ATTEMPTS - 1)]


def test_a_real_error_is_not_tried_again():
    work, calls = _flaky([ValueError("bad data")])
    with pytest.raises(ValueError, match="bad data"):
        ride_out("detect of account 1", work, sleep=lambda s: pytest.fail("slept"))
    assert len(calls) == 1


class _OwnRedis:
    """A redis-server on a free port that the test can stop and start again; it keeps its data
    across restarts (append-only file), as a production Redis should."""

    def __init__(self, folder) -> None:
        if shutil.which("redis-server") is None:
            service_missing("redis-server (Debian package redis-server)", "not installed")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.folder = folder
        # no retries inside redis-py: what is ridden out here is adsentinel's own doing
        self.client = redis_lib.Redis(port=self.port, socket_connect_timeout=1,
                                      retry=Retry(NoBackoff(), 0))

    def start(self) -> None:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port",
                        str(self.port), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                        "--dir",
                        str(self.folder), "--pidfile", str(self.folder / "redis.pid")],
                       check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client.ping():
                    return
            except redis_lib.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        with suppress(redis_lib.exceptions.ConnectionError):  # the server closes the connection as it goes
            self.client.shutdown(nosave=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client.ping()
                time.sleep(0.05)
            except redis_lib.exceptions.ConnectionError:
                return


@pytest.fixture
def own_redis(tmp_path):
    server = _OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_lock_is_released_once_redis_is_back(own_redis, monkeypatch):
    monkeypatch.setattr("adsentinel.worker.transient.MAX_WAIT_SECONDS", 0.5)
    restarter = threading.Timer(1.0, own_redis.start)
    with account_lock(own_redis.client, "detect", 7, None, ttl=60) as acquired:
        assert acquired
        own_redis.stop()  # the work finishes while Redis is down; its append-only file keeps
        restarter.start()  # the lock, which must not then block the account for the ttl
    restarter.join()
    assert not lock_is_held(own_redis.client, "detect", 7)  # released: no hour-long block


def test_lock_not_released_because_redis_stays_away_does_not_fail_the_work(own_redis, caplog,
                                                                            monkeypatch):
    caplog.set_level(logging.WARNING, logger="adsentinel.worker.locks")
    monkeypatch.setattr("adsentinel.worker.transient.MAX_WAIT_SECONDS", 0.01)
    with account_lock(own_redis.client, "detect", 7, None, ttl=60) as acquired:
        assert acquired
        own_redis.stop()  # the work finishes while Redis is down
        result = "stored"
    assert result == "stored"
    assert any("not released (Redis unreachable" in r.getMessage() and "expires in 60 s"
               in r.getMessage() for r in caplog.records)


def test_taking_a_lock_waits_for_redis_to_come_back(own_redis, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="adsentinel.worker.transient")
    monkeypatch.setattr("adsentinel.worker.transient.MAX_WAIT_SECONDS", 0.5)
    own_redis.stop()
    restarter = threading.Timer(1.0, own_redis.start)
    restarter.start()
    try:
        with account_lock(own_redis.client, "train", 7, "c1-9", ttl=60) as acquired:
            assert acquired
            assert lock_is_held(own_redis.client, "train", 7, "c1-9")
    finally:
        restarter.join()
    assert not lock_is_held(own_redis.client, "train", 7, "c1-9")
    assert any("taking lock adsentinel:lock:train:7:c1-9 interrupted" in r.getMessage()
               for r in caplog.records)
