"""The steady hourly detection cycle against its floor, reading its data once: in one process,
with 2 workers, and one entity's 90-day chart.

Builds a throw-away PostgreSQL database with one account of N entities x 90 days (the synthetic
delivery of ``bench_forest.py``, as ``bench_workers.py``: 1 campaign per 100 entities, 1 ad set
per 10), trains on 2 workers, marks every entity judged (as after a first detection) and
rewrites every entity's latest day as the hourly sync does. Then:

* ``cycle_s``: the steady hourly cycle in one process: a fresh child process runs
  ``detection.service.run_detection`` (what a worker's detection task runs) on the chunks of whole campaigns
  the workers get (``N / 8`` entities each, at most the chunk size ``WORKER_MEMORY_MIB`` gives),
  one after the other, without Celery; timed from
  splitting the account to the last chunk (the imports before are not counted);
* ``cycle2_s``: the same cycle through 2 ``adsentinel worker`` processes on Redis (the
  production path, as ``bench_workers.py``), from dispatch to the last chunk's result. The
  first cycle's anomalies are deleted and the latest day rewritten again before, so both cycles
  judge the same rows and store the same anomalies;
* ``read_s``: one plain ``SELECT`` of every row the cycle reads (the N entities' 90 days, the
  columns detection reads, in entity and day order), fetched into Python in this process:
  the floor, reading the data once. Median of 3;
* ``floor_ratio``: ``cycle_s / read_s``;
* ``peak_mib``: the largest resident memory of one process (its high-water mark) over the
  one-process cycle and the 2 workers' processes;
* ``chart_p50_ms``: ``api.series.entity_series`` (what the entity metrics endpoint and the
  dashboard's entity page call) for one ad's last 90 days, called in this process, alone: the
  median of 20 calls after a warm-up, without HTTP and JSON. With 90 days of data the chart's
  first days have too little history to be judged; the number judged is printed.

Prints each phase with its CPU time (the workers' together; PostgreSQL's own not included) and
the 1-minute load average (the machine may be shared). Last line:
``BENCH detect entities=N cycle_s=... cycle2_s=... read_s=... floor_ratio=... peak_mib=...
chart_p50_ms=...``

    python benchmarks/bench_detect.py [--entities 20000] [--redis redis://127.0.0.1:6379/13]
    python benchmarks/bench_detect.py --entities 2000     # a quick check
    python benchmarks/bench_detect.py --profile cycle.prof  # where the one-process cycle spends
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_forest import DAYS, _populate  # same synthetic delivery
from scratch_postgres import scratch_database
from worker_processes import (
    SIGNING_KEY,
    PeakMemory,
    mark_every_entity_judged,
    rewrite_latest_day,
    run_phase,
    worker_environment,
)

CHARTED_ENTITY = 2  # an ad (entity 1 is a campaign, 11 an ad set: see _populate)
CHART_CALLS = 20
READS = 3


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def one_process_cycle(profile: str | None) -> None:
    """In the child process: the hourly cycle's chunks one after the other, as one worker would
    take them, without Celery; prints ``{"seconds", "cpu_seconds", "chunks"}`` as JSON.
    ``profile``: also write the cycle's cProfile statistics there (``python -m pstats``)."""
    import cProfile

    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.detection.service import detection_chunks, run_detection

    settings = load_settings()
    factory = make_session_factory(open_database(settings))
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    chunks = detection_chunks(session_factory=factory, settings=settings, account_id=1)
    for chunk, facts in chunks:
        run_detection(session_factory=factory, settings=settings, account_id=1,
                      campaign_ids=chunk, account_facts=facts)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "cpu_seconds": time.process_time() - cpu, "chunks": len(chunks)}))


def prepare_hourly_cycle(factory) -> None:
    """Every entity judged, no anomaly stored, the latest day rewritten by the sync since: the
    state each measured hourly cycle starts from."""
    from sqlalchemy import text

    with factory.begin() as session:
        session.execute(text("DELETE FROM anomalies"))
    mark_every_entity_judged(factory)
    rewrite_latest_day(factory)


def stored_anomalies(factory) -> int:
    from sqlalchemy import text

    with factory() as session:
        return session.scalar(text("SELECT count(*) FROM anomalies"))


def run_one_process(env: dict[str, str], profile: str | None) -> tuple[dict, float]:
    """The hourly cycle in a fresh child process: (what it printed, its peak MiB)."""
    extra = ["--profile", str(Path(profile).resolve())] if profile else []
    child = subprocess.Popen([sys.executable, __file__, "--_one-process-cycle", *extra], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory([child.pid]) as memory:
        out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the one-process cycle failed ({child.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), memory.peak_process_mib


def read_once_seconds(engine) -> tuple[float, int]:
    """One plain ``SELECT`` of every daily row the cycle reads, fetched: (seconds, rows)."""
    from sqlalchemy import text

    from adsentinel.detect.features import COUNT_COLUMNS

    columns = ", ".join(["entity_id", "day", *COUNT_COLUMNS, "is_complete", "as_of",
                         "updated_at"])
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {columns} FROM daily_insights "
                                 "ORDER BY entity_id, day")).all()
    return time.perf_counter() - started, len(rows)


def chart_p50_ms(factory, settings, entity_id: int) -> tuple[float, int, int]:
    """Median ms of one 90-day chart of ``entity_id``, alone: (ms, days, days judged)."""
    from sqlalchemy import text

    from adsentinel.api.series import entity_series

    with factory() as session:
        last = session.scalar(text("SELECT max(day) FROM daily_insights WHERE entity_id = :e"),
                              {"e": entity_id})
    first = last - timedelta(days=DAYS - 1)

    def chart():
        with factory() as session:  # a session per call, as per request
            return entity_series(session=session, settings=settings, entity_id=entity_id,
                                 first=first, last=last)

    points = chart()  # warm-up: imports, the query plan
    timings = []
    for _ in range(CHART_CALLS):
        started = time.perf_counter()
        chart()
        timings.append(time.perf_counter() - started)
    judged = sum(point.metrics["spend"].expected is not None for point in points)
    return statistics.median(timings) * 1e3, len(points), judged


def measure(args: argparse.Namespace, url: str, folder: str) -> dict[str, float]:
    """Build, train, and every figure of the BENCH line; prints each phase."""
    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.worker.app import create_celery_app

    started = time.perf_counter()
    _populate(url, folder, args.entities, args.seed)
    print(f"{args.entities:,} entities x {DAYS} days in PostgreSQL in "
          f"{time.perf_counter() - started:.0f} s ({_load()})", flush=True)
    # N / 8 entities a chunk (as bench_workers.py), but never more than the memory budget
    # gives a worker (WORKER_MEMORY_MIB's chunk size): past 47,000 entities, more chunks
    chunk = max(1, min(args.entities // 8, load_settings().chunk_size))
    env = worker_environment(database_url=url, redis_url=args.redis, data_dir=folder,
                             chunk_entities=chunk)
    settings = load_settings(database_url=url, broker_url=args.redis, data_dir=folder,
                             model_signing_key=SIGNING_KEY, chunk_entities=chunk)
    engine = open_database(settings)
    factory = make_session_factory(engine)
    app = create_celery_app(settings)
    training = run_phase(app, env, 2, "training")
    print(f"training, 2 workers: {training.seconds:.1f} s, CPU {training.cpu_seconds:.1f} s, "
          f"peak {training.memory.peak_process_mib:.0f} MiB one process ({_load()})", flush=True)

    prepare_hourly_cycle(factory)
    one, one_peak = run_one_process(env, args.profile)
    cycle_s = one["seconds"]
    print(f"hourly cycle, one process, {one['chunks']} chunks: {cycle_s:.1f} s "
          f"({args.entities / cycle_s:,.0f} entities/s), CPU {one['cpu_seconds']:.1f} s "
          f"({one['cpu_seconds'] * 1e3 / args.entities:.1f} ms an entity), peak "
          f"{one_peak:.0f} MiB, {stored_anomalies(factory):,} anomalies ({_load()})", flush=True)
    prepare_hourly_cycle(factory)
    hourly = run_phase(app, env, 2, "hourly")
    print(f"hourly cycle, 2 workers, {hourly.tasks} chunks: {hourly.seconds:.1f} s "
          f"({args.entities / hourly.seconds:,.0f} entities/s), CPU {hourly.cpu_seconds:.1f} s, "
          f"peak {hourly.memory.peak_process_mib:.0f} MiB one process, "
          f"{hourly.memory.peak_total_mib:.0f} MiB all, {stored_anomalies(factory):,} anomalies "
          f"({_load()})", flush=True)

    reads = [read_once_seconds(engine) for _ in range(READS)]
    read_s = statistics.median(seconds for seconds, _ in reads)
    print(f"one SELECT of {reads[0][1]:,} rows: "
          + ", ".join(f"{seconds:.2f}" for seconds, _ in reads)
          + f" s, median {read_s:.2f} s ({_load()})", flush=True)
    chart_ms, days, judged = chart_p50_ms(factory, settings, CHARTED_ENTITY)
    print(f"chart of entity {CHARTED_ENTITY}, {days} days ({judged} judged), alone: "
          f"p50 {chart_ms:.1f} ms of {CHART_CALLS} calls ({_load()})", flush=True)
    engine.dispose()
    return {"cycle_s": cycle_s, "cycle2_s": hourly.seconds, "read_s": read_s,
            "peak_mib": max(one_peak, hourly.memory.peak_process_mib), "chart_ms": chart_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", metavar="FILE",
                        help="write the one-process cycle's cProfile statistics to FILE "
                             "(it then runs slower: compare figures only without it)")
    parser.add_argument("--_one-process-cycle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one_process_cycle:
        one_process_cycle(args.profile)
        return

    import redis

    redis.Redis.from_url(args.redis).flushdb()
    try:
        with scratch_database() as url, \
                tempfile.TemporaryDirectory(prefix="bench-detect-") as folder:
            figures = measure(args, url, folder)
    finally:
        redis.Redis.from_url(args.redis).flushdb()  # the results and queues of this run
    print(f"BENCH detect entities={args.entities} cycle_s={figures['cycle_s']:.1f} "
          f"cycle2_s={figures['cycle2_s']:.1f} read_s={figures['read_s']:.2f} "
          f"floor_ratio={figures['cycle_s'] / figures['read_s']:.1f} "
          f"peak_mib={figures['peak_mib']:.0f} chart_p50_ms={figures['chart_ms']:.1f}")


if __name__ == "__main__":
    main()
