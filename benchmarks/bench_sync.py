"""The Meta sync of an agency, through the Graph API emulator (tests/sync/graph_emulator.py, run
in its own process): ``--accounts`` accounts of ``--ads`` ads each, a first sync of ``--days``
days and then the hourly re-sync (yesterday and today), on SQLite (or ``--database-url``).

Reports wall time, Graph calls and ad-day rows of each phase, and this process's peak memory
after the first account and after the last (bounded: it must not grow with the number of
accounts). The reference, in the same run, is downloading the same first account's insights
pages with plain ``requests`` (no SDK, no validation, no database): the floor the emulator and
HTTP impose.

    python benchmarks/bench_sync.py                          # 50 accounts x 2,000 ads, 28 days
    python benchmarks/bench_sync.py --accounts 3 --ads 500   # a quick run

The last line is ``BENCH sync ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from adsentinel.accounts.service import add_meta_account
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.sync.service import date_ranges, sync_account, sync_before_detection

EMULATOR = Path(__file__).resolve().parents[1] / "tests" / "sync" / "graph_emulator.py"
TOKEN = "EAAbenchToken000000000000000000000"
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def peak_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reference_download(url: str, account: str, days: int) -> tuple[float, int, int]:
    """Seconds, calls and rows to page through one account's ad insights with requests, in the
    sync's date ranges."""
    started, calls, rows = time.perf_counter(), 0, 0
    with requests.Session() as session:
        for first, last in date_ranges(NOW.date() - timedelta(days=days - 1), NOW.date()):
            params = {"access_token": TOKEN, "level": "ad", "time_increment": 1, "limit": 500,
                      "fields": "date_start,ad_id,spend,impressions,inline_link_clicks,reach,"
                                "actions,action_values",
                      "time_range": json.dumps({"since": first.isoformat(),
                                                "until": last.isoformat()})}
            while True:
                body = session.get(f"{url}/v26.0/{account}/insights", params=params,
                                   timeout=300).json()
                calls += 1
                rows += len(body["data"])
                if "next" not in body.get("paging", {}):
                    break
                params["after"] = body["paging"]["cursors"]["after"]
    return time.perf_counter() - started, calls, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--ads", type=int, default=2000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    emulator = subprocess.Popen([sys.executable, str(EMULATOR), "--accounts", str(args.accounts),
                                 "--ads", str(args.ads), "--token", TOKEN],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = emulator.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as folder:
        overrides = {"data_dir": Path(folder), "meta_graph_url": url,
                     "sync_window_days": args.days, "isolation_forest_min_samples": 2,
                     "isolation_forest_history_days": max(args.days, 2)}
        if args.database_url:
            overrides["database_url"] = args.database_url
        settings = load_settings(**overrides)
        factory = make_session_factory(open_database(settings))
        environ = {"META_TOKEN": TOKEN}
        ids = [add_meta_account(session_factory=factory, platform_account_id=f"act_{700_000 + n}",
                                token_env="META_TOKEN").id for n in range(1, args.accounts + 1)]

        ref_seconds, ref_calls, ref_rows = reference_download(url, "act_700001", args.days)
        phases = {}
        for phase, now in (("first sync", NOW), ("hourly re-sync", NOW + timedelta(hours=1))):
            started, calls, rows, memory = time.perf_counter(), 0, 0, []
            for index, account_id in enumerate(ids):
                if phase == "first sync":
                    summary = sync_account(session_factory=factory, settings=settings,
                                           account_id=account_id, environ=environ, now=now)
                    result = summary.as_dict()
                else:
                    result = sync_before_detection(session_factory=factory, settings=settings,
                                                   account_id=account_id, environ=environ,
                                                   now=now)
                if result["status"] != "succeeded":
                    raise SystemExit(f"account {account_id}: {result['reason']}")
                calls += result["api_calls"]
                rows += result["insight_rows"]
                if index in (0, len(ids) - 1):
                    memory.append(peak_mib())
            phases[phase] = (time.perf_counter() - started, calls, rows, memory)
    emulator.stdin.close()
    served = emulator.stdout.readline().strip()
    emulator.wait(timeout=60)

    print(f"{args.accounts} accounts x {args.ads} ads, {args.days} days, "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}; emulator served {served} requests")
    print(f"reference: one account's ad insights downloaded with requests: {ref_seconds:.2f} s, "
          f"{ref_calls} calls, {ref_rows:,} rows ({ref_rows / ref_seconds:,.0f} rows/s)")
    print("| phase | seconds | per account | Graph calls | ad-day rows | rows/s | vs reference "
          "| peak MiB after 1st / last account |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    reference_rate = ref_rows / ref_seconds
    for phase, (seconds, calls, rows, memory) in phases.items():
        rate = rows / seconds if seconds else 0.0
        print(f"| {phase} | {seconds:.1f} | {seconds / args.accounts:.2f} | {calls:,} | {rows:,} "
              f"| {rate:,.0f} | {reference_rate / rate if rate else 0:.1f}x slower | "
              f"{memory[0]:.0f} / {memory[-1]:.0f} |")
    first, hourly = phases["first sync"], phases["hourly re-sync"]
    print(f"BENCH sync accounts={args.accounts} ads={args.ads} days={args.days} "
          f"first_s={first[0]:.1f} first_calls={first[1]} first_rows={first[2]} "
          f"hourly_s={hourly[0]:.1f} hourly_calls={hourly[1]} hourly_rows={hourly[2]} "
          f"peak_mib_first_account={first[3][0]:.0f} peak_mib_end={hourly[3][-1]:.0f}")


if __name__ == "__main__":
    main()
