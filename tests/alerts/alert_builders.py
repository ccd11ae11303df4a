"""Builders of alert test data: an account with a small hierarchy, daily rows and anomalies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, Anomaly, DailyInsight, Entity

#: Planning happens at noon UTC on NOW's day; the newest complete day is the day before.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
YESTERDAY = date(2026, 11, 19)


@dataclass
class Shop:
    """Ids of the built account and entities."""

    session_factory: sessionmaker[Session]
    account_id: int
    campaign: int
    adset: int
    ads: list[int]


def build_shop(session_factory: sessionmaker[Session], *, last_day: date = date(2026, 11, 18),
               days: int = 20, spend: float = 100.0) -> Shop:
    """Account Acme (BRL) with campaign "Black Friday" > ad set "Women 25-34" > ads 1-3, each
    with complete days up to ``last_day``."""
    with session_scope(session_factory) as session:
        account = AdAccount(name="Acme", platform_account_id="act_1", currency="BRL",
                            timezone="UTC")
        session.add(account)
        session.flush()
        campaign = Entity(account_id=account.id, level="campaign", platform_id="c1",
                          name="Black Friday")
        session.add(campaign)
        session.flush()
        adset = Entity(account_id=account.id, level="adset", platform_id="s1",
                       name="Women 25-34", parent_id=campaign.id)
        session.add(adset)
        session.flush()
        ads = [Entity(account_id=account.id, level="ad", platform_id=f"a{k}", name=f"Video {k}",
                      parent_id=adset.id) for k in (1, 2, 3)]
        session.add_all(ads)
        session.flush()
        shop = Shop(session_factory, account.id, campaign.id, adset.id, [a.id for a in ads])
    add_days(shop, last_day - timedelta(days=days - 1), last_day, spend=spend)
    return shop


def add_days(shop: Shop, first: date, last: date, *, spend: float = 100.0) -> None:
    """Complete daily rows for every entity of the shop in ``[first, last]``."""
    with session_scope(shop.session_factory) as session:
        day = first
        while day <= last:
            for entity_id in (shop.campaign, shop.adset, *shop.ads):
                session.merge(DailyInsight(entity_id=entity_id, day=day, spend=spend,
                                           impressions=10000, clicks=200, leads=10, reach=8000,
                                           is_complete=True))
            day += timedelta(days=1)


def add_anomaly(shop: Shop, entity_id: int, day: date, *, metric: str = "cpl",
                direction: str = "up", severity: str = "high", score: float = 80.0,
                actual: float = 45.10, expected: float = 14.20, incident_id: int | None = None,
                status: str = "open", drivers: dict | None = None) -> int:
    """Store (or update, like an hourly re-run) one anomaly; returns its id."""
    with session_scope(shop.session_factory) as session:
        row = session.query(Anomaly).filter_by(entity_id=entity_id, day=day, metric=metric).first()
        if row is None:
            row = Anomaly(account_id=shop.account_id, entity_id=entity_id, day=day, metric=metric,
                          detectors="robust_z", lower=None, upper=None,
                          message=f"CPL R$ {actual:.2f} vs R$ {expected:.2f} expected")
            session.add(row)
        row.actual, row.expected, row.direction = actual, expected, direction
        row.severity, row.score, row.status = severity, score, status
        row.incident_id, row.drivers = incident_id, drivers
        session.flush()
        return row.id


def set_status(shop: Shop, anomaly_id: int, status: str) -> None:
    with session_scope(shop.session_factory) as session:
        session.execute(update(Anomaly).where(Anomaly.id == anomaly_id).values(status=status))
