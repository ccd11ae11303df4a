"""A small account with a three-day tracking break and a budget typo, for the tests of money
at stake (service and CLI)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, DailyInsight
from factories import add_account_tree

LAST_DAY = date(2026, 3, 1)
DAYS = 40
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
BREAK_DAYS = 3


def build_account(session_factory) -> dict[str, int]:
    """Campaign > ad set > ads a0, a1; a0 records no lead on the last three days (a tracking
    break), a1 spends four times its normal on the last day (a budget typo)."""
    rng = np.random.default_rng(7)
    with session_scope(session_factory) as session:
        account, campaign, adset, ads = add_account_tree(session, AdAccount(
            name="Clinica Sorriso", currency="BRL", timezone="America/Sao_Paulo"), ("a0", "a1"))
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
