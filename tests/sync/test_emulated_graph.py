"""The sync over real HTTP against the Graph API emulator (graph_emulator.py), reached through
``ADSENTINEL_META_GRAPH_URL`` and the SDK's own ``requests`` session: paging, deleted and
archived ads, async jobs that fail and get split, throttling, a stalled connection, an expired
token, a retired version and ``appsecret_proof``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from graph_emulator import EmulatedAccount, Fault, insight_rows
from sqlalchemy import func, select

from adsentinel.accounts.service import add_meta_account
from adsentinel.config import load_settings
from adsentinel.db.models import AccountSettingChange, AdAccount, DailyInsight, Entity, SyncRun
from adsentinel.sync.account_changes import comparable_since
from adsentinel.sync.rate_limits import BackoffPolicy
from adsentinel.sync.service import date_ranges, earliest_insights_day, sync_account

TOKEN = "EAAemulatorToken0000000000000000000001"
ENV = {"META_TOKEN": TOKEN}
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


@pytest.fixture
def db_settings(tmp_path):
    """SQLite only: what is tested here is the HTTP side (the storing runs on both kinds in
    test_sync_service.py)."""
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def world(emulator):
    account = emulator.add_account(EmulatedAccount(number=555000111), TOKEN)
    return account


@pytest.fixture
def settings(db_settings, emulator):
    return db_settings.model_copy(update={"meta_graph_url": emulator.url,
                                          "sync_window_days": 2})


@pytest.fixture
def account_id(session_factory, world):
    return add_meta_account(session_factory=session_factory, platform_account_id=world.id,
                            token_env="META_TOKEN").id


def sync(session_factory, settings, account_id, client_factory, *, now=NOW, since=DAY1,
         environ=ENV):
    return sync_account(session_factory=session_factory, settings=settings,
                        account_id=account_id, since=since, client_factory=client_factory,
                        environ=environ, now=now)


def ad_days(session_factory) -> dict[tuple[str, date], DailyInsight]:
    with session_factory() as session:
        rows = session.execute(select(Entity.platform_id, DailyInsight)
                               .join(DailyInsight, DailyInsight.entity_id == Entity.id)
                               .where(Entity.level == "ad")).all()
        session.expunge_all()
    return {(pid, row.day): row for pid, row in rows}


def expected_ad_days(account: EmulatedAccount, *days: date) -> dict[tuple[str, date], dict]:
    return {(ad_id, day): numbers for day in days for index, ad_id, _, _ in account.ads()
            if (numbers := account.ad_day(index, ad_id, day)) is not None}


def test_paging_reads_every_object_and_row(emulator, world, session_factory, settings,
                                           account_id, client_factory):
    world.adsets_per_campaign, world.ads_per_adset = 3, 40  # 240 ads, ~430 ad days
    emulator.page_limit_max = 100
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    expected = expected_ad_days(world, DAY1, DAY2)
    stored = ad_days(session_factory)
    assert summary.ads == 240 and summary.insight_rows == len(expected) == len(stored)
    some = next(iter(expected))
    assert stored[some].spend == float(expected[some]["spend"])
    asked = [p for p in emulator.asked("GET", rf"{world.id}/insights") if p["level"] == "ad"]
    assert len(asked) == -(-len(expected) // 100)  # every page once
    assert [p.get("after") is not None for p in asked] == [False] + [True] * (len(asked) - 1)
    assert len(emulator.asked("GET", rf"{world.id}/ads")) == 3


def test_link_clicks_attribution_and_results(emulator, world, session_factory, settings,
                                             account_id, client_factory):
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    asked = emulator.asked("GET", rf"{world.id}/insights")[0]
    assert asked["use_unified_attribution_setting"] == "true"
    assert "inline_link_clicks" in asked["fields"].split(",")
    assert "clicks" not in asked["fields"].split(",")
    stored = ad_days(session_factory)
    for key, numbers in expected_ad_days(world, DAY1).items():
        row = stored[key]
        assert row.clicks == int(numbers["inline_link_clicks"])  # link clicks, not all clicks
        leads = sum(int(a["value"]) for a in numbers["actions"] if a["action_type"] == "lead")
        assert row.leads == leads
        assert row.conversions == (leads or None)
        assert row.revenue == (leads * 25.0 or None)


def test_conversions_and_revenue_never_overwritten_with_nothing(
        emulator, world, session_factory, settings, account_id, client_factory):
    sync(session_factory, settings, account_id, client_factory)
    index, ad_id, _, _ = next(world.ads())
    numbers = dict(world.ad_day(index, ad_id, DAY1))
    numbers["actions"], numbers["action_values"] = [], []
    world.overrides[(ad_id, DAY1)] = numbers  # Meta no longer attributes its result
    with session_factory() as session, session.begin():
        row = session.scalars(select(DailyInsight).join(Entity).where(
            Entity.platform_id == ad_id, DailyInsight.day == DAY1)).one()
        row.conversions, row.revenue = 7, 123.5  # e.g. from a CSV import
    sync(session_factory, settings, account_id, client_factory, now=LATER)
    row = ad_days(session_factory)[(ad_id, DAY1)]
    assert (row.leads, row.conversions, row.revenue) == (0, 7, 123.5)


def test_deleted_and_archived_ads_keep_their_history(emulator, world, session_factory, settings,
                                                     account_id, client_factory):
    assert sync(session_factory, settings, account_id, client_factory).status == "succeeded"
    before = ad_days(session_factory)
    ads = [ad_id for _, ad_id, _, _ in world.ads()]
    world.statuses[ads[0]] = "DELETED"
    world.statuses[ads[1]] = "ARCHIVED"
    world.statuses[world.campaign_ids()[1]] = "DELETED"  # and a whole campaign

    summary = sync(session_factory, settings, account_id, client_factory, now=LATER)
    assert summary.status == "succeeded", summary.reason
    after = ad_days(session_factory)
    assert summary.days_restated == 0 and summary.ad_days_unreported == 0
    for key, row in before.items():
        if key[1] == DAY1:
            assert (after[key].spend, after[key].updated_at) == (row.spend, row.updated_at), key
    for asked in emulator.asked("GET", rf"{world.id}/insights"):
        filtering = json.loads(asked["filtering"])
        assert filtering[0]["field"] == f"{asked['level']}.effective_status"
        assert {"DELETED", "ARCHIVED", "ACTIVE"} <= set(filtering[0]["value"])
    with session_factory() as session:  # the deleted campaign's own reach is still read
        reach = session.scalar(select(DailyInsight.reach).join(Entity).where(
            Entity.platform_id == world.campaign_ids()[1], DailyInsight.day == DAY1))
    expected_reach = next(int(r["reach"]) for r in insight_rows(world, {
        "level": "campaign", "fields": "reach,campaign_id", "filtering": asked["filtering"],
        "time_range": json.dumps({"since": "2026-11-24", "until": "2026-11-24"})})
        if r["campaign_id"] == world.campaign_ids()[1])
    assert reach == expected_reach
    with session_factory() as session:
        status = session.scalar(select(Entity.status).where(Entity.platform_id == ads[0]))
    assert status == "UNKNOWN"  # no longer listed by Meta, still delivered in the window


def test_a_day_meta_reports_as_zero_is_zeroed(emulator, world, session_factory, settings,
                                              account_id, client_factory):
    sync(session_factory, settings, account_id, client_factory)
    index, ad_id, _, _ = next(world.ads())
    assert world.ad_day(index, ad_id, DAY1) is not None
    world.overrides[(ad_id, DAY1)] = {"spend": "0.00", "impressions": "0", "reach": "0"}
    summary = sync(session_factory, settings, account_id, client_factory, now=LATER)
    assert (summary.ad_days_zeroed, summary.days_restated) == (1, 1)
    assert ad_days(session_factory)[(ad_id, DAY1)].spend == 0


def test_failed_async_jobs_are_split_by_date_range(emulator, world, session_factory, settings,
                                                   account_id, client_factory):
    client_factory.changes.update(async_threshold_rows=1)
    emulator.max_job_days = 1  # Meta fails any job longer than one day
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    ranges = [json.loads(p["time_range"]) for p in emulator.asked("POST", rf"{world.id}/insights")
              if p["level"] == "ad"]
    assert [(r["since"], r["until"]) for r in ranges] == [
        ("2026-11-24", "2026-11-25"), ("2026-11-24", "2026-11-24"), ("2026-11-25", "2026-11-25")]
    assert len(ad_days(session_factory)) == len(expected_ad_days(world, DAY1, DAY2))


def test_a_single_day_job_failing_twice_fails_the_sync(emulator, world, session_factory,
                                                       settings, account_id, client_factory):
    client_factory.changes.update(async_threshold_rows=1)
    emulator.fail_next_jobs = 10
    summary = sync(session_factory, settings, account_id, client_factory, since=DAY2)
    assert summary.status == "failed"
    campaign = world.campaign_ids()[0]
    assert (f"on 2026-11-25 (campaigns {campaign}) failed 2 times (last status 'Job Failed')"
            in summary.reason)
    # the whole day once, then its first campaign twice: the sync stops there
    assert len(emulator.asked("POST", rf"{world.id}/insights")) == 3


def test_throttling_waits_for_metas_estimate(emulator, world, session_factory, settings,
                                             account_id, client_factory, clock):
    emulator.faults.append(Fault(path=rf"{world.id}/insights", kind="throttle"))
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded" and summary.throttled == 1
    assert clock.sleeps[0] >= 60  # estimated_time_to_regain_access: 1 minute


def test_a_stalled_connection_hits_the_read_timeout_and_is_retried(
        emulator, world, session_factory, settings, account_id, client_factory):
    emulator.faults.append(Fault(path=world.id, kind="stall", seconds=30))
    quick = settings.model_copy(update={"sync_read_timeout": 0.5})
    started = time.monotonic()
    summary = sync(session_factory, quick, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    assert time.monotonic() - started < 10  # not the 30 s stall
    assert len(emulator.asked("GET", world.id)) == 2


def test_a_connection_that_always_stalls_fails_the_sync_clearly(
        emulator, world, session_factory, settings, account_id, client_factory):
    emulator.faults.append(Fault(path=world.id, kind="stall", seconds=30, times=10))
    client_factory.changes.update(backoff=BackoffPolicy(max_attempts=2))
    quick = settings.model_copy(update={"sync_read_timeout": 0.3})
    summary = sync(session_factory, quick, account_id, client_factory)
    assert summary.status == "failed"
    assert "ReadTimeout" in summary.reason and "gave up after 2 attempts" in summary.reason
    assert TOKEN not in summary.reason


def test_expired_token_needs_attention(emulator, world, session_factory, settings, account_id,
                                       client_factory):
    emulator.expired_tokens.add(TOKEN)
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "needs_attention" and summary.error_exit_code == 77
    with session_factory() as session:
        attention = session.get(AdAccount, account_id).needs_attention
    assert "expired or invalid (code 190)" in attention and "META_TOKEN" in attention
    assert len(emulator.requests) == 1  # not retried


def test_a_retired_version_needs_attention(emulator, world, session_factory, settings,
                                           account_id, client_factory):
    old = settings.model_copy(update={"meta_api_version": "v19.0"})
    summary = sync(session_factory, old, account_id, client_factory)
    assert summary.status == "needs_attention"
    assert emulator.requests[0][0] == "GET" and len(emulator.requests) == 1
    with session_factory() as session:
        attention = session.get(AdAccount, account_id).needs_attention
    assert "version retired (code 2635)" in attention
    assert "ADSENTINEL_META_API_VERSION" in attention


def test_appsecret_proof_is_sent_when_the_app_requires_it(emulator, world, session_factory,
                                                         settings, account_id, client_factory):
    secret = "0123456789abcdef0123456789abcdef"
    emulator.app_secret = secret
    without = sync(session_factory, settings, account_id, client_factory)
    assert without.status == "needs_attention"
    assert "appsecret_proof" in without.reason
    with session_factory() as session, session.begin():
        session.get(AdAccount, account_id).needs_attention = None

    proving = settings.model_copy(update={"meta_app_secret_env": "META_APP_SECRET"})
    missing = sync(session_factory, proving, account_id, client_factory)
    assert missing.status == "failed" and "META_APP_SECRET" in missing.reason

    summary = sync(session_factory, proving, account_id, client_factory,
                   environ={**ENV, "META_APP_SECRET": secret})
    assert summary.status == "succeeded", summary.reason
    proof = hmac.new(secret.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert emulator.asked("GET", world.id)[-1]["appsecret_proof"] == proof
    assert secret not in json.dumps(emulator.requests)


def test_the_pinned_version_is_the_one_called(emulator, world, session_factory, settings,
                                              account_id, client_factory):
    emulator.served_versions = ("v25.0",)
    pinned = settings.model_copy(update={"meta_api_version": "v25.0"})
    assert sync(session_factory, pinned, account_id, client_factory).status == "succeeded"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(DailyInsight)) > 0


def test_each_date_range_is_committed_so_a_late_failure_keeps_the_fresh_days(
        emulator, world, session_factory, settings, account_id, client_factory):
    """Ten days: yesterday+today first, then a week, then a day; the week fails for good."""
    client_factory.changes.update(backoff=BackoffPolicy(max_attempts=1))
    # (a range reads three levels: ads, then ad sets' and campaigns' own reach)
    emulator.faults.append(Fault(path=rf"{world.id}/insights", kind="error", skip=3, times=5))
    summary = sync(session_factory, settings, account_id, client_factory,
                   since=date(2026, 11, 16))
    assert summary.status == "failed" and summary.ranges_stored == 1
    assert (summary.since, summary.until) == (DAY1, DAY2)
    stored = ad_days(session_factory)
    assert {day for _, day in stored} == {DAY1, DAY2}
    assert len(stored) == len(expected_ad_days(world, DAY1, DAY2))
    ranges = [json.loads(p["time_range"]) for p in emulator.asked("GET", rf"{world.id}/insights")
              if p["level"] == "ad"]
    assert (ranges[0]["since"], ranges[1]["since"], ranges[1]["until"]) == (
        "2026-11-24", "2026-11-17", "2026-11-23")


def test_since_beyond_metas_retention_is_clamped_with_a_note(
        emulator, world, session_factory, settings, account_id, client_factory):
    # (the pull stops after its first range: 160 weeks back would make a slow test)
    client_factory.changes.update(backoff=BackoffPolicy(max_attempts=1))
    emulator.faults.append(Fault(path=rf"{world.id}/insights", kind="error", skip=3))
    summary = sync(session_factory, settings, account_id, client_factory,
                   since=date(2022, 1, 1))
    assert summary.notes == [("--since 2022-01-01 is older than Meta keeps insights (37 months): "
                              "pulled from 2023-10-25 instead")]  # 37 months before 2026-11-25
    assert summary.ranges_stored == 1 and summary.since == DAY1


def test_a_currency_and_timezone_change_is_recorded_with_its_day(
        emulator, world, session_factory, settings, account_id, client_factory):
    sync(session_factory, settings, account_id, client_factory)
    world.currency, world.timezone_name = "USD", "America/Sao_Paulo"
    later = datetime(2026, 11, 26, 2, 30, tzinfo=UTC)  # 25 Nov in Sao Paulo
    summary = sync(session_factory, settings, account_id, client_factory, now=later)
    assert summary.status == "succeeded", summary.reason
    assert summary.notes == [
        "the account's currency changed from EUR to USD: its days before 2026-11-25 are kept "
        "but no longer compared (detection and training start there)",
        "the account's timezone changed from Europe/Lisbon to America/Sao_Paulo: its days "
        "before 2026-11-25 are kept but no longer compared (detection and training start "
        "there)"]
    with session_factory() as session:
        run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert run.counts["notes"] == summary.notes
        account = session.get(AdAccount, account_id)
        assert (account.currency, account.timezone) == ("USD", "America/Sao_Paulo")
        changes = session.execute(select(
            AccountSettingChange.setting, AccountSettingChange.old_value,
            AccountSettingChange.new_value, AccountSettingChange.changed_on)
            .order_by(AccountSettingChange.id)).all()
        assert changes == [("currency", "EUR", "USD", DAY2),
                           ("timezone", "Europe/Lisbon", "America/Sao_Paulo", DAY2)]
        assert comparable_since(session, account_id, DAY2) == DAY2
        assert comparable_since(session, account_id, DAY1) is None  # a day before: all history
    again = sync(session_factory, settings, account_id, client_factory,
                 now=later + timedelta(hours=1))
    assert again.notes == []  # recorded once, not on every sync
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AccountSettingChange)) == 2


def test_the_first_sync_records_no_change(emulator, world, session_factory, settings,
                                          account_id, client_factory):
    """Before its first sync an account holds placeholders (USD, UTC), not Meta's values."""
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.notes == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AccountSettingChange)) == 0
        assert session.get(AdAccount, account_id).currency == "EUR"


@pytest.mark.parametrize(("today", "earliest"), [
    (date(2026, 11, 25), date(2023, 10, 25)), (date(2026, 3, 31), date(2023, 2, 28)),
    (date(2026, 1, 15), date(2022, 12, 15))])
def test_earliest_insights_day_is_37_months_back(today, earliest):
    assert earliest_insights_day(today) == earliest


def test_date_ranges_are_newest_first_and_cover_the_window():
    ranges = date_ranges(date(2026, 11, 1), date(2026, 11, 20))
    assert ranges[0] == (date(2026, 11, 19), date(2026, 11, 20))
    assert ranges[1] == (date(2026, 11, 12), date(2026, 11, 18))
    assert ranges[-1] == (date(2026, 11, 1), date(2026, 11, 4))
    days = sorted(first + timedelta(days=n) for first, last in ranges
                  for n in range((last - first).days + 1))
    assert days == [date(2026, 11, 1) + timedelta(days=n) for n in range(20)]
    assert date_ranges(DAY2, DAY2) == [(DAY2, DAY2)]


def test_parent_reach_is_metas_own_not_the_sum_of_their_ads(
        emulator, world, session_factory, settings, account_id, client_factory):
    sync(session_factory, settings, account_id, client_factory)
    with session_factory() as session:
        rows = session.execute(select(Entity.level, Entity.platform_id, DailyInsight)
                               .join(DailyInsight, DailyInsight.entity_id == Entity.id)).all()
        session.expunge_all()
    stored = {(level, pid, row.day): row for level, pid, row in rows}
    overlapping = 0  # parent days whose ads reached some of the same people
    for level in ("adset", "campaign"):
        meta = {(r[f"{level}_id"], r["date_start"]): int(r["reach"]) for r in insight_rows(
            world, {"level": level, "fields": "reach,adset_id,campaign_id",
                    "time_range": json.dumps({"since": "2026-11-24", "until": "2026-11-24"}),
                    "filtering": "[]"})}
        assert meta
        for (platform_id, day), reach in meta.items():
            row = stored[(level, platform_id, date.fromisoformat(day))]
            children = sum(r.reach for (lv, _, d), r in stored.items()
                           if lv == "ad" and d == row.day and r.entity_id and
                           _parent_of(session_factory, r.entity_id, level) == row.entity_id)
            assert row.reach == reach <= children, (level, platform_id)
            overlapping += reach < children
    assert overlapping >= 4
    before = {key: row.updated_at for key, row in stored.items() if key[0] != "ad"}
    sync(session_factory, settings, account_id, client_factory, now=LATER)
    with session_factory() as session:
        for (level, pid, day), updated_at in before.items():
            if day == DAY1:  # a complete day with the same numbers is not rewritten
                now_at = session.scalar(select(DailyInsight.updated_at).join(Entity).where(
                    Entity.platform_id == pid, DailyInsight.day == day))
                assert now_at == updated_at, (level, pid)


def _parent_of(session_factory, entity_id: int, level: str) -> int:
    with session_factory() as session:
        entity = session.get(Entity, entity_id)
        adset = session.get(Entity, entity.parent_id)
        return adset.id if level == "adset" else adset.parent_id


@pytest.mark.parametrize(("code", "subcode"), [(100, 1504018), (2, 1504038)])
def test_too_much_data_for_a_synchronous_request_switches_to_a_job(
        emulator, world, session_factory, settings, account_id, client_factory, code, subcode):
    too_much = {"error": {"message": "Please reduce the amount of data you're asking for",
                          "type": "OAuthException", "code": code, "error_subcode": subcode}}
    emulator.faults.append(Fault(path=rf"{world.id}/insights", kind="error", status=400,
                                 body=too_much, method="GET"))
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    assert summary.api_calls > 0 and summary.throttled == 0
    posted = emulator.asked("POST", rf"{world.id}/insights")
    assert [p["level"] for p in posted] == ["ad"]  # only the refused pull became a job
    assert len(ad_days(session_factory)) == len(expected_ad_days(world, DAY1, DAY2))


def test_each_ad_sets_attribution_setting_is_recorded_on_the_run(
        emulator, world, session_factory, settings, account_id, client_factory):
    summary = sync(session_factory, settings, account_id, client_factory)
    wanted = {}
    for adset_id, _ in world.adset_ids():
        setting = "1d_click" if int(adset_id) % 3 == 0 else "7d_click_1d_view"
        wanted[setting] = wanted.get(setting, 0) + 1
    assert summary.attribution_settings == wanted and sum(wanted.values()) == 4
    with session_factory() as session:
        assert session.scalars(select(SyncRun)).one().counts["attribution_settings"] == wanted


def test_a_single_day_job_that_fails_is_split_by_campaign(
        emulator, world, session_factory, settings, account_id, client_factory):
    """Meta fails any job with more than one campaign: the day is read per campaign, and the
    campaigns not listed (deleted) in a job of their own."""
    world.campaigns = 3
    world.statuses[world.campaign_ids()[2]] = "DELETED"
    client_factory.changes.update(async_threshold_rows=1)
    emulator.max_job_campaigns = 1
    summary = sync(session_factory, settings, account_id, client_factory, since=DAY2)
    assert summary.status == "succeeded", summary.reason
    assert len(ad_days(session_factory)) == len(expected_ad_days(world, DAY2))
    jobs = [json.loads(p["filtering"])[1:] for p in emulator.asked("POST", rf"{world.id}/insights")
            if p["level"] == "ad"]
    listed = world.campaign_ids()[:2]
    assert jobs == [[], [{"field": "campaign.id", "operator": "IN", "value": listed[:1]}],
                    [{"field": "campaign.id", "operator": "IN", "value": listed[1:]}],
                    [{"field": "campaign.id", "operator": "NOT_IN", "value": listed}]]


def test_a_disabled_account_is_noted(emulator, world, session_factory, settings, account_id,
                                     client_factory):
    world.account_status = 2
    summary = sync(session_factory, settings, account_id, client_factory)
    assert summary.status == "succeeded"
    assert summary.notes == [("Meta reports the ad account as DISABLED: it delivers nothing "
                              "until that is resolved in Ads Manager")]
