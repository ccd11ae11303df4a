"""A broken sync tells the account's alert channels once, through the outbox, and shows in
`accounts list`: an expired token at once, other failures after N in a row."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from graph_emulator import EmulatedAccount, Fault
from sqlalchemy import select

from adsentinel.accounts.service import add_meta_account, list_accounts
from adsentinel.alerts.messages import render_text, subject_of
from adsentinel.config import load_settings
from adsentinel.db.models import AlertChannel, AlertOutbox
from adsentinel.sync.health import RunOutcome, sync_health
from adsentinel.sync.rate_limits import BackoffPolicy
from adsentinel.sync.service import sync_account

TOKEN = "EAAemulatorToken0000000000000000000002"
ENV = {"META_TOKEN": TOKEN}
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


@pytest.fixture
def db_settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def setup(emulator, session_factory, db_settings):
    account = emulator.add_account(EmulatedAccount(number=777000, name="Clinica"), TOKEN)
    account_id = add_meta_account(session_factory=session_factory,
                                  platform_account_id=account.id, token_env="META_TOKEN",
                                  name="Clinica").id
    with session_factory() as session, session.begin():
        for target in ("http://127.0.0.1:9/hook", "ops@example.com"):
            session.add(AlertChannel(account_id=account_id, kind="webhook" if "http" in target
                                     else "email", target=target))
    settings = db_settings.model_copy(update={"meta_graph_url": emulator.url,
                                              "sync_window_days": 1,
                                              "sync_alert_after_failures": 3})
    return account, account_id, settings


def run(session_factory, settings, account_id, client_factory):
    return sync_account(session_factory=session_factory, settings=settings,
                        account_id=account_id, since=date(2026, 11, 25),
                        client_factory=client_factory, environ=ENV, now=NOW)


def outbox(session_factory) -> list[AlertOutbox]:
    with session_factory() as session:
        rows = session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)).all()
        session.expunge_all()
    return rows


def test_an_expired_token_alerts_every_channel_once(emulator, setup, session_factory,
                                                    client_factory):
    _, account_id, settings = setup
    emulator.expired_tokens.add(TOKEN)
    assert run(session_factory, settings, account_id, client_factory).status == "needs_attention"
    messages = outbox(session_factory)
    assert [m.kind for m in messages] == ["sync_broken", "sync_broken"]
    payload = messages[0].payload
    assert subject_of(payload).startswith("[SYNC BROKEN] Clinica: no fresh Meta data since ")
    text = render_text(payload)
    assert "broken since" in text and "Session has expired" in text
    assert "What to do: Meta access token expired or invalid (code 190)" in text
    assert "META_TOKEN" in text and TOKEN not in text
    listed = list_accounts(session_factory=session_factory, settings=settings)[0]
    assert listed.broken_since is not None and listed.failed_in_a_row == 1
    # skipped runs while it needs attention add nothing
    run(session_factory, settings, account_id, client_factory)
    assert len(outbox(session_factory)) == 2


def test_failures_alert_after_n_in_a_row_and_only_once(emulator, setup, session_factory,
                                                      client_factory):
    account, account_id, settings = setup
    client_factory.changes.update(backoff=BackoffPolicy(max_attempts=1))
    emulator.faults.append(Fault(path=account.id, kind="error", times=100))
    for expected in (0, 0, 2, 2):  # the third failure in a row alerts both channels, once
        assert run(session_factory, settings, account_id, client_factory).status == "failed"
        assert len(outbox(session_factory)) == expected
    listed = list_accounts(session_factory=session_factory, settings=settings)[0]
    assert listed.failed_in_a_row == 4 and listed.needs_attention is None
    assert outbox(session_factory)[0].payload["failed_in_a_row"] == 3

    emulator.faults.clear()
    assert run(session_factory, settings, account_id, client_factory).status == "succeeded"
    assert list_accounts(session_factory=session_factory,
                         settings=settings)[0].broken_since is None


def test_a_new_streak_alerts_again():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    runs = [RunOutcome(5, "failed", start, "b"), RunOutcome(4, "failed", start, "a"),
            RunOutcome(3, "succeeded", start, None), RunOutcome(2, "failed", start, "old")]
    health = sync_health(runs, needs_attention=None, alert_after=2)
    assert (health.broken, health.failed_in_a_row, health.first_failed_run_id) == (True, 2, 4)
    assert sync_health(runs[:1], needs_attention=None, alert_after=2).broken is False
    assert sync_health(runs[:1], needs_attention="token expired", alert_after=2).broken is True
    assert sync_health([RunOutcome(6, "running", start, None), *runs], needs_attention=None,
                       alert_after=2).failed_in_a_row == 2
