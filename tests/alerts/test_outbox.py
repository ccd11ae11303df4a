"""The outbox on SQLite and PostgreSQL: enqueue is idempotent, a row is claimed once, and a
process killed between sending and recording loses nothing and repeats detectably."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from alert_builders import NOW, YESTERDAY, add_anomaly, build_shop
from sqlalchemy import select

from adsentinel.alerts import outbox
from adsentinel.alerts.config import add_channel
from adsentinel.alerts.service import deliver_alerts, plan_alerts
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AlertOutbox


def _message(channel_id: int, key: str) -> outbox.NewMessage:
    return outbox.NewMessage(channel_id=channel_id, anomaly_id=None, kind="opened",
                             idempotency_key=key, subject="s", payload={"k": key},
                             next_attempt_at=NOW)


def test_enqueue_skips_known_keys_and_claims_each_row_once(session_factory):
    shop = build_shop(session_factory)
    channel = add_channel(session_factory=session_factory, account_id=shop.account_id,
                          kind="slack", target="env:HOOKS_EXAMPLE_URL")
    with session_scope(session_factory) as session:
        assert outbox.enqueue(session, [_message(channel, f"k{i}") for i in range(5)], NOW) == 5
    with session_scope(session_factory) as session:  # the next hourly run plans them again
        assert outbox.enqueue(session, [_message(channel, f"k{i}") for i in range(6)], NOW) == 1

    first = outbox.claim_due(session_factory, NOW, limit=4, lease_seconds=60)
    second = outbox.claim_due(session_factory, NOW, limit=4, lease_seconds=60)
    assert len(first) == 4 and len(second) == 2
    assert not {m.id for m in first} & {m.id for m in second}
    assert outbox.claim_due(session_factory, NOW + timedelta(seconds=30)) == []
    # a lease that ran out (the claimer died) makes the rows due again, attempts counted
    again = outbox.claim_due(session_factory, NOW + timedelta(seconds=61))
    assert len(again) == 6 and {m.attempts for m in again} == {2}


def test_concurrent_claims_never_share_a_row(session_factory):
    """Two deliverers claiming at once (threads, separate connections) split the rows."""
    from concurrent.futures import ThreadPoolExecutor

    shop = build_shop(session_factory)
    channel = add_channel(session_factory=session_factory, account_id=shop.account_id,
                          kind="slack", target="env:HOOKS_EXAMPLE_URL")
    with session_scope(session_factory) as session:
        outbox.enqueue(session, [_message(channel, f"k{i}") for i in range(40)], NOW)
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: outbox.claim_due(session_factory, NOW, limit=5),
                                range(8)))
    claimed = [m.id for batch in batches for m in batch]
    assert len(claimed) == 40 and len(set(claimed)) == 40


_CRASHING_DELIVERY = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.alerts.service import deliver_alerts

    data_dir, marker, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
    settings = load_settings(data_dir=data_dir)
    factory = make_session_factory(open_database(settings))

    def stop_here(message):  # the receiver has the message; it is not recorded as sent yet
        with open(marker, "w") as handle:
            handle.write(message.idempotency_key)
        time.sleep(600)

    deliver_alerts(session_factory=factory, settings=settings, now=now, after_send=stop_here)
""")


@pytest.mark.slow
def test_killed_between_send_and_commit_repeats_with_the_same_key(
        settings, sqlite_factory, http_receiver, monkeypatch, tmp_path):
    monkeypatch.setenv("ALERT_HOOK_KEY", "k3y")
    shop = build_shop(sqlite_factory)
    add_channel(session_factory=sqlite_factory, account_id=shop.account_id, kind="webhook",
                target=http_receiver.ref, secret_ref="env:ALERT_HOOK_KEY")
    add_anomaly(shop, shop.campaign, YESTERDAY)
    add_anomaly(shop, shop.ads[0], YESTERDAY, metric="ctr", direction="down", actual=0.004,
                expected=0.02)
    plan_alerts(session_factory=sqlite_factory, settings=settings, account_id=shop.account_id,
                now=NOW)

    script = tmp_path / "deliver.py"
    script.write_text(_CRASHING_DELIVERY)
    marker = tmp_path / "sent.marker"
    env = {**os.environ, "ALERT_HOOK_KEY": "k3y",
           "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    child = subprocess.Popen([sys.executable, str(script), str(settings.data_dir), str(marker),
                              NOW.isoformat()], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the delivery process never reached the send"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert len(http_receiver.requests) == 1
    crashed_key = marker.read_text()

    with sqlite_factory() as session:
        statuses = {r.idempotency_key: r.status for r in session.scalars(select(AlertOutbox))}
    assert statuses[crashed_key] == "pending" and len(statuses) == 2

    # before the lease runs out nothing is resent; after it, everything goes out
    assert deliver_alerts(session_factory=sqlite_factory, settings=settings,
                          now=NOW + timedelta(seconds=10))["sent"] == 0
    result = deliver_alerts(session_factory=sqlite_factory, settings=settings,
                            now=NOW + timedelta(seconds=outbox.DEFAULT_LEASE_SECONDS + 1))
    assert result["sent"] == 2

    keys = [r.headers["Idempotency-Key"] for r in http_receiver.requests]
    assert len(keys) == 3 and keys.count(crashed_key) == 2  # the repeat is detectable
    assert len(set(keys)) == 2  # and the other alert was not lost
    repeats = [r.body for r in http_receiver.requests if r.headers["Idempotency-Key"] == crashed_key]
    assert repeats[0] == repeats[1]
    assert json.loads(repeats[0])["idempotency_key"] == crashed_key
    with sqlite_factory() as session:
        assert {r.status for r in session.scalars(select(AlertOutbox))} == {"sent"}
    assert date.fromisoformat(json.loads(repeats[0])["incident"]["start_day"]) == YESTERDAY


def test_plan_and_deliver_on_each_database(db_settings, session_factory, http_receiver):
    """The whole path, opened then recovered, on SQLite and PostgreSQL alike."""
    from alert_builders import add_days

    shop = build_shop(session_factory)
    add_channel(session_factory=session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref, quiet_start="22:00", quiet_end="07:00")
    add_anomaly(shop, shop.campaign, YESTERDAY)
    for hour in range(3):
        moment = NOW + timedelta(hours=hour)
        plan_alerts(session_factory=session_factory, settings=db_settings,
                    account_id=shop.account_id, now=moment)
        deliver_alerts(session_factory=session_factory, settings=db_settings, now=moment)
    add_days(shop, YESTERDAY, date(2026, 11, 20))
    night = NOW.replace(hour=23) + timedelta(days=1)
    plan_alerts(session_factory=session_factory, settings=db_settings,
                account_id=shop.account_id, now=night)
    assert deliver_alerts(session_factory=session_factory, settings=db_settings,
                          now=night)["sent"] == 0  # quiet hours
    morning = night.replace(hour=7) + timedelta(days=1)
    assert deliver_alerts(session_factory=session_factory, settings=db_settings,
                          now=morning)["sent"] == 1
    kinds = [json.loads(r.body)["text"].split("]")[0] for r in http_receiver.requests]
    assert kinds == ["[HIGH", "[RECOVERED"]


def test_prune_keeps_pending_rows_and_recent_history(sqlite_factory):
    shop = build_shop(sqlite_factory)
    channel = add_channel(session_factory=sqlite_factory, account_id=shop.account_id,
                          kind="slack", target="env:HOOKS_EXAMPLE_URL")
    old = NOW - timedelta(days=200)
    with session_scope(sqlite_factory) as session:
        outbox.enqueue(session, [_message(channel, "old-sent"), _message(channel, "old-pending"),
                                 _message(channel, "old-failed")], old)
        outbox.enqueue(session, [_message(channel, "new-sent")], NOW)
        for row in session.scalars(select(AlertOutbox)):
            row.status = {"old-pending": "pending", "old-failed": "failed"}.get(
                row.idempotency_key, "sent")
    assert outbox.prune(sqlite_factory, NOW - timedelta(days=150)) == 2
    with sqlite_factory() as session:
        kept = sorted(session.scalars(select(AlertOutbox.idempotency_key)))
    assert kept == ["new-sent", "old-pending"]
