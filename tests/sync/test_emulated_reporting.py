"""What the sync reports about itself, over real HTTP against the Graph API emulator: how long it
waits for report jobs, each ad set's attribution setting, and Meta's usage percentages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from graph_emulator import EmulatedAccount
from sqlalchemy import select

from adsentinel.accounts.service import add_meta_account
from adsentinel.config import load_settings
from adsentinel.db.models import Entity, SyncRun
from adsentinel.sync.service import sync_account, sync_before_detection

TOKEN = "EAAemulatorToken0000000000000000000002"
ENV = {"META_TOKEN": TOKEN}
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


@pytest.fixture
def world(emulator):
    return emulator.add_account(EmulatedAccount(number=555000222), TOKEN)


@pytest.fixture
def settings(tmp_path, emulator):
    """SQLite: what is tested here is the HTTP side."""
    return load_settings(data_dir=tmp_path / "data").model_copy(
        update={"meta_graph_url": emulator.url, "sync_window_days": 2})


@pytest.fixture
def account_id(session_factory, world):
    return add_meta_account(session_factory=session_factory, platform_account_id=world.id,
                            token_env="META_TOKEN").id


def sync(session_factory, settings, account_id, client_factory, *, since=DAY1, now=NOW):
    return sync_account(session_factory=session_factory, settings=settings,
                        account_id=account_id, since=since, client_factory=client_factory,
                        environ=ENV, now=now)


def posted_ranges(emulator, world, level: str) -> list[str]:
    return [p["time_range"] for p in emulator.asked("POST", rf"{world.id}/insights")
            if p["level"] == level]


# --- report jobs ------------------------------------------------------------------------------


def test_a_report_job_running_most_of_an_hour_is_waited_for_not_split(
        emulator, world, session_factory, settings, account_id, client_factory, clock):
    """Meta's jobs can take up to an hour: one running 35 minutes is polled to its end (the
    old 15-minute limit split it and started it again), with pauses of at most a minute."""
    emulator.job_polls = 40  # 1+2+...+32 s, then 34 polls a minute apart: about 35 minutes
    client_factory.changes.update(async_threshold_rows=1)
    summary = sync(session_factory, settings, account_id, client_factory, since=DAY2)
    assert summary.status == "succeeded", summary.reason
    assert posted_ranges(emulator, world, "ad") == ['{"since":"2026-11-25","until":"2026-11-25"}']
    assert max(clock.sleeps) == 60.0
    first_job = clock.sleeps[:39]
    assert first_job[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert 30 * 60 < sum(first_job) < 60 * 60


def test_a_job_still_running_past_the_poll_timeout_is_split(
        emulator, world, session_factory, settings, account_id, client_factory):
    client_factory.changes.update(async_threshold_rows=1, poll_timeout_seconds=600)
    emulator.job_polls = 20  # about 17 minutes: beyond the 10 minutes allowed here
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "failed"  # every smaller job runs as long
    assert "(last status 'timed out')" in summary.reason
    assert posted_ranges(emulator, world, "ad")[:2] == [
        '{"since":"2026-11-24","until":"2026-11-25"}',
        '{"since":"2026-11-24","until":"2026-11-24"}']


def test_the_scheduled_sync_stops_waiting_for_jobs_within_half_its_time_limit(
        emulator, world, session_factory, settings, account_id, client_factory, clock):
    """A job running 35 minutes inside an hourly task whose soft limit is 20 minutes: the sync
    gives up after 10 (half the limit, leaving detection its turn) and says why."""
    settings = settings.model_copy(update={"task_soft_time_limit": 1200})
    emulator.job_polls = 40
    client_factory.changes.update(async_threshold_rows=1)
    result = sync_before_detection(session_factory=session_factory, settings=settings,
                                   account_id=account_id, client_factory=client_factory,
                                   environ=ENV, now=NOW)
    assert result["status"] == "failed"
    assert "were waited for 600 s in this sync, its whole allowance" in result["reason"]
    assert "still 'Job Running' at 50%" in result["reason"]
    assert sum(clock.sleeps) <= 600
    assert len(posted_ranges(emulator, world, "ad")) == 1  # not split: it was only slow
    with session_factory() as session:
        run = session.scalars(select(SyncRun)).one()
        assert run.status == "failed" and "whole allowance" in run.error


# --- attribution ------------------------------------------------------------------------------


def test_each_ad_set_keeps_the_attribution_setting_of_the_newest_day(
        emulator, world, session_factory, settings, account_id, client_factory):
    """A 9-day window is two date ranges, the newest first; an ad set whose setting changed on
    the last day keeps the new one, not the one the older range reports."""
    changed = world.adset_ids()[1][0]
    world.attribution_from[changed] = (DAY2, "28d_click_1d_view")
    summary = sync(session_factory, settings, account_id, client_factory,
                   since=DAY2 - timedelta(days=8))
    assert summary.status == "succeeded", summary.reason
    assert summary.ranges_stored == 2
    with session_factory() as session:
        stored = dict(session.execute(select(Entity.platform_id, Entity.attribution_setting)
                                      .where(Entity.level == "adset")).all())
        others = session.scalars(select(Entity.attribution_setting)
                                 .where(Entity.level != "adset")).all()
    assert stored == {sid: ("28d_click_1d_view" if sid == changed else
                            world.attribution_setting(sid, DAY1))
                      for sid, _ in world.adset_ids()}
    assert set(others) == {None}


# --- usage ------------------------------------------------------------------------------------


def test_the_highest_usage_of_each_budget_is_recorded_on_the_run(
        emulator, world, session_factory, settings, account_id, client_factory):
    emulator.usage_headers = {
        "X-Business-Use-Case-Usage": json.dumps({"555000222": [
            {"type": "ads_insights", "call_count": 12, "total_cputime": 41, "total_time": 9,
             "estimated_time_to_regain_access": 0},
            {"type": "ads_management", "call_count": 4, "total_cputime": 1, "total_time": 2,
             "estimated_time_to_regain_access": 0}]}),
        "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 17.5, "reset_time_duration": 0}),
        "X-App-Usage": json.dumps({"call_count": 6, "total_cputime": 3, "total_time": 2}),
        "x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 8, "acc_id_util_pct": 22}),
    }
    summary = sync(session_factory, settings, account_id, client_factory)
    wanted = {"ad_account": 17.5, "app": 6.0, "business_use_case_ads_insights": 41.0,
              "business_use_case_ads_management": 4.0, "insights_account": 22.0,
              "insights_app": 8.0}
    assert summary.status == "succeeded", summary.reason
    assert summary.api_usage_percent == wanted
    with session_factory() as session:
        assert session.scalars(select(SyncRun)).one().counts["api_usage_percent"] == wanted


def test_a_throttled_run_keeps_its_usage_on_the_failed_run(
        emulator, world, session_factory, settings, account_id, client_factory):
    from graph_emulator import Fault

    client_factory.changes.update(max_throttle_wait_seconds=10)
    emulator.faults.append(Fault(path=rf"{world.id}/insights", kind="throttle", times=50))
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "failed"
    with session_factory() as session:
        run = session.scalars(select(SyncRun)).one()
    # the throttling answer says 100 % of the business use case and of the ad account
    assert run.counts["api_usage_percent"]["ad_account"] == 100.0
    assert run.counts["api_usage_percent"]["business_use_case_ads_insights"] == 100.0


# --- currency and timezone --------------------------------------------------------------------


def test_accounts_add_on_a_synced_account_records_a_currency_change_too(
        emulator, world, session_factory, settings, account_id, client_factory):
    """`accounts add` with a new token reads the account and stores its currency: a change
    since the last sync is recorded as the sync would, not silently overwritten."""
    from adsentinel.accounts.service import probe_meta_account, record_account_facts
    from adsentinel.db.models import AccountSettingChange

    sync(session_factory, settings, account_id, client_factory)
    world.currency = "BRL"
    info = probe_meta_account(settings=settings, platform_account_id=world.id,
                              token_env="META_TOKEN", environ=ENV,
                              client_factory=client_factory)
    record_account_facts(session_factory=session_factory, account_id=account_id, info=info,
                         now=NOW + timedelta(days=1))
    with session_factory() as session:
        changes = session.execute(select(AccountSettingChange.setting,
                                         AccountSettingChange.old_value,
                                         AccountSettingChange.new_value,
                                         AccountSettingChange.changed_on)).all()
    assert changes == [("currency", "EUR", "BRL", DAY2 + timedelta(days=1))]
    again = sync(session_factory, settings, account_id, client_factory,
                 now=NOW + timedelta(days=1))
    assert again.notes == []  # already recorded
