"""The nightly training and the hourly detection cycle through 1 and 2 Celery workers: duration
and peak memory, against the same work done in one process without Celery (the reference, in
the same run).

Builds a throw-away PostgreSQL database with one account of N entities x 90 days (the same
synthetic delivery as ``bench_forest.py``), then:

* reference: ``run_training`` and ``run_detection`` in this process, of the whole account or of
  its first ``--reference-entities`` (whole campaigns), compared by entities per second;
* production path: worker processes (``adsentinel worker --concurrency 1``) on Redis, the account
  split into chunks of ``N / 8`` entities, timed from dispatch to the last chunk's result:
  with 2 workers, ``train_anomaly_detectors_all``, then ``detect_anomalies_all`` (first
  detection: the last two days of every entity), then the steady hourly cycle (every entity's
  latest day rewritten, as the hourly sync does: only the changed rows are judged); then with 1
  worker, the training and the hourly cycle again (``--skip-one-worker`` leaves these out);
* each phase runs on freshly started workers whose process trees are sampled every 0.2 s: the
  peak resident memory of all workers together, and the largest high-water mark of one process.

Prints durations, tasks/s, entities/s, the speed-up over the reference and peak memory.
Last line: ``BENCH workers entities=N training2_s=... training2_peak_mib=... ... train_speedup=...``

    python benchmarks/bench_workers.py [--entities 20000] [--reference-entities N]
        [--redis redis://127.0.0.1:6379/13] [--skip-one-worker] [--store folder|postgresql]

``--store postgresql`` keeps the model store in the benchmark's PostgreSQL database
(``ADSENTINEL_MODELS_STORAGE_URL``) instead of the data folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_forest import _populate  # same synthetic delivery
from scratch_postgres import scratch_database

MIB = 1024 * 1024


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (the Celery worker and its prefork children), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        children.setdefault(parent, []).append(int(entry))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _memory_kib(pid: int) -> tuple[int, int]:
    """(resident now, resident high-water mark) of one process in KiB; zeros once it ended."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(None, 1)[0]
                if key in values:
                    values[key] = int(line.split()[1])
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


class PeakMemory:
    """Samples the resident memory of worker process trees every 0.2 s while a phase runs.

    ``peak_total_mib``: the largest sum over every worker process at one instant.
    ``peak_process_mib``: the largest high-water mark of any single process (the kernel's
    VmHWM, so a peak between two samples is not missed)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak_total_mib = 0.0
        self.peak_process_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            total = 0
            for root in self.roots:
                for pid in process_tree(root):
                    resident, high_water = _memory_kib(pid)
                    total += resident
                    self.peak_process_mib = max(self.peak_process_mib, high_water / 1024)
            self.peak_total_mib = max(self.peak_total_mib, total / 1024)
            if self._stop.wait(0.2):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()  # the last sample runs before the workers are stopped
        self._thread.join()


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen]:
    workers = [subprocess.Popen(
        [sys.executable, "-m", "adsentinel", "worker", "--concurrency", "1",
         "-n", f"bench{index}@%h"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for index in range(count)]
    time.sleep(5)  # workers up before the clock starts
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        process.terminate()
    for process in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", choices=["folder", "postgresql"], default="folder",
                        help="where the model store lives (default: the data folder)")
    parser.add_argument("--reference-entities", type=int, default=None,
                        help="one-process reference on this many entities (default: all)")
    parser.add_argument("--skip-first-detection", action="store_true",
                        help="mark every entity judged instead of running the first detection "
                             "(about 25 minutes at 100,000 entities); the hourly cycles are then "
                             "measured from that state")
    parser.add_argument("--skip-one-worker", action="store_true",
                        help="measure only 2 workers (the 1-worker training and hourly cycle "
                             "add about half the run)")
    args = parser.parse_args()

    import redis
    from sqlalchemy import func, select, text

    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.db.models import Anomaly
    from adsentinel.detection.service import run_detection
    from adsentinel.training.service import train_account_models
    from adsentinel.worker.app import create_celery_app

    redis.Redis.from_url(args.redis).flushdb()
    workers: list[subprocess.Popen] = []
    try:
        with scratch_database() as url, \
                tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
            started = time.perf_counter()
            _populate(url, folder, args.entities, args.seed)
            print(f"{args.entities:,} entities x 90 days in PostgreSQL in "
                  f"{time.perf_counter() - started:.0f} s")
            chunk = max(1, args.entities // 8)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")},
                   "ADSENTINEL_DATABASE_URL": url, "ADSENTINEL_BROKER_URL": args.redis,
                   "ADSENTINEL_DATA_DIR": folder, "ADSENTINEL_LOG_LEVEL": "WARNING",
                   "ADSENTINEL_MODEL_SIGNING_KEY": "bench-signing-key-0123",
                   "ADSENTINEL_CHUNK_ENTITIES": str(chunk)}
            store = {}
            if args.store == "postgresql":
                env["ADSENTINEL_MODELS_STORAGE_URL"] = url
                store = {"models_storage_url": url}
            settings = load_settings(database_url=url, broker_url=args.redis, data_dir=folder,
                                     model_signing_key="bench-signing-key-0123", chunk_entities=chunk,
                                     models_storage_path=Path(folder) / "reference-models", **store)
            factory = make_session_factory(open_database(settings))

            reference_n = min(args.reference_entities or args.entities, args.entities)
            campaigns = None  # campaigns are entities 1, 101, 201, ... (see _populate)
            if reference_n < args.entities:
                campaigns = list(range(1, reference_n + 1, 100))
                reference_n = len(campaigns) * 100
            started = time.perf_counter()
            train_account_models(session_factory=factory, settings=settings, account_id=1,
                                 campaign_ids=campaigns)
            reference_train = (time.perf_counter() - started) * args.entities / reference_n
            started = time.perf_counter()
            if not args.skip_first_detection:
                run_detection(session_factory=factory, settings=settings, account_id=1,
                              campaign_ids=campaigns)
            reference_detect = (time.perf_counter() - started) * args.entities / reference_n
            with factory.begin() as session:  # the workers start from the same state
                session.execute(text("DELETE FROM anomalies"))
                session.execute(text("UPDATE entities SET judged_at = NULL"))
            print(f"reference, one process, {reference_n:,} entities scaled to {args.entities:,}: "
                  f"training {reference_train:.1f} s, detection "
                  + ("skipped" if args.skip_first_detection else f"{reference_detect:.1f} s"))

            app = create_celery_app(load_settings(database_url=url, broker_url=args.redis,
                                                  data_dir=folder))

            def cycle(name: str) -> tuple[float, int]:
                """Dispatch one cycle and wait for every chunk: (seconds, tasks)."""
                started = time.perf_counter()
                if name == "training":
                    plan = app.send_task("adsentinel.train_anomaly_detectors_all").get(timeout=7200)
                    task = plan["tasks"][0]
                    app.AsyncResult(task["task_id"]).get(timeout=7200)
                    return time.perf_counter() - started, task["chunks"] + 1
                dispatched = app.send_task("adsentinel.detect_anomalies_all").get(timeout=7200)
                for task_id in dispatched["task_ids"]:
                    app.AsyncResult(task_id).get(timeout=7200)
                return time.perf_counter() - started, dispatched["tasks"]

            def rewrite_latest_day() -> None:
                # the steady hourly cycle: the sync has rewritten every entity's latest day, the
                # older days are unchanged and keep their verdicts
                with factory.begin() as session:
                    session.execute(text("UPDATE daily_insights SET updated_at = now() "
                                         "WHERE day = (SELECT max(day) FROM daily_insights)"))

            # each phase on freshly started workers, so that a worker's peak memory is its own
            phases = [(2, "training"), (2, "first detection"), (2, "hourly")]
            if args.skip_first_detection:
                # as after a first detection: every entity judged; the hourly cycles then judge
                # only the rewritten latest day (earlier days' anomaly rows are not there)
                phases.remove((2, "first detection"))
                with factory.begin() as session:
                    session.execute(text("UPDATE entities SET judged_at = now()"))
            if not args.skip_one_worker:
                phases += [(1, "training"), (1, "hourly")]
            results = []
            for count, name in phases:
                if name == "hourly":
                    rewrite_latest_day()
                workers = start_workers(count, env)
                with PeakMemory([process.pid for process in workers]) as memory:
                    seconds, tasks = cycle(name)
                stop_workers(workers)
                workers = []
                results.append((count, name, seconds, tasks, memory))
                print(f"{name}, {count} worker{'s' if count > 1 else ''}: {seconds:.1f} s, "
                      f"peak {memory.peak_total_mib:.0f} MiB", flush=True)
            with factory() as session:
                anomalies = session.scalar(select(func.count()).select_from(Anomaly))

            reference = {"training": reference_train, "first detection": reference_detect}
            print(f"{'run':28} {'seconds':>8} {'tasks':>6} {'tasks/s':>8} {'entities/s':>11} "
                  f"{'vs one process':>15} {'peak MiB, all':>14} {'per process':>12}")
            for count, name, seconds, tasks, memory in results:
                ratio = (f"{reference[name] / seconds:>14.2f}x" if name in reference
                         else f"{'':>15}")
                label = f"{name}, {count} worker{'s' if count > 1 else ''}"
                print(f"{label:28} {seconds:>8.1f} {tasks:>6} {tasks / seconds:>8.2f} "
                      f"{args.entities / seconds:>11.0f} {ratio} "
                      f"{memory.peak_total_mib:>14.0f} {memory.peak_process_mib:>12.0f}")
            print(f"anomalies stored: {anomalies:,}")
            by_phase = {(count, name): (seconds, memory)
                        for count, name, seconds, _, memory in results}
            summary = " ".join(
                f"{name.replace(' ', '_')}{count}_s={seconds:.1f} "
                f"{name.replace(' ', '_')}{count}_peak_mib={memory.peak_total_mib:.0f}"
                for (count, name), (seconds, memory) in by_phase.items())
            print(f"BENCH workers entities={args.entities} {summary} "
                  f"train_speedup={reference_train / by_phase[(2, 'training')][0]:.2f} "
                  + (f"detect_speedup={reference_detect / by_phase[(2, 'first detection')][0]:.2f}"
                     if (2, "first detection") in by_phase else ""))
    finally:
        stop_workers(workers)
        redis.Redis.from_url(args.redis).flushdb()  # the results and queues of this run


if __name__ == "__main__":
    main()
