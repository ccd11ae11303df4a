"""`adsentinel import --from-sql`: Fivetran's and Airbyte's Facebook Ads tables and a custom
query, on PostgreSQL warehouses, through the CSV importer's checks and upsert."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from warehouse_tables import (
    ACCOUNT,
    ADS,
    DAYS,
    create_airbyte_table,
    create_fivetran_tables,
    day,
    numbers,
)

from adsentinel.db.engine import open_database
from adsentinel.db.models import AdAccount, DailyInsight, Entity
from adsentinel.errors import ConfigError, InputFileError
from adsentinel.ingest import warehouse
from adsentinel.ingest.warehouse import import_from_warehouse

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


@pytest.fixture
def stored(db_settings):
    engine = open_database(db_settings)
    yield engine
    engine.dispose()


def ad_days(engine) -> dict[tuple[str, str], tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(Entity.platform_id, DailyInsight.day, DailyInsight.spend,
                                   DailyInsight.clicks, DailyInsight.leads)
                            .join(Entity, Entity.id == DailyInsight.entity_id)
                            .where(Entity.level == "ad"))
        return {(pid, d.isoformat()): (spend, clicks, leads) for pid, d, spend, clicks, leads in rows}


def test_fivetran_tables_in_small_fetches(stored, fresh_postgres_url, monkeypatch):
    create_fivetran_tables(fresh_postgres_url)
    monkeypatch.setattr(warehouse, "FETCH_ROWS", 7)  # many fetches: the stream really streams
    done = import_from_warehouse(engine=stored, url=fresh_postgres_url, source="fivetran",
                                 schema="facebook_ads", action_types=["lead"], now=NOW)
    assert done.rows_read == len(ADS) * DAYS and done.accounts == [f"act_{ACCOUNT}"]
    assert done.days_new == len(ADS) * DAYS

    days = ad_days(stored)
    n = numbers(9002, 5)
    assert days[("9002", day(5).isoformat())] == (n["spend"], n["clicks"], n["leads"])
    with stored.connect() as conn:
        entities = {(level, pid): (name, parent) for level, pid, name, parent in conn.execute(
            select(Entity.level, Entity.platform_id, Entity.name, Entity.parent_id))}
        ids = dict(conn.execute(select(Entity.platform_id, Entity.id)).all())
        campaign_sum = conn.execute(
            select(func.sum(DailyInsight.leads)).where(DailyInsight.entity_id == ids["70"])
        ).scalar()
    assert entities[("ad", "9002")] == ("Ad 9002", ids["802"])  # the latest history row
    assert entities[("adset", "802")][0] == "Set 802"
    assert entities[("campaign", "71")][0] == "Campaign 71"
    assert campaign_sum == sum(numbers(ad, o)["leads"] for ad in (9001, 9002)
                               for o in range(DAYS))  # parents are their ads' sums

    engine = create_engine(fresh_postgres_url)  # Fivetran's next sync restates one day
    with engine.begin() as conn:
        conn.execute(text("UPDATE facebook_ads.basic_ad SET spend = 999 WHERE ad_id = '9001' "
                          "AND date = :d"), {"d": day(3)})
    engine.dispose()
    again = import_from_warehouse(engine=stored, url=fresh_postgres_url, source="fivetran",
                                  schema="facebook_ads", action_types=["lead"], now=NOW)
    assert again.days_new == 0 and again.days_restated >= 1
    assert ad_days(stored)[("9001", day(3).isoformat())][0] == 999


def test_airbyte_ads_insights_with_actions_json(stored, fresh_postgres_url):
    create_airbyte_table(fresh_postgres_url)
    done = import_from_warehouse(engine=stored, url=fresh_postgres_url, source="airbyte",
                                 schema="airbyte_facebook", action_types=["lead"], now=NOW)
    assert done.rows_read == len(ADS) * DAYS
    n = numbers(9003, 11)
    assert ad_days(stored)[("9003", day(11).isoformat())] == (n["spend"], n["clicks"],
                                                              n["leads"])
    with stored.connect() as conn:
        account = conn.execute(select(AdAccount.name, AdAccount.currency)).one()
    assert tuple(account) == ("Loja Airbyte", "BRL")


def test_a_custom_query(stored, fresh_postgres_url):
    create_airbyte_table(fresh_postgres_url)
    query = """SELECT date_start AS date, account_id, campaign_id, adset_id, ad_id, spend,
                      impressions, inline_link_clicks AS clicks, 0 AS leads, reach
               FROM airbyte_facebook.ads_insights WHERE ad_id = '9001' ORDER BY account_id"""
    done = import_from_warehouse(engine=stored, url=fresh_postgres_url, source="query",
                                 query=query, action_types=["lead"], now=NOW)
    assert done.rows_read == DAYS
    assert {pid for pid, _ in ad_days(stored)} == {"9001"}


def test_bad_rows_are_listed_and_nothing_is_written(stored, fresh_postgres_url):
    create_fivetran_tables(fresh_postgres_url)
    engine = create_engine(fresh_postgres_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE facebook_ads.basic_ad SET inline_link_clicks = 5000 "
                          "WHERE ad_id = '9003' AND date = :d"), {"d": day(2)})
        conn.execute(text("UPDATE facebook_ads.basic_ad SET spend = -1 WHERE ad_id = '9001' "
                          "AND date = :d"), {"d": day(0)})
    engine.dispose()
    with pytest.raises(InputFileError) as refused:
        import_from_warehouse(engine=stored, url=fresh_postgres_url, source="fivetran",
                              schema="facebook_ads", action_types=["lead"], now=NOW)
    message = refused.value.message
    assert "fivetran:1 column 'spend': -1.0 is not a non-negative number" in message
    assert "column 'clicks': 5000 is more than the" in message
    assert refused.value.total == 2
    assert ad_days(stored) == {}


def test_wrong_source_or_query_is_a_config_error(stored, fresh_postgres_url):
    with pytest.raises(ConfigError, match="--source must be fivetran, airbyte or query"):
        import_from_warehouse(engine=stored, url=fresh_postgres_url, source="stitch",
                              action_types=["lead"])
    with pytest.raises(ConfigError, match="--source query needs --query"):
        import_from_warehouse(engine=stored, url=fresh_postgres_url, source="query",
                              action_types=["lead"])
    with pytest.raises(ConfigError, match="no SQLAlchemy dialect or driver for 'bigquery'"):
        import_from_warehouse(engine=stored, url="bigquery://project/dataset",
                              source="fivetran", action_types=["lead"])


@pytest.mark.slow  # CLI process starts
def test_the_command_and_its_exit_codes(tmp_path, fresh_postgres_url):
    create_fivetran_tables(fresh_postgres_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env["ADSENTINEL_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "adsentinel", "import", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=180)

    done = run("--from-sql", fresh_postgres_url, "--source", "fivetran", "--schema",
               "facebook_ads")
    assert done.returncode == 0, done.stderr
    assert "act_123456" in done.stdout and "60" in done.stdout
    missing = run("--from-sql", fresh_postgres_url, "--source", "airbyte")
    assert missing.returncode == 69 and "ads_insights" in missing.stderr
