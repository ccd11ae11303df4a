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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_forest import _populate  # same synthetic delivery
from scratch_postgres import scratch_database
from worker_processes import (
    SIGNING_KEY,
    mark_every_entity_judged,
    rewrite_latest_day,
    run_phase,
    worker_environment,
)


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
    try:
        with scratch_database() as url, \
                tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
            started = time.perf_counter()
            _populate(url, folder, args.entities, args.seed)
            print(f"{args.entities:,} entities x 90 days in PostgreSQL in "
                  f"{time.perf_counter() - started:.0f} s")
            chunk = max(1, args.entities // 8)
            env = worker_environment(database_url=url, redis_url=args.redis, data_dir=folder,
                                     chunk_entities=chunk)
            store = {}
            if args.store == "postgresql":
                env["ADSENTINEL_MODELS_STORAGE_URL"] = url
                store = {"models_storage_url": url}
            settings = load_settings(database_url=url, broker_url=args.redis, data_dir=folder,
                                     model_signing_key=SIGNING_KEY, chunk_entities=chunk,
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
            # each phase on freshly started workers, so that a worker's peak memory is its own
            phases = [(2, "training"), (2, "first detection"), (2, "hourly")]
            if args.skip_first_detection:
                # as after a first detection: every entity judged; the hourly cycles then judge
                # only the rewritten latest day (earlier days' anomaly rows are not there)
                phases.remove((2, "first detection"))
                mark_every_entity_judged(factory)
            if not args.skip_one_worker:
                phases += [(1, "training"), (1, "hourly")]
            results = []
            for count, name in phases:
                if name == "hourly":
                    rewrite_latest_day(factory)
                phase = run_phase(app, env, count, name)
                results.append(phase)
                print(f"{name}, {count} worker{'s' if count > 1 else ''}: {phase.seconds:.1f} s, "
                      f"peak {phase.memory.peak_total_mib:.0f} MiB", flush=True)
            with factory() as session:
                anomalies = session.scalar(select(func.count()).select_from(Anomaly))

            reference = {"training": reference_train, "first detection": reference_detect}
            print(f"{'run':28} {'seconds':>8} {'tasks':>6} {'tasks/s':>8} {'entities/s':>11} "
                  f"{'vs one process':>15} {'peak MiB, all':>14} {'per process':>12}")
            for phase in results:
                seconds, memory = phase.seconds, phase.memory
                ratio = (f"{reference[phase.name] / seconds:>14.2f}x" if phase.name in reference
                         else f"{'':>15}")
                label = f"{phase.name}, {phase.workers} worker{'s' if phase.workers > 1 else ''}"
                print(f"{label:28} {seconds:>8.1f} {phase.tasks:>6} {phase.tasks / seconds:>8.2f} "
                      f"{args.entities / seconds:>11.0f} {ratio} "
                      f"{memory.peak_total_mib:>14.0f} {memory.peak_process_mib:>12.0f}")
            print(f"anomalies stored: {anomalies:,}")
            by_phase = {(phase.workers, phase.name): (phase.seconds, phase.memory)
                        for phase in results}
            summary = " ".join(
                f"{name.replace(' ', '_')}{count}_s={seconds:.1f} "
                f"{name.replace(' ', '_')}{count}_peak_mib={memory.peak_total_mib:.0f}"
                for (count, name), (seconds, memory) in by_phase.items())
            print(f"BENCH workers entities={args.entities} {summary} "
                  f"train_speedup={reference_train / by_phase[(2, 'training')][0]:.2f} "
                  + (f"detect_speedup={reference_detect / by_phase[(2, 'first detection')][0]:.2f}"
                     if (2, "first detection") in by_phase else ""))
    finally:
        redis.Redis.from_url(args.redis).flushdb()  # the results and queues of this run


if __name__ == "__main__":
    main()
