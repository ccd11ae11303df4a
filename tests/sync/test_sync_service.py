"""A sync end to end on SQLite and PostgreSQL: recorded Graph API payloads in, rows out."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from graph_api import ACCOUNT, TOKEN, payload, serve_insights, serve_structure
from sqlalchemy import select

from adsentinel.accounts.service import add_meta_account
from adsentinel.db.models import AdAccount, DailyInsight, Entity, SyncRun
from adsentinel.sync.service import sync_account, syncable_account_ids

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 12:30 in Sao Paulo
LATER = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)
ENV = {"META_TOKEN": TOKEN}


@pytest.fixture
def sync_settings(db_settings):
    return db_settings.model_copy(update={"sync_window_days": 2})


@pytest.fixture
def account_id(session_factory):
    return add_meta_account(session_factory=session_factory, platform_account_id=ACCOUNT,
                            token_env="META_TOKEN").id


def run_sync(session_factory, settings, account_id, client_factory, *, now=NOW, since=DAY1):
    return sync_account(session_factory=session_factory, settings=settings,
                        account_id=account_id, since=since, client_factory=client_factory,
                        environ=ENV, now=now)


def insights_by_entity(session_factory) -> dict[tuple[str, str, date], DailyInsight]:
    with session_factory() as session:
        rows = session.execute(select(Entity.level, Entity.platform_id, DailyInsight)
                               .join(DailyInsight, DailyInsight.entity_id == Entity.id)).all()
        session.expunge_all()
    return {(level, pid, row.day): row for level, pid, row in rows}


def test_first_sync_stores_structure_days_and_partial_today(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    summary = run_sync(session_factory, sync_settings, account_id, client_factory)

    assert summary.status == "succeeded", summary.reason
    assert (summary.campaigns, summary.adsets, summary.ads, summary.insight_rows) == (2, 3, 4, 5)
    assert (summary.since, summary.until) == (DAY1, DAY2)
    with session_factory() as session:
        account = session.get(AdAccount, account_id)
        assert (account.currency, account.timezone) == ("BRL", "America/Sao_Paulo")
        assert account.last_synced_at is not None
        entities = {(e.level, e.platform_id): e for e in session.scalars(select(Entity))}
        paused_ad = entities[("ad", "120210000000000304")]
        assert paused_ad.status == "CAMPAIGN_PAUSED" and paused_ad.name == "Remarketing estatico"
        assert session.get(Entity, paused_ad.parent_id).platform_id == "120210000000000203"
        run = session.scalars(select(SyncRun)).one()
        assert run.status == "succeeded" and run.counts["insight_rows"] == 5
    days = insights_by_entity(session_factory)
    ad = days[("ad", "120210000000000301", DAY1)]
    # 'lead' already contains onsite_conversion.lead_grouped: 11 leads, not 22
    assert (ad.spend, ad.impressions, ad.clicks, ad.reach, ad.leads) == (152.37, 18234, 298,
                                                                         12007, 11)
    assert ad.is_complete and ad.as_of is None
    assert days[("ad", "120210000000000303", DAY1)].leads == 4  # pixel leads via 'lead'
    assert days[("ad", "120210000000000302", DAY2)].leads == 0  # no actions at all
    campaign = days[("campaign", "120210000000000101", DAY1)]
    assert campaign.spend == pytest.approx(152.37 + 98.10 + 61.55) and campaign.leads == 21
    today = days[("ad", "120210000000000301", DAY2)]
    assert today.is_complete is False and _utc(today.as_of) == NOW
    assert days[("campaign", "120210000000000101", DAY2)].is_complete is False


def test_resync_of_the_same_numbers_moves_nothing_but_todays_as_of(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    run_sync(session_factory, sync_settings, account_id, client_factory)
    before = insights_by_entity(session_factory)
    summary = run_sync(session_factory, sync_settings, account_id, client_factory, now=LATER)
    after = insights_by_entity(session_factory)

    assert summary.status == "succeeded" and summary.days_restated == 0
    for key, row in after.items():
        if key[2] == DAY1:
            assert row.updated_at == before[key].updated_at, key
        else:  # today's partial day: same numbers, but seen an hour later
            assert _utc(row.as_of) == LATER


def test_restated_day_replaces_the_numbers_and_only_its_rows_move(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    run_sync(session_factory, sync_settings, account_id, client_factory)
    before = insights_by_entity(session_factory)

    graph.routes.pop(("GET", f"{ACCOUNT}/insights", None))
    graph.routes.pop(("GET", f"{ACCOUNT}/insights", "MgZDZD"))
    serve_insights(graph, "insights_restated")
    summary = run_sync(session_factory, sync_settings, account_id, client_factory, now=LATER)
    after = insights_by_entity(session_factory)

    assert summary.days_restated == 1 and summary.ad_days_restated == 1
    restated = ("ad", "120210000000000301", DAY1)
    assert (after[restated].spend, after[restated].leads) == (149.80, 12)
    assert after[restated].updated_at > before[restated].updated_at
    campaign = ("campaign", "120210000000000101", DAY1)
    assert after[campaign].spend == pytest.approx(149.80 + 98.10 + 61.55)
    assert after[campaign].updated_at > before[campaign].updated_at
    untouched = ("ad", "120210000000000302", DAY1)
    assert after[untouched].updated_at == before[untouched].updated_at


def test_an_ad_day_meta_stops_reporting_is_kept_not_zeroed(
        graph, session_factory, sync_settings, account_id, client_factory):
    """Meta's answer no longer has day 1 (an ad deleted, a glitch): that is no evidence the
    spend is gone, so history stays; only a day Meta reports with other numbers changes."""
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    run_sync(session_factory, sync_settings, account_id, client_factory)
    before = insights_by_entity(session_factory)
    graph.routes.pop(("GET", f"{ACCOUNT}/insights", None))
    graph.routes.pop(("GET", f"{ACCOUNT}/insights", "MgZDZD"))
    serve_insights(graph, "insights_page2")  # day 1 is gone from Meta's answer
    summary = run_sync(session_factory, sync_settings, account_id, client_factory, now=LATER)
    days = insights_by_entity(session_factory)
    assert (summary.ad_days_zeroed, summary.ad_days_unreported, summary.days_restated) == (0, 3, 0)
    kept = ("ad", "120210000000000301", DAY1)
    assert days[kept].spend == 152.37 and days[kept].updated_at == before[kept].updated_at
    assert days[("campaign", "120210000000000101", DAY1)].spend == pytest.approx(
        152.37 + 98.10 + 61.55)


def test_malformed_payload_writes_nothing_and_says_where(
        graph, session_factory, sync_settings, account_id, client_factory, caplog):
    serve_structure(graph)
    serve_insights(graph, "insights_malformed")
    with caplog.at_level(logging.INFO):
        summary = run_sync(session_factory, sync_settings, account_id, client_factory)
    assert summary.status == "failed" and summary.error_exit_code == 65
    assert ("insights row of ad 120210000000000302 on 2026-11-24: field 'spend' is '98,10', "
            "expected a non-negative number") in summary.reason
    with session_factory() as session:
        assert session.scalars(select(Entity)).all() == []
        assert session.scalars(select(DailyInsight)).all() == []
        run = session.scalars(select(SyncRun)).one()
        assert run.status == "failed" and "'98,10'" in run.error
        assert session.get(AdAccount, account_id).needs_attention is None
    assert TOKEN not in caplog.text


def test_expired_token_marks_the_account_and_others_still_sync(
        graph, session_factory, sync_settings, account_id, client_factory, caplog):
    other = add_meta_account(session_factory=session_factory, platform_account_id="act_99",
                             token_env="OTHER_TOKEN").id
    graph.on("GET", "act_99", (400, payload("error_token_expired"), {}))
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    env = {**ENV, "OTHER_TOKEN": "EAAother0000000000000000token"}

    with caplog.at_level(logging.INFO):
        results = [sync_account(session_factory=session_factory, settings=sync_settings,
                                account_id=a, since=DAY1, client_factory=client_factory,
                                environ=env, now=NOW)
                   for a in syncable_account_ids(session_factory=session_factory)]
    assert [r.status for r in results] == ["succeeded", "needs_attention"]
    with session_factory() as session:
        attention = session.get(AdAccount, other).needs_attention
        assert "code 190" in attention and "OTHER_TOKEN" in attention
        failed = session.scalars(select(SyncRun).where(SyncRun.account_id == other)).one()
        assert failed.status == "failed" and "Session has expired" in failed.error
    assert len(graph.asked("GET", "act_99")) == 1  # not retried
    assert syncable_account_ids(session_factory=session_factory) == [account_id]
    again = sync_account(session_factory=session_factory, settings=sync_settings,
                         account_id=other, client_factory=client_factory, environ=env, now=NOW)
    assert again.status == "skipped" and again.reason.startswith("needs attention")
    assert "EAAother" not in caplog.text and TOKEN not in caplog.text

    add_meta_account(session_factory=session_factory, platform_account_id="act_99",
                     token_env="OTHER_TOKEN")  # a new token: the mark is cleared
    assert other in syncable_account_ids(session_factory=session_factory)


def test_throttled_then_successful_sync_waits_and_succeeds(
        graph, session_factory, sync_settings, account_id, client_factory, clock):
    serve_structure(graph)
    graph.on("GET", f"{ACCOUNT}/insights",
             (400, payload("error_throttled"), payload("headers_throttled")),
             (200, payload("insights_page2"), payload("headers_quiet")))
    summary = run_sync(session_factory, sync_settings, account_id, client_factory)
    assert summary.status == "succeeded" and summary.throttled == 1
    assert summary.waited_seconds >= 120 and clock.sleeps[0] >= 120


def test_csv_accounts_are_skipped(session_factory, sync_settings):
    with session_factory() as session, session.begin():
        session.add(AdAccount(name="imported", platform_account_id="act_5", currency="USD",
                              timezone="UTC"))
    with session_factory() as session:
        csv_account = session.scalars(select(AdAccount)).one().id
    summary = sync_account(session_factory=session_factory, settings=sync_settings,
                           account_id=csv_account)
    assert summary.status == "skipped" and "CSV" in summary.reason
    assert syncable_account_ids(session_factory=session_factory) == []


def test_missing_token_variable_fails_clearly(session_factory, sync_settings, account_id,
                                              client_factory):
    summary = sync_account(session_factory=session_factory, settings=sync_settings,
                           account_id=account_id, client_factory=client_factory, environ={})
    assert summary.status == "failed"
    assert "environment variable META_TOKEN" in summary.reason


def test_first_sync_reaches_back_for_training_history(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    settings = sync_settings.model_copy(update={"isolation_forest_history_days": 60})
    summary = sync_account(session_factory=session_factory, settings=settings,
                           account_id=account_id, client_factory=client_factory, environ=ENV,
                           now=NOW)
    assert (summary.until - summary.since).days == 59
    second = sync_account(session_factory=session_factory, settings=settings,
                          account_id=account_id, client_factory=client_factory, environ=ENV,
                          now=LATER)
    assert (second.until - second.since).days == 1  # then the rolling window


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_today_is_the_accounts_today_not_utcs(
        graph, session_factory, sync_settings, account_id, client_factory):
    """01:30 UTC on the 26th is still the 25th in Sao Paulo: the 25th is partial, not future."""
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")
    late = datetime(2026, 11, 26, 1, 30, tzinfo=UTC)
    summary = run_sync(session_factory, sync_settings, account_id, client_factory, now=late)
    assert summary.status == "succeeded", summary.reason
    assert summary.until == DAY2
    days = insights_by_entity(session_factory)
    assert days[("ad", "120210000000000301", DAY2)].is_complete is False
    assert days[("ad", "120210000000000301", DAY1)].is_complete is True


def test_an_accounts_invalid_result_types_fail_its_sync_only(
        session_factory, sync_settings, account_id, client_factory, graph):
    serve_structure(graph)
    with session_factory() as session, session.begin():
        session.get(AdAccount, account_id).result_action_types = "lead,onsite_conversion.lead_grouped"
    summary = run_sync(session_factory, sync_settings, account_id, client_factory)
    assert summary.status == "failed" and "count leads twice" in summary.reason


def test_ads_under_unlisted_ad_sets_hang_under_their_campaign(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    graph.routes[("GET", f"{ACCOUNT}/ads", "QVFIUkdWU0tGWjBn")].clear()
    graph.ok("GET", f"{ACCOUNT}/ads", "ads_unlisted_adset", after="QVFIUkdWU0tGWjBn")
    serve_insights(graph, "insights_page2")
    summary = run_sync(session_factory, sync_settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    with session_factory() as session:
        entities = {(e.level, e.platform_id): e for e in session.scalars(select(Entity))}
    unlisted = entities[("adset", "120210000000000299")]
    assert unlisted.status == "UNKNOWN"
    assert unlisted.parent_id == entities[("campaign", "120210000000000101")].id
    other = entities[("adset", "120210000000000298")]
    assert other.parent_id == entities[("campaign", "120210000000000199")].id
    assert entities[("campaign", "120210000000000199")].status == "UNKNOWN"
    assert entities[("ad", "120210000000000306")].parent_id == other.id


def test_an_ad_that_delivered_but_is_no_longer_listed_is_unknown_not_active(
        graph, session_factory, sync_settings, account_id, client_factory):
    serve_structure(graph)
    graph.routes[("GET", f"{ACCOUNT}/ads", "QVFIUkdWU0tGWjBn")].clear()
    graph.ok("GET", f"{ACCOUNT}/ads", "ads_empty_page", after="QVFIUkdWU0tGWjBn")
    serve_insights(graph, "insights_page1", "insights_page2")
    summary = run_sync(session_factory, sync_settings, account_id, client_factory)
    assert summary.status == "succeeded", summary.reason
    with session_factory() as session:
        ad = session.scalars(select(Entity).where(
            Entity.platform_id == "120210000000000303")).one()
        assert (ad.status, ad.name) == ("UNKNOWN", "Imagem oferta avaliacao")
        assert session.get(Entity, ad.parent_id).platform_id == "120210000000000202"


def test_hourly_sync_pulls_the_full_window_first_each_day_and_yesterday_today_otherwise(
        graph, session_factory, db_settings, account_id, client_factory):
    from datetime import timedelta

    from adsentinel.sync.service import sync_before_detection

    settings = db_settings.model_copy(update={"sync_window_days": 3})
    serve_structure(graph)
    serve_insights(graph, "insights_page1", "insights_page2")

    def hourly(now):
        return sync_before_detection(session_factory=session_factory, settings=settings,
                                     account_id=account_id, client_factory=client_factory,
                                     environ=ENV, now=now)

    first = hourly(NOW)  # no full sync yet: the whole window (history reach-back on first use)
    assert first["status"] == "succeeded" and first["since"] <= (DAY2 - timedelta(days=2)).isoformat()
    second = hourly(LATER)  # an hour later: yesterday and today (Sao Paulo) only
    assert (second["since"], second["until"]) == (DAY1.isoformat(), DAY2.isoformat())
    next_day = hourly(NOW + timedelta(hours=24))  # a new local day: the whole window again
    assert next_day["since"] == (DAY2 + timedelta(days=1) - timedelta(days=2)).isoformat()
