"""Builders of test data: CSV files in the import format."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

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
