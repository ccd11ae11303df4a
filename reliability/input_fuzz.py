"""Fuzz trials: hostile CSV files into the importer, hostile settings into ``load_settings``.

The cases and the checks are the property-based tests' own (``tests/fuzz_inputs.py``), run here
without stopping at the first failure so that every outcome is counted:

* CSV / XLSX import: files drawn by ``csv_cases`` (English, Portuguese and Spanish header
  aliases, missing / duplicated / unknown / renamed columns; ``,`` ``;`` or tab; plain, US
  ``1,054.03`` or Brazilian ``1.564,97`` numbers; ISO, ``dd/mm/yyyy`` or ``mm/dd/yyyy`` dates of
  any day from year 1 to 9999, and junk; XLSX workbooks with typed or text cells; UTF-8 / UTF-8
  BOM / UTF-16 / Latin-1 / CP1252, LF / CRLF / CR, quoting broken, cut files, hostile cells:
  huge, negative, non-finite, ambiguous ``1.234``, Unicode digits, NUL and other control
  characters, over-long text; summary rows, duplicate ad-days, clicks or reach above
  impressions, an ad under two ad sets, future days), 1 in 6 with ``skip_invalid``, 1 in 8 with
  an ``--account`` name (valid or hostile). All go into one database, reused, so imports restate
  and conflict with what earlier ones stored. A case is "accepted" when the import returns,
  every line is stored as it reads with no documented rule broken, *and then* training,
  detection and the charts of every entity of the accounts it touched run without an exception
  (the service functions, embedded default settings); "refused" when it raises
  ``InputFileError`` with every problem located (file, line, known column), a hint, and no table
  changed; a "crash" otherwise (another exception in the import or after it, an unclear error,
  a half-written database, a stored row that breaks a rule).
* settings, environment: ``ADSENTINEL_*`` variables for every field (valid, hostile text and
  numbers, empty, Unicode, bytes that are not UTF-8, huge) loaded with ``load_settings`` as the
  CLI does. "Accepted": every value within its documented constraints and ``config show``'s
  masked view renders without showing a secret; "refused": ``ConfigError`` naming a variable that
  was set and showing no secret; "crash": anything else.
* settings, .env file: the same variables written (quoted or not, with stray bytes) to ``.env``.

    .venv/bin/python reliability/input_fuzz.py [--cases 5000] [--seed 1]
        [--target csv|settings|both] [--database sqlite|postgresql|both]

Prints one table row per target and each distinct crash with an example. The temporary folder
(and the scratch PostgreSQL database) are removed on exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from fuzz_inputs import (  # noqa: E402  (the tests' strategies and checks)
    CsvImportTrials,
    check_settings_environment,
    csv_cases,
    dotenv_files,
    settings_environments,
)
from scratch_postgres import scratch_database  # noqa: E402


class Tally:
    """Outcomes of one target, and one example per distinct crash."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter = Counter()
        self.crashes: dict[str, tuple[int, object]] = {}
        self.seconds = 0.0
        self.pipeline_runs: int | None = None  # accepted imports then trained, detected, charted

    def add(self, case: object, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        if kind == "crash":  # grouped by the message without its values
            key = re.sub(r"'[^']*'|\(got .*|0x[0-9a-fA-F]+|\d+", "_", detail)[:100]
            count, example = self.crashes.get(key, (0, case))
            self.crashes[key] = (count + 1, example)


def run_cases(tally: Tally, strategy, check: Callable, cases: int, chosen_seed: int) -> None:
    """``cases`` draws of ``strategy`` through ``check`` (generation only: nothing is shrunk)."""

    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(chosen_seed)
    @given(strategy)
    def trial(case) -> None:
        outcome = check(case)
        tally.add(case, outcome.kind, outcome.detail)

    started = time.monotonic()
    trial()
    tally.seconds = time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="cases per target (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed of the cases")
    parser.add_argument("--target", choices=["csv", "settings", "both"], default="both")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="where the CSV cases are imported (default sqlite)")
    args = parser.parse_args()

    from adsentinel.config import load_settings

    logging.disable(logging.CRITICAL)  # the importer's and dotenv's log lines are not results
    for name in [n for n in os.environ if n.startswith("ADSENTINEL_")
                 and not n.startswith("ADSENTINEL_TEST_")]:
        del os.environ[name]
    folder = Path(tempfile.mkdtemp(prefix="adsentinel-input-fuzz-"))
    home = Path.cwd()
    tallies: list[Tally] = []
    try:
        os.chdir(folder)  # load_settings reads ./.env: only the .env cases write one here
        if args.target in ("csv", "both"):
            databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
            for database in databases:
                tally = Tally(f"CSV import, {'SQLite' if database == 'sqlite' else 'PostgreSQL'}")
                tallies.append(tally)
                print(f"{tally.name}: {args.cases} cases ...", flush=True)
                if database == "sqlite":
                    run_csv(tally, load_settings(data_dir=folder / "data"), folder, args)
                else:
                    with scratch_database() as url:
                        run_csv(tally, load_settings(data_dir=folder / "data-pg",
                                                     database_url=url), folder, args)
        if args.target in ("settings", "both"):
            for name, strategy, check in (
                    ("settings, environment", settings_environments(), check_settings_environment),
                    ("settings, .env file", dotenv_files(),
                     lambda data: check_settings_environment({}, dotenv=data))):
                tally = Tally(name)
                tallies.append(tally)
                print(f"{tally.name}: {args.cases} cases ...", flush=True)
                run_cases(tally, strategy, check, args.cases, args.seed)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
    finally:
        os.chdir(home)
        shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| target | cases tried | accepted | refused with a clear error | crashes | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tally in tallies:
        c = tally.counts
        print(f"| {tally.name} | {sum(c.values())} | {c['accepted']} | {c['refused']} | "
              f"{c['crash']} | {tally.seconds:.0f} |")
    for tally in tallies:
        if tally.pipeline_runs is not None:
            print(f"{tally.name}: {tally.pipeline_runs} accepted imports then trained, detected "
                  f"and charted")
    for tally in tallies:
        for key, (count, case) in sorted(tally.crashes.items(), key=lambda kv: -kv[1][0]):
            print(f"CRASH {tally.name}: {count} x {key}\n    e.g. {case!r:.400}")
    total = sum(t.counts["crash"] for t in tallies)
    summary = " ".join(f"{t.name.replace(' ', '_').replace(',', '')}="
                       f"{sum(t.counts.values())}/{t.counts['crash']}" for t in tallies)
    print(f"RELIABILITY input_fuzz seed={args.seed} cases={args.cases} (tried/crashes) {summary}")
    sys.exit(1 if total else 0)


def run_csv(tally: Tally, database_settings, folder: Path, args) -> None:
    from adsentinel.db.engine import open_database

    engine = open_database(database_settings)
    try:
        trials = CsvImportTrials(engine, folder / "in.csv", database_settings)
        run_cases(tally, csv_cases(), trials.check, args.cases, args.seed)
        tally.pipeline_runs = trials.pipeline_runs
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
