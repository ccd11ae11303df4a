"""Import throughput and memory on SQLite and PostgreSQL, against reading the same CSV.

Generates the ``benchmark`` synthetic preset (about 1.2 million ad-day rows) once, then in
separate child processes (so each peak memory is its own):

* reference: read every line of the file with ``csv.reader`` and do nothing else;
* adsentinel import into a fresh SQLite file;
* adsentinel import into a fresh PostgreSQL database (skipped with a note if unreachable).

Prints rows/s, the ratio to the reference (how many times slower than merely reading the CSV), and
peak RSS. Last line: ``BENCH import_sqlite_rows_s=... import_postgres_rows_s=... rows=...``.

    python benchmarks/bench_import.py [--preset benchmark] [--ads N] [--days D]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_postgres import scratch_database

CHILD = r"""
import csv, json, sys, time
from pathlib import Path
mode, path, target = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
if mode == "reference":
    with path.open(newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
else:
    from adsentinel.config import load_settings
    from adsentinel.db.engine import open_database
    from adsentinel.ingest.csv_import import import_insights_csv
    if mode == "sqlite":
        settings = load_settings(data_dir=Path(target))
    else:
        settings = load_settings(database_url=target)
    engine = open_database(settings)
    start = time.perf_counter()
    rows = import_insights_csv(path, engine=engine).rows_imported
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent
hwm_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": hwm_kib / 1024}))
"""


def run_child(mode: str, path: Path, target: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), target],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="benchmark")
    parser.add_argument("--ads", type=int, default=None, help="ads per account (overrides preset)")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="admin URL; a throw-away database is created beside it")
    args = parser.parse_args()

    from sqlalchemy.exc import OperationalError

    from adsentinel.evaluation.dataset_files import write_dataset
    from adsentinel.evaluation.lab_world import generate_dataset, preset_config

    with tempfile.TemporaryDirectory(prefix="adsentinel-bench-") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        dataset = generate_dataset(preset_config(args.preset, ads_per_account=args.ads,
                                                 days=args.days))
        csv_path = write_dataset(dataset, tmp_path / "data").insights
        n_rows = len(dataset.insights)
        del dataset
        print(f"generated {n_rows:,} rows ({csv_path.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - started:.1f} s")

        results = {"reference (csv.reader only)": run_child("reference", csv_path, "")}
        results["adsentinel import, SQLite"] = run_child("sqlite", csv_path, str(tmp_path / "db"))

        try:
            with scratch_database(args.postgres) as target:
                results["adsentinel import, PostgreSQL"] = run_child("postgres", csv_path, target)
        except OperationalError as exc:
            print(f"PostgreSQL skipped: {exc}")

    reference = results["reference (csv.reader only)"]
    ref_rate = reference["rows"] / reference["seconds"]
    print(f"{'run':34} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'x slower than read':>19} "
          f"{'peak MiB':>9}")
    for label, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(f"{label:34} {r['rows']:>10,} {r['seconds']:>8.1f} {rate:>9,.0f} "
              f"{ref_rate / rate:>19.1f} {r['peak_mib']:>9.0f}")
    sqlite = results["adsentinel import, SQLite"]
    postgres = results.get("adsentinel import, PostgreSQL")
    pg_rate = f"{postgres['rows'] / postgres['seconds']:.0f}" if postgres else "n/a"
    print(f"BENCH import_sqlite_rows_s={sqlite['rows'] / sqlite['seconds']:.0f} "
          f"import_postgres_rows_s={pg_rate} "
          f"sqlite_peak_mib={sqlite['peak_mib']:.0f} rows={n_rows}")


if __name__ == "__main__":
    main()
