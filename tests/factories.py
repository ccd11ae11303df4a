"""Builders of test data: CSV files in the import format, and a small account in the database."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, DailyInsight, Entity

CANONICAL_HEADER = ["date", "account_id", "campaign_id", "adset_id", "ad_id", "spend",
                    "impressions", "clicks", "leads", "reach"]


def write_csv(path: Path, rows: list[list[object]], header: list[str] = CANONICAL_HEADER) -> Path:
    """Write ``rows`` under ``header`` to ``path`` and return it."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def insight_rows(*, days: int, ads: int, start: date = date(2026, 9, 1), account: str = "act_1",
                 ads_per_adset: int = 2, adsets_per_campaign: int = 2) -> list[list[object]]:
    """Deterministic canonical rows: ad ``k`` spends ``10 + k`` and gets ``100 * (k + 1)`` impressions
    a day, a tenth of them clicks, every fifth click a lead."""
    rows = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).isoformat()
        for k in range(ads):
            adset = k // ads_per_adset
            campaign = adset // adsets_per_campaign
            impressions = 100 * (k + 1)
            clicks = impressions // 10
            rows.append([day, account, f"c{campaign}", f"s{adset}", f"a{k}", f"{10 + k:.2f}",
                         impressions, clicks, clicks // 5, impressions // 2])
    return rows


#: the last complete day of :func:`small_account`
LAST_DAY = date(2026, 6, 30)


def add_account_tree(session, account: AdAccount, ad_ids) -> tuple:
    """``account`` with one campaign ``c1`` > one ad set ``s1`` > an ad per id of ``ad_ids``,
    added and flushed: ``(account, campaign, adset, ads)``."""
    session.add(account)
    session.flush()
    campaign = Entity(account_id=account.id, level="campaign", platform_id="c1")
    session.add(campaign)
    session.flush()
    adset = Entity(account_id=account.id, level="adset", platform_id="s1", parent_id=campaign.id)
    session.add(adset)
    session.flush()
    ads = [Entity(account_id=account.id, level="ad", platform_id=p, parent_id=adset.id)
           for p in ad_ids]
    session.add_all(ads)
    session.flush()
    return account, campaign, adset, ads


def small_account(session_factory, *, name="Loja Azul") -> dict[str, object]:
    """One campaign > one ad set > three ads, plus a short-lived ad and a silent ad.

    The campaign, ad set and ads a0..a2 have 100 complete days (the window keeps the last 90) and
    one incomplete day after them; ``short`` has 30 days, ``silent`` none.
    """
    rng = np.random.default_rng(3)
    with session_scope(session_factory) as session:
        account, campaign, adset, ads = add_account_tree(
            session, AdAccount(name=name), ("a0", "a1", "a2", "short", "silent"))
        rows = []
        full = [campaign, adset, *ads[:3]]
        for entity in full:
            for offset in range(100):
                rows.append(daily_insight_values(rng, entity.id, LAST_DAY - timedelta(days=offset), True))
            rows.append(daily_insight_values(rng, entity.id, LAST_DAY + timedelta(days=1), False))
        for offset in range(30):
            rows.append(daily_insight_values(rng, ads[3].id, LAST_DAY - timedelta(days=offset), True))
        session.execute(insert(DailyInsight), rows)
        return {"account": account.id, "ids": {e.platform_id: e.id for e in [campaign, adset, *ads]}}


def daily_insight_values(rng, entity_id, day, complete):
    impressions = int(rng.integers(800, 1200))
    clicks = int(rng.integers(10, 30))
    return {"entity_id": entity_id, "day": day, "spend": float(rng.uniform(40, 60)),
            "impressions": impressions, "clicks": clicks, "leads": int(rng.integers(0, 5)),
            "reach": impressions // 2, "is_complete": complete}
