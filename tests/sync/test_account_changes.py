"""A currency or timezone change cuts the history detection and training read (SQLite and
PostgreSQL): amounts before it are in another money, days cut at another midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AccountSettingChange, AdAccount, DailyInsight
from adsentinel.detection.account import _load_insights, detect_account
from adsentinel.sync.account_changes import apply_account_settings, comparable_since
from adsentinel.training.service import _read_history
from factories import add_account_tree

LAST_DAY = date(2026, 3, 1)
DAYS = 40
CHANGE_DAY = LAST_DAY - timedelta(days=1)
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def build_account(session_factory) -> dict[str, int]:
    """Campaign > ad set > ad, 40 days of steady spend around 100 EUR a day; from
    ``CHANGE_DAY`` on the same delivery is billed in BRL (five times the amount)."""
    rng = np.random.default_rng(11)
    with session_scope(session_factory) as session:
        account, campaign, adset, (ad,) = add_account_tree(session, AdAccount(
            name="Loja Azul", currency="BRL", timezone="Europe/Lisbon"), ("a1",))
        for offset in range(DAYS):
            day = LAST_DAY - timedelta(days=DAYS - 1 - offset)
            impressions = int(rng.poisson(10_000))
            spend = impressions / 100 * (5.0 if day >= CHANGE_DAY else 1.0)
            clicks = impressions // 100
            for entity in (campaign, adset, ad):
                session.add(DailyInsight(entity_id=entity.id, day=day, spend=spend,
                                         impressions=impressions, clicks=clicks,
                                         leads=clicks // 10, reach=int(impressions / 1.3),
                                         updated_at=T0))
        return {"account": account.id, "campaign": campaign.id, "ad": ad.id}


def record_change(session_factory, account_id: int) -> None:
    """What the sync does when Meta reports BRL for an account stored in EUR."""
    with session_scope(session_factory) as session:
        account = session.get(AdAccount, account_id)
        account.currency, account.last_synced_at = "EUR", T0 - timedelta(days=2)
        noticed = datetime.combine(CHANGE_DAY, datetime.min.time(), UTC) \
            + timedelta(hours=12)
        apply_account_settings(session, account, currency="BRL", timezone="Europe/Lisbon",
                               now=noticed)


def spend_anomalies(session_factory, settings, account_id: int) -> list:
    found = detect_account(session_factory=session_factory, settings=settings,
                           account_id=account_id, analysis_date=LAST_DAY, now=T0)
    return [a for a in found if a.metric == "spend" and a.direction == "up"]


def test_without_a_recorded_change_the_new_currency_looks_like_a_spend_spike(
        session_factory, settings):
    ids = build_account(session_factory)
    assert spend_anomalies(session_factory, settings, ids["account"])


def test_detection_does_not_compare_across_a_currency_change(session_factory, settings):
    ids = build_account(session_factory)
    record_change(session_factory, ids["account"])
    with session_scope(session_factory) as session:
        assert session.scalars(select(AccountSettingChange.changed_on)).all() == [CHANGE_DAY]
        frame = _load_insights(session, ids["account"], LAST_DAY - timedelta(days=30),
                               LAST_DAY)
        assert frame["date"].min().date() == CHANGE_DAY
        # a day before the change is judged against the history before it
        before = _load_insights(session, ids["account"], LAST_DAY - timedelta(days=30),
                                CHANGE_DAY - timedelta(days=1))
        assert before["date"].min().date() == LAST_DAY - timedelta(days=30)
    assert spend_anomalies(session_factory, settings, ids["account"]) == []


def test_training_reads_history_from_the_change_day_on(session_factory):
    ids = build_account(session_factory)
    first, last = LAST_DAY - timedelta(days=DAYS - 1), LAST_DAY
    full = _read_history(session_factory, ids["account"], ids["campaign"], ids["ad"], first, last)
    assert min(_days(full, ids["ad"])) == first.isoformat()
    record_change(session_factory, ids["account"])
    cut = _read_history(session_factory, ids["account"], ids["campaign"], ids["ad"], first, last)
    assert _days(cut, ids["ad"]) == [CHANGE_DAY.isoformat(), LAST_DAY.isoformat()]


def _days(history, entity_id: int) -> list[str]:
    """The days read, as ISO text (PostgreSQL's COPY hands them back as text)."""
    return sorted(str(day)[:10] for day in history.of(entity_id)[1])


@pytest.mark.parametrize("changes", [[], ["2026-02-01"], ["2026-02-01", "2026-02-20"]])
def test_comparable_since_is_the_latest_change_up_to_the_day(session_factory, changes):
    ids = build_account(session_factory)
    with session_scope(session_factory) as session:
        for day in changes:
            session.add(AccountSettingChange(account_id=ids["account"], setting="timezone",
                                             old_value="UTC", new_value="Europe/Lisbon",
                                             changed_on=date.fromisoformat(day)))
    with session_scope(session_factory) as session:
        wanted = date.fromisoformat(changes[-1]) if changes else None
        assert comparable_since(session, ids["account"], LAST_DAY) == wanted
        assert comparable_since(session, ids["account"], date(2026, 1, 31)) is None
