"""The nightly training and an hourly detection cycle through 2 Celery workers, against the same
work done in one process without Celery (the reference, in the same run).

Builds a throw-away PostgreSQL database with one account of N entities x 90 days (the same
synthetic delivery as ``bench_forest.py``), then:

* reference: ``run_training`` and ``run_detection`` in this process, of the whole account or of
  its first ``--reference-entities`` (whole campaigns), compared by entities per second;
* production path: 2 worker processes (``adsentinel worker --concurrency 1``) on Redis, the account
  split into chunks of ``N / 8`` entities; ``train_anomaly_detectors_all`` then
  ``detect_anomalies_all`` (first detection: the last two days of every entity), timed from
  dispatch to the last chunk's result;
* the steady hourly cycle: every entity's latest day rewritten (as the hourly sync does), then
  ``detect_anomalies_all`` again: only the changed rows are judged.

Prints durations, tasks/s and entities/s, and the speed-up of the workers over the reference.
Last line: ``BENCH workers=2 entities=N train_s=... detect_s=... train_speedup=... detect_speedup=...``

    python benchmarks/bench_workers.py [--entities 20000] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_forest import _populate  # noqa: E402  (same synthetic delivery)
from scratch_postgres import scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-entities", type=int, default=None,
                        help="one-process reference on this many entities (default: all)")
    args = parser.parse_args()

    import redis
    from sqlalchemy import func, select, text

    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.db.models import Anomaly
    from adsentinel.service import jobs
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
                   "ADSENTINEL_MODEL_SIGNING_KEY": "bench-signing-key-0123", "ADSENTINEL_CHUNK_ENTITIES": str(chunk)}
            settings = load_settings(database_url=url, broker_url=args.redis, data_dir=folder,
                                     model_signing_key="bench-signing-key-0123", chunk_entities=chunk,
                                     models_storage_path=Path(folder) / "reference-models")
            factory = make_session_factory(open_database(settings))

            reference_n = min(args.reference_entities or args.entities, args.entities)
            campaigns = None  # campaigns are entities 1, 101, 201, ... (see _populate)
            if reference_n < args.entities:
                campaigns = list(range(1, reference_n + 1, 100))
                reference_n = len(campaigns) * 100
            started = time.perf_counter()
            jobs.run_training(session_factory=factory, settings=settings, account_id=1,
                              campaign_ids=campaigns)
            reference_train = (time.perf_counter() - started) * args.entities / reference_n
            started = time.perf_counter()
            jobs.run_detection(session_factory=factory, settings=settings, account_id=1,
                               campaign_ids=campaigns)
            reference_detect = (time.perf_counter() - started) * args.entities / reference_n
            with factory.begin() as session:  # the workers start from the same state
                session.execute(text("DELETE FROM anomalies"))
                session.execute(text("UPDATE entities SET judged_at = NULL"))
            print(f"reference, one process, {reference_n:,} entities scaled to {args.entities:,}: "
                  f"training {reference_train:.1f} s, detection {reference_detect:.1f} s")

            for index in range(2):
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "adsentinel", "worker", "--concurrency", "1",
                     "-n", f"bench{index}@%h"], env=env, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            app = create_celery_app(load_settings(database_url=url, broker_url=args.redis,
                                                  data_dir=folder))
            time.sleep(5)  # workers up (compiled engine loaded on first task)

            started = time.perf_counter()
            plan = app.send_task("adsentinel.train_anomaly_detectors_all").get(timeout=3600)
            task = plan["tasks"][0]
            app.AsyncResult(task["task_id"]).get(timeout=3600)
            train_seconds = time.perf_counter() - started
            train_tasks = task["chunks"] + 1

            started = time.perf_counter()
            dispatched = app.send_task("adsentinel.detect_anomalies_all").get(timeout=3600)
            expected = dispatched["tasks"]
            for task_id in dispatched["task_ids"]:
                app.AsyncResult(task_id).get(timeout=3600)
            detect_seconds = time.perf_counter() - started
            with factory() as session:
                anomalies = session.scalar(select(func.count()).select_from(Anomaly))

            # the steady hourly cycle: the sync has rewritten every entity's latest day, the
            # older days are unchanged and keep their verdicts
            with factory.begin() as session:
                session.execute(text("UPDATE daily_insights SET updated_at = now() "
                                     "WHERE day = (SELECT max(day) FROM daily_insights)"))
            started = time.perf_counter()
            dispatched = app.send_task("adsentinel.detect_anomalies_all").get(timeout=3600)
            for task_id in dispatched["task_ids"]:
                app.AsyncResult(task_id).get(timeout=3600)
            hourly_seconds = time.perf_counter() - started

            print(f"{'run':28} {'seconds':>8} {'tasks':>6} {'tasks/s':>8} {'entities/s':>11} "
                  f"{'vs one process':>15}")
            for label, seconds, tasks, reference in (
                    ("training, 2 workers", train_seconds, train_tasks, reference_train),
                    ("detection, 2 workers", detect_seconds, expected, reference_detect)):
                print(f"{label:28} {seconds:>8.1f} {tasks:>6} {tasks / seconds:>8.2f} "
                      f"{args.entities / seconds:>11.0f} {reference / seconds:>14.2f}x")
            print(f"{'hourly, latest day changed':28} {hourly_seconds:>8.1f} {expected:>6} "
                  f"{expected / hourly_seconds:>8.2f} {args.entities / hourly_seconds:>11.0f}")
            print(f"anomalies stored: {anomalies:,}")
            print(f"BENCH workers=2 entities={args.entities} train_s={train_seconds:.1f} "
                  f"detect_s={detect_seconds:.1f} hourly_s={hourly_seconds:.1f} "
                  f"train_speedup={reference_train / train_seconds:.2f} "
                  f"detect_speedup={reference_detect / detect_seconds:.2f}")
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
