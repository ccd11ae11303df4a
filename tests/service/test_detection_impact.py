"""Detection stores each anomaly's money at stake, run start and duration (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import select

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, Anomaly, DailyInsight, Entity
from adsentinel.service.detection import detect_account

LAST_DAY = date(2026, 3, 1)
DAYS = 40
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
BREAK_DAYS = 3


def build_account(session_factory) -> dict[str, int]:
    """Campaign > ad set > ads a0, a1; a0 records no lead on the last three days (a tracking
    break), a1 spends four times its normal on the last day (a budget typo)."""
    rng = np.random.default_rng(7)
    with session_scope(session_factory) as session:
        account = AdAccount(name="Clinica Sorriso", currency="BRL", timezone="America/Sao_Paulo")
        session.add(account)
        session.flush()
        campaign = Entity(account_id=account.id, level="campaign", platform_id="c1")
        session.add(campaign)
        session.flush()
        adset = Entity(account_id=account.id, level="adset", platform_id="s1",
                       parent_id=campaign.id)
        session.add(adset)
        session.flush()
        ads = [Entity(account_id=account.id, level="ad", platform_id=f"a{k}", parent_id=adset.id)
               for k in range(2)]
        session.add_all(ads)
        session.flush()
        totals: dict[date, np.ndarray] = {}
        for k, ad in enumerate(ads):
            for offset in range(DAYS):
                day = LAST_DAY - timedelta(days=DAYS - 1 - offset)
                factor = 4.0 if (k == 1 and day == LAST_DAY) else 1.0
                spend = 400.0 * rng.lognormal(0, 0.05) * factor
                impressions = int(rng.poisson(spend / 20 * 1000))
                clicks = int(rng.binomial(impressions, 0.01))
                leads = int(rng.binomial(clicks, 0.1))
                if k == 0 and day > LAST_DAY - timedelta(days=BREAK_DAYS):
                    leads = 0
                values = np.array([spend, impressions, clicks, leads, int(impressions / 1.3)])
                totals[day] = totals.get(day, 0) + values
                session.add(_insight(ad.id, day, values))
        for day, values in totals.items():
            session.add(_insight(adset.id, day, values))
            session.add(_insight(campaign.id, day, values))
        return {"account": account.id, "ad0": ads[0].id, "ad1": ads[1].id}


def _insight(entity_id: int, day: date, values: np.ndarray) -> DailyInsight:
    spend, impressions, clicks, leads, reach = values
    return DailyInsight(entity_id=entity_id, day=day, spend=float(spend),
                        impressions=int(impressions), clicks=int(clicks), leads=int(leads),
                        reach=int(reach), updated_at=T0)


def _stored(session_factory, entity_id: int, metric: str) -> dict[date, Anomaly]:
    with session_scope(session_factory) as session:
        rows = list(session.scalars(select(Anomaly).where(Anomaly.entity_id == entity_id,
                                                          Anomaly.metric == metric)))
        session.expunge_all()
        return {a.day: a for a in rows}


def _day_spend(session_factory, entity_id: int, day: date) -> float:
    with session_scope(session_factory) as session:
        return session.scalar(select(DailyInsight.spend).where(
            DailyInsight.entity_id == entity_id, DailyInsight.day == day))


def test_tracking_break_run_and_spend_typo_money_are_stored(session_factory, settings):
    ids = build_account(session_factory)
    for back in range(BREAK_DAYS - 1, -1, -1):  # day by day, as the daily runs would
        detect_account(session_factory=session_factory, settings=settings,
                       account_id=ids["account"], analysis_date=LAST_DAY - timedelta(days=back),
                       recheck_days=1, now=T0)
    cpl = _stored(session_factory, ids["ad0"], "cpl")
    first_day = LAST_DAY - timedelta(days=BREAK_DAYS - 1)
    assert sorted(cpl) == [first_day + timedelta(days=n) for n in range(BREAK_DAYS)]
    last = cpl[LAST_DAY]
    assert (last.started, last.duration_days) == (first_day, BREAK_DAYS)
    assert (cpl[first_day].started, cpl[first_day].duration_days) == (first_day, 1)
    # the spend that bought nothing that day
    assert last.impact_amount == pytest.approx(_day_spend(session_factory, ids["ad0"], LAST_DAY),
                                               abs=0.01)
    spend = _stored(session_factory, ids["ad1"], "spend")[LAST_DAY]
    assert spend.direction == "up" and spend.duration_days == 1
    assert spend.impact_amount == pytest.approx(spend.actual - spend.expected, abs=0.01)
    assert spend.impact_amount > 800  # about three normal days of spend above expected


def test_a_retracted_day_breaks_the_run(session_factory, settings):
    ids = build_account(session_factory)
    for back in (2, 1, 0):
        detect_account(session_factory=session_factory, settings=settings,
                       account_id=ids["account"], analysis_date=LAST_DAY - timedelta(days=back),
                       recheck_days=1, now=T0)
    leads = _stored(session_factory, ids["ad0"], "leads")[LAST_DAY]  # a one-day count test
    assert (leads.started, leads.duration_days) == (LAST_DAY - timedelta(days=2), 3)
    with session_scope(session_factory) as session:
        row = session.scalar(select(Anomaly).where(
            Anomaly.entity_id == ids["ad0"], Anomaly.metric == "leads",
            Anomaly.day == LAST_DAY - timedelta(days=1)))
        row.status = "retracted"
    detect_account(session_factory=session_factory, settings=settings, account_id=ids["account"],
                   analysis_date=LAST_DAY, recheck_days=1, now=T0 + timedelta(hours=1))
    leads = _stored(session_factory, ids["ad0"], "leads")[LAST_DAY]
    assert (leads.started, leads.duration_days) == (LAST_DAY, 1)
