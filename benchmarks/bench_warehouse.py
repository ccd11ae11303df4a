"""Memory and throughput of `adsentinel import --from-sql --source fivetran`, small against large.

Fills Fivetran-shaped tables (``basic_ad``, ``basic_ad_actions`` and the three history tables)
in a scratch PostgreSQL database with SQL (``generate_series``), then imports them into a fresh
SQLite file through the real command, in a child process whose peak RSS is its own: once with
``--small`` ad-days (the reference: what the process costs whatever the data) and once with
``--ads`` x ``--days``. Memory that does not grow with the rows is what streaming means. Last
line: ``BENCH warehouse_rows_s=... peak_mib_small=... peak_mib_large=... rows=...``.

    python benchmarks/bench_warehouse.py [--ads 4000] [--days 60] [--small-ads 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_postgres import scratch_database

ADSENTINEL = Path(sys.executable).with_name("adsentinel")
ACCOUNT = 777


def fill_fivetran_tables(url: str, ads: int, days: int) -> int:
    """Fivetran's tables for one account of ``ads`` ads (10 per ad set, 100 per campaign)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""CREATE TABLE basic_ad (ad_id TEXT, date DATE, account_id BIGINT,
            impressions BIGINT, inline_link_clicks BIGINT, spend DOUBLE PRECISION, reach BIGINT)"""))
        conn.execute(text("""CREATE TABLE basic_ad_actions (ad_id TEXT, date DATE,
            action_type TEXT, value DOUBLE PRECISION)"""))
        for table, parent in (("ad_history", "ad_set_id BIGINT, campaign_id BIGINT,"),
                              ("ad_set_history", "campaign_id BIGINT,"), ("campaign_history", "")):
            conn.execute(text(f"""CREATE TABLE {table} (id BIGINT, updated_time TIMESTAMP,
                name TEXT, account_id BIGINT, {parent} status TEXT)"""))
        grid = f"generate_series(1, {ads}) a, generate_series(0, {days - 1}) d"
        conn.execute(text(f"""INSERT INTO basic_ad SELECT a::text, DATE '2026-09-01' + d,
            {ACCOUNT}, 1000 + d, 20 + a % 7, 50 + a % 13, 500 FROM {grid}"""))
        conn.execute(text(f"""INSERT INTO basic_ad_actions SELECT a::text, DATE '2026-09-01' + d,
            'lead', (a + d) % 4 FROM {grid}"""))
        conn.execute(text(f"""INSERT INTO ad_history SELECT a, now(), 'ad ' || a, {ACCOUNT},
            100000 + a / 10, 200000 + a / 100, 'ACTIVE' FROM generate_series(1, {ads}) a"""))
        conn.execute(text(f"""INSERT INTO ad_set_history SELECT 100000 + s, now(), 'set ' || s,
            {ACCOUNT}, 200000 + s / 10, 'ACTIVE' FROM generate_series(0, {ads // 10}) s"""))
        conn.execute(text(f"""INSERT INTO campaign_history SELECT 200000 + s, now(),
            'campaign ' || s, {ACCOUNT}, 'ACTIVE' FROM generate_series(0, {ads // 100}) s"""))
    engine.dispose()
    return ads * days


def import_once(url: str) -> tuple[float, float]:
    """Seconds and peak MiB of one `adsentinel import --from-sql` into a fresh SQLite file."""
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
        env["ADSENTINEL_DATA_DIR"] = folder
        started = time.monotonic()
        log = Path(folder) / "import.log"
        with open(log, "wb") as out:  # a file, not a pipe: nothing can fill up and block
            child = subprocess.Popen([str(ADSENTINEL), "import", "--from-sql", url, "--source",
                                      "fivetran"], env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest yet
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the import failed: {log.read_text()[-2000:]}")
        peak = usage.ru_maxrss  # KiB on Linux
        return time.monotonic() - started, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ads", type=int, default=4000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--small-ads", type=int, default=100)
    args = parser.parse_args()
    results = {}
    for label, ads in (("small", args.small_ads), ("large", args.ads)):
        with scratch_database() as url:
            rows = fill_fivetran_tables(url, ads, args.days)
            seconds, peak = import_once(url)
        results[label] = (rows, seconds, peak)
        print(f"{label}: {rows:,} ad-days in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
              f"peak {peak:.0f} MiB")
    rows, seconds, peak = results["large"]
    growth = peak - results["small"][2]
    print(f"{rows / results['small'][0]:.0f}x the rows cost {growth:+.0f} MiB")
    print(f"BENCH warehouse_rows_s={rows / seconds:.0f} peak_mib_small={results['small'][2]:.0f} "
          f"peak_mib_large={peak:.0f} rows={rows}")


if __name__ == "__main__":
    main()
