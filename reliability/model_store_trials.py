"""Fault trials on the model store: full or made read-only in the middle of a training, and a
training rewriting an account's models while detection reads them.

On the embedded SQLite default in a temporary folder, with the model store on a tmpfs of its own
(``--store-mib``, mounted by the script: needs root, as on this project's machines). One synthetic
account (the ``demo`` preset, ``--ads`` ads x 90 days, fixed seed) imported and trained once: the
reference models. A retraining always writes different bytes (its ``trained_at``).

* ``full``: the store is filled (a filler file) until a random number of bytes is left, less than
  the account's models need (``--seed``), then the account is retrained;
* ``readonly``: the account is retrained and, after a random delay within a clean training's
  duration, the store is remounted read-only.

After each, the training must have raised ``ModelStoreError`` saying what happened and what to do
(or have finished before the fault), and: every model pack (one signed file per campaign) is
whole (``ModelStore.load_models`` refuses none) and is either the previous pack (same bytes) or
one this training wrote (its models' ``trained_at`` after it started); no model is missing; no
temporary file is left; the production loader gives detection a model for every entity that had
one.

* ``concurrent``: a separate process loads every model of the account through the production
  loader (process-wide cache, as a worker) in a loop, while this process retrains the account
  ``--trials`` times. Every load must return a whole model (old or new: the pack a training
  renamed into place); a refusal or a missing model is a failure. The reader also counts how
  many different models (``trained_at``) it saw per entity, to show it did read across retrains.

    .venv/bin/python reliability/model_store_trials.py [--trials 20] [--seed 4] [--ads 60]
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

SIGNING_KEY = "reliability-signing-key-0123"


def settings_for(folder: Path, store: Path):
    from adsentinel.config import load_settings

    return load_settings(data_dir=str(folder / "data"), models_storage_path=str(store),
                         model_signing_key=SIGNING_KEY, log_level="ERROR")


def reader(folder: Path, store: Path, account_id: int, seconds: float) -> None:
    """The detection side of ``concurrent``: load every model again and again; print counts."""
    from adsentinel.detection.service import load_detection_models
    from adsentinel.model_store.store import ModelStore

    settings = settings_for(folder, store)
    entities = set(ModelStore.from_settings(settings, cache=None).load_models(account_id).models)
    counts: Counter = Counter()
    versions: dict[int, set[str]] = {entity: set() for entity in entities}
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        production = load_detection_models(settings=settings, account_id=account_id)
        counts["loads"] += len(entities)
        counts["missing or refused"] += len(entities - set(production.models))
        counts["refused"] += production.refused_count
        uncached = ModelStore.from_settings(settings, cache=None).load_models(account_id)
        counts["read refused"] += uncached.refused_count
        counts["missing"] += len(entities - set(uncached.models))
        for entity, found in uncached.models.items():
            versions.setdefault(entity, set()).add(found.metadata.trained_at)
            counts["reads"] += 1
        counts["rounds"] += 1
    counts["models seen per file, most"] = max(map(len, versions.values()), default=0)
    counts["models seen per file, least"] = min(map(len, versions.values()), default=0)
    print(json.dumps(counts), flush=True)


def mount_store(path: Path, mib: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot mount a tmpfs for the model store at {path}: "
                         f"{getattr(exc, 'stderr', '') or exc}; run as root") from None


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path, leave_bytes: int) -> Path:
    filler = path / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def main() -> None:  # noqa: C901, PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per fault (default 20)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--ads", type=int, default=60)
    parser.add_argument("--data-seed", type=int, default=3)
    parser.add_argument("--store-mib", type=int, default=32)
    parser.add_argument("--fault", choices=["full", "readonly", "concurrent", "all"],
                        default="all")
    parser.add_argument("--_reader", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._reader:
        folder, store, account, seconds = args._reader
        reader(Path(folder), Path(store), int(account), float(seconds))
        return

    from sqlalchemy import select

    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.db.models import AdAccount
    from adsentinel.detection.service import load_detection_models
    from adsentinel.errors import ModelStoreError
    from adsentinel.evaluation.dataset_files import write_dataset
    from adsentinel.evaluation.lab_world import generate_dataset, preset_config
    from adsentinel.ingest.csv_import import import_insights_csv
    from adsentinel.model_store.store import PACK_SUFFIX, ModelStore
    from adsentinel.training.service import train_account_models

    rng = random.Random(args.seed)
    faults = ["full", "readonly", "concurrent"] if args.fault == "all" else [args.fault]
    folder = Path(tempfile.mkdtemp(prefix="adsentinel-store-trials-"))
    store_path = folder / "models"
    mount_store(store_path, args.store_mib)
    results: dict[str, Counter] = {}
    problems: list[str] = []
    try:
        settings = settings_for(folder, store_path)
        engine = open_database(settings)
        dataset = generate_dataset(preset_config("demo", seed=args.data_seed, accounts=1,
                                                 ads_per_account=args.ads, days=90,
                                                 end_date=date(2026, 11, 20)))
        import_insights_csv(write_dataset(dataset, folder / "generated").insights, engine=engine)
        factory = make_session_factory(engine)
        with factory() as session:
            account_id = session.scalars(select(AdAccount.id)).one()
        store = ModelStore.from_settings(settings, cache=None)
        account_dir = store.account_dir(account_id)

        def train():
            return train_account_models(session_factory=factory, settings=settings,
                                        account_id=account_id)

        train()
        started = time.perf_counter()  # the second, warm, training sets the range of faults
        train()
        clean = time.perf_counter() - started
        paths = sorted(account_dir.glob("*" + PACK_SUFFIX))
        total = sum(p.stat().st_size for p in paths)
        reference = set(store.load_models(account_id).models)
        print(f"{len(reference)} models in {len(paths)} packs, {total:,} bytes, trained in {clean:.1f} s; store: tmpfs of "
              f"{args.store_mib} MiB", flush=True)

        def check(before: dict[Path, bytes], since: str, label: str) -> list[str]:
            """Whole models, old or written since ``since``; none missing; no temporary file;
            every one loadable by detection."""
            found = []
            now = sorted(account_dir.glob("*" + PACK_SUFFIX))
            if set(now) != set(before):
                found.append(f"model packs {len(before)} -> {len(now)}")
            replaced = 0
            for path in now:
                campaign = int(path.name.removesuffix(PACK_SUFFIX).split("_", 1)[1])
                loaded = store.load_models(account_id, campaign_ids=[campaign])
                if loaded.refused_campaigns:
                    found.append(f"{path.name} refused")
                    continue
                if path.read_bytes() != before.get(path):
                    replaced += 1
                    if min(m.metadata.trained_at for m in loaded.models.values()) < since:
                        found.append(f"{path.name} neither the old pack nor a new one")
            temps = [p.name for p in account_dir.iterdir() if p.name.endswith(".tmp")]
            if temps and label == "readonly":
                # staged before the remount, they cannot be removed from a read-only store
                results[label]["temporary files a read-only store kept"] += len(temps)
            elif temps:
                found.append(f"{len(temps)} temporary files left")
            production = load_detection_models(settings=settings, account_id=account_id)
            missing = len(reference - set(production.models))
            if missing:
                found.append(f"{missing} models not loaded for detection")
            results[label]["models replaced before the fault"] += replaced
            return found

        for fault in faults:
            counts = results.setdefault(fault, Counter())
            if fault == "concurrent":
                seconds = max(5.0, clean * args.trials * 1.5)
                child = subprocess.Popen(
                    [sys.executable, __file__, "--_reader", str(folder), str(store_path),
                     str(account_id), f"{seconds:.1f}"], stdout=subprocess.PIPE, text=True)
                assert child.stdout.readline().strip() == "ready"
                for _ in range(args.trials):
                    train()
                    counts["trainings"] += 1
                out = child.stdout.read()
                child.wait(timeout=seconds + 120)
                seen = json.loads(out.strip().splitlines()[-1])
                counts.update(seen)
                bad = seen.get("missing or refused", 0) + seen.get("read refused", 0) + \
                    seen.get("missing", 0)
                counts["trials"] = counts["trainings"]
                counts["recovered" if not bad else "failed"] += counts["trainings"]
                print(f"concurrent: {counts['trainings']} trainings while the reader did "
                      f"{seen.get('loads', 0):,} loads and {seen.get('reads', 0):,} verified reads "
                      f"in {seen.get('rounds', 0):,} rounds, "
                      f"{seen.get('models seen per file, least', 0)}-"
                      f"{seen.get('models seen per file, most', 0)} different models per entity; "
                      f"missing or refused: {bad}", flush=True)
                if bad:
                    problems.append(f"concurrent: {seen}")
                continue
            for trial in range(1, args.trials + 1):
                before = {p: p.read_bytes() for p in sorted(account_dir.glob("*" + PACK_SUFFIX))}
                since = datetime.now(timezone.utc).isoformat()
                filler = None
                error: list[BaseException] = []
                if fault == "full":
                    leave = rng.randrange(0, total)
                    filler = fill(store_path, leave)
                    what = f"{leave:,} of {total:,} bytes left"
                    try:
                        train()
                    except ModelStoreError as exc:
                        error.append(exc)
                else:
                    delay = rng.uniform(0.05, 0.95) * clean
                    what = f"read-only after {delay:.2f} s"

                    def run(error=error) -> None:
                        try:
                            train()
                        except ModelStoreError as exc:
                            error.append(exc)

                    thread = threading.Thread(target=run)
                    thread.start()
                    time.sleep(delay)
                    remount(store_path, "ro")
                    thread.join()
                found = check(before, since, fault)
                if error:
                    message = str(error[0])
                    counts["clear error"] += ("could not be saved" in message
                                              and bool(error[0].hint))
                    verdict = "ModelStoreError: " + message.split(" under ", 1)[-1][:120]
                else:
                    counts["finished before the fault"] += 1
                    verdict = "training finished before the fault"
                if fault == "readonly":
                    remount(store_path, "rw")
                if filler is not None:
                    filler.unlink()
                counts["trials"] += 1
                counts["recovered" if not found else "failed"] += 1
                print(f"{fault:8} trial {trial:2}/{args.trials}: {what} -> {verdict}"
                      + (f"; PROBLEM: {'; '.join(found)}" if found else ""), flush=True)
                if found:
                    problems.append(f"{fault} trial {trial}: {'; '.join(found)}")
                # back to a known state: every model from one whole training
                if error:
                    train()
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
    finally:
        subprocess.run(["umount", "-l", str(store_path)], check=False)
        shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| model store fault | trials | clear error | training finished before the fault | "
          "all models whole, old or new, loadable, no temp file | failed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for fault, c in results.items():
        print(f"| {fault} | {c['trials']} | {c['clear error']} | "
              f"{c['finished before the fault']} | {c['recovered']} | {c['failed']} |")
    kept = results.get("readonly", Counter())["temporary files a read-only store kept"]
    if kept:
        print(f"temporary files staged before a read-only remount, which the store then could "
              f"not delete: {kept} (never opened by readers; removed by a later training once "
              "stale)")
    for problem in problems:
        print("PROBLEM", problem)
    summary = " ".join(f"{f}_trials={c['trials']} {f}_ok={c['recovered']}"
                       for f, c in results.items())
    print(f"RELIABILITY model_store_trials seed={args.seed} {summary}")


if __name__ == "__main__":
    main()
