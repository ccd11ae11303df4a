"""Detection stores each anomaly's money at stake, run start and duration (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from adsentinel.db.engine import session_scope
from adsentinel.db.models import Anomaly, DailyInsight
from adsentinel.detection.account import detect_account
from impact_world import BREAK_DAYS, LAST_DAY, T0, build_account


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
