"""Tables in the shapes Fivetran's and Airbyte's Facebook Ads connectors land in a warehouse,
filled with a small account, on a real PostgreSQL database."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import create_engine, text

ACCOUNT = 123456
FIRST_DAY = date(2026, 10, 1)
DAYS = 20
#: (ad id, ad set id, campaign id); ad 9002 moved from ad set 801 to 802 (two history rows)
ADS = ((9001, 801, 70), (9002, 802, 70), (9003, 803, 71))


def day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=offset)


def numbers(ad: int, offset: int) -> dict:
    impressions = 1000 + 10 * offset + ad % 10
    return {"impressions": impressions, "clicks": 20 + offset % 5, "reach": impressions // 2,
            "spend": round(50 + offset * 0.5 + ad % 10, 2), "leads": 2 + (offset + ad) % 3}


def create_fivetran_tables(url: str, schema: str = "facebook_ads") -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"""CREATE TABLE {schema}.basic_ad (
            ad_id TEXT, ad_name TEXT, adset_name TEXT, date DATE, account_id BIGINT,
            impressions BIGINT, inline_link_clicks BIGINT, spend DOUBLE PRECISION, reach BIGINT,
            frequency DOUBLE PRECISION, _fivetran_synced TIMESTAMP)"""))
        conn.execute(text(f"""CREATE TABLE {schema}.basic_ad_actions (
            ad_id TEXT, date DATE, _fivetran_id TEXT, action_type TEXT, index INTEGER,
            value DOUBLE PRECISION, _1_d_view DOUBLE PRECISION, _7_d_click DOUBLE PRECISION)"""))
        for table, parent in (("ad_history", "ad_set_id BIGINT, campaign_id BIGINT, "
                               "creative_id BIGINT,"),
                              ("ad_set_history", "campaign_id BIGINT,"),
                              ("campaign_history", "")):
            conn.execute(text(f"""CREATE TABLE {schema}.{table} (id BIGINT,
                updated_time TIMESTAMP, name TEXT, account_id BIGINT, {parent} status TEXT)"""))
        for ad, adset, campaign in ADS:
            conn.execute(text(f"INSERT INTO {schema}.ad_history VALUES (:id, :t, :name, :acc, "
                              ":adset, :campaign, 1, 'ACTIVE')"),
                         {"id": ad, "t": "2026-12-01", "name": f"Ad {ad}", "acc": ACCOUNT,
                          "adset": adset, "campaign": campaign})
        conn.execute(text(f"INSERT INTO {schema}.ad_history VALUES (9002, '2026-09-01', "
                          f"'Ad 9002 (old)', {ACCOUNT}, 801, 70, 1, 'ACTIVE')"))
        for adset, campaign in ((801, 70), (802, 70), (803, 71)):
            conn.execute(text(f"INSERT INTO {schema}.ad_set_history VALUES (:id, '2026-12-01', "
                              f":name, {ACCOUNT}, :campaign, 'ACTIVE')"),
                         {"id": adset, "name": f"Set {adset}", "campaign": campaign})
        for campaign in (70, 71):
            conn.execute(text(f"INSERT INTO {schema}.campaign_history VALUES (:id, "
                              f"'2026-12-01', :name, {ACCOUNT}, 'ACTIVE')"),
                         {"id": campaign, "name": f"Campaign {campaign}"})
        for ad, _, _ in ADS:
            for offset in range(DAYS):
                n = numbers(ad, offset)
                conn.execute(text(f"INSERT INTO {schema}.basic_ad VALUES (:ad, 'x', 'y', :day, "
                                  f"{ACCOUNT}, :impressions, :clicks, :spend, :reach, 1.5, "
                                  "now())"), {"ad": str(ad), "day": day(offset), **n})
                for action_type, value in (("lead", n["leads"]), ("link_click", 99),
                                           ("onsite_conversion.post_save", 7)):
                    conn.execute(text(f"INSERT INTO {schema}.basic_ad_actions VALUES (:ad, :day, "
                                      "'f', :type, 0, :value, NULL, NULL)"),
                                 {"ad": str(ad), "day": day(offset), "type": action_type,
                                  "value": value})
    engine.dispose()


def create_airbyte_table(url: str, schema: str = "airbyte_facebook") -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"""CREATE TABLE {schema}.ads_insights (
            account_id TEXT, account_name TEXT, account_currency TEXT, campaign_id TEXT,
            campaign_name TEXT, adset_id TEXT, adset_name TEXT, ad_id TEXT, ad_name TEXT,
            date_start DATE, date_stop DATE, spend NUMERIC, impressions BIGINT, clicks BIGINT,
            inline_link_clicks BIGINT, reach BIGINT, frequency DOUBLE PRECISION,
            actions JSONB, _airbyte_extracted_at TIMESTAMP)"""))
        for ad, adset, campaign in ADS:
            for offset in range(DAYS):
                n = numbers(ad, offset)
                actions = [{"action_type": "lead", "value": str(n["leads"])},
                           {"action_type": "link_click", "value": "99"}]
                conn.execute(text(f"""INSERT INTO {schema}.ads_insights VALUES (:acc, 'Loja
                    Airbyte', 'BRL', :campaign, 'C', :adset, 'S', :ad, 'A', :day, :day, :spend,
                    :impressions, 500, :clicks, :reach, 1.5, CAST(:actions AS JSONB), now())"""
                                  .replace("\n                    ", " ")),
                             {"acc": str(ACCOUNT), "campaign": str(campaign),
                              "adset": str(adset), "ad": str(ad), "day": day(offset),
                              "actions": json.dumps(actions), **n})
    engine.dispose()
