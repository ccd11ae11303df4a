"""Real ``adsentinel worker`` processes on Redis for the benchmarks: start and stop them, sample
their resident memory and CPU time, dispatch a cycle (training or detection) and wait for its
last chunk, and put the database in the state of the steady hourly cycle.

Used by ``bench_workers.py`` and ``bench_detect.py`` (``bench_api.py`` measures its server's
process tree with :func:`tree_cpu_seconds`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SIGNING_KEY = "bench-signing-key-0123"


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


def tree_cpu_seconds(root: int) -> float:
    """CPU time used so far by ``root`` and its live descendants (user + system)."""
    total = 0
    for member in process_tree(root):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
    """Samples the resident memory of process trees every 0.2 s while a phase runs.

    ``peak_total_mib``: the largest sum over every process of the trees at one instant.
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
        self._stop.set()  # the last sample runs before the processes are stopped
        self._thread.join()


def worker_environment(*, database_url: str, redis_url: str, data_dir: str,
                       chunk_entities: int) -> dict[str, str]:
    """The environment of the benchmark's workers: this one without any ``ADSENTINEL_*``
    setting of the caller's, plus the scratch database, the Redis database, the data folder,
    a signing key and the chunk size that splits the account among the workers."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")},
            "ADSENTINEL_DATABASE_URL": database_url, "ADSENTINEL_BROKER_URL": redis_url,
            "ADSENTINEL_DATA_DIR": data_dir, "ADSENTINEL_LOG_LEVEL": "WARNING",
            "ADSENTINEL_MODEL_SIGNING_KEY": SIGNING_KEY,
            "ADSENTINEL_CHUNK_ENTITIES": str(chunk_entities)}


def start_workers(count: int, env: dict[str, str], app) -> list[subprocess.Popen]:
    """``count`` workers (one task at a time each), once every one answers a ping: up before
    the clock starts, however long a loaded machine takes to import them."""
    workers = [subprocess.Popen(
        [sys.executable, "-m", "adsentinel", "worker", "--concurrency", "1",
         "-n", f"bench{index}@%h"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for index in range(count)]
    deadline = time.monotonic() + 300
    while len(app.control.ping(timeout=1.0) or []) < count:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop_workers(workers)
            raise SystemExit(f"{count} worker(s) did not all start and answer within 300 s")
        time.sleep(0.5)
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


@contextmanager
def running_workers(count: int, env: dict[str, str], app) -> Iterator[list[subprocess.Popen]]:
    """``count`` freshly started workers, stopped on exit whatever happened."""
    workers = start_workers(count, env, app)
    try:
        yield workers
    finally:
        stop_workers(workers)


def run_cycle(app, name: str) -> tuple[float, int]:
    """Dispatch one cycle (``"training"``, or a detection: ``"first detection"``, ``"hourly"``)
    as the beat schedule does and wait for every chunk: (seconds, tasks)."""
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


@dataclass(frozen=True)
class Phase:
    """One cycle on freshly started workers: its duration, tasks, the workers' memory and the
    CPU time they used meanwhile (all of them together)."""

    workers: int
    name: str
    seconds: float
    tasks: int
    memory: PeakMemory
    cpu_seconds: float


def run_phase(app, env: dict[str, str], workers: int, name: str) -> Phase:
    """``name`` (see :func:`run_cycle`) on ``workers`` freshly started workers, so that their
    peak memory is this phase's own; the workers are stopped after the last sample."""
    with running_workers(workers, env, app) as processes, \
            PeakMemory([process.pid for process in processes]) as memory:
        cpu_before = sum(tree_cpu_seconds(process.pid) for process in processes)
        seconds, tasks = run_cycle(app, name)
        cpu = sum(tree_cpu_seconds(process.pid) for process in processes) - cpu_before
    return Phase(workers, name, seconds, tasks, memory, cpu)


def mark_every_entity_judged(factory) -> None:
    """As after a first detection: every entity judged now, so that the next cycle judges only
    rows written after this (earlier days' anomaly rows are not there)."""
    from sqlalchemy import text

    with factory.begin() as session:
        session.execute(text("UPDATE entities SET judged_at = now()"))


def rewrite_latest_day(factory) -> None:
    """The steady hourly cycle: the sync has rewritten every entity's latest day, the older
    days are unchanged and keep their verdicts."""
    from sqlalchemy import text

    with factory.begin() as session:
        session.execute(text("UPDATE daily_insights SET updated_at = now() "
                             "WHERE day = (SELECT max(day) FROM daily_insights)"))
