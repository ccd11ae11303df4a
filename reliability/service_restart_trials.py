"""Fault trials: PostgreSQL restarted, and Redis restarted, in the middle of a detection cycle.

The trials restart servers, so they never touch the machine's own PostgreSQL and Redis: the
script starts a private PostgreSQL cluster (``initdb`` into a temporary folder, run as the
``postgres`` user when started as root) and a private Redis, on free ports, and removes both at
the end. Redis runs as production should run it for durability: append-only file, fsync on every
write (``--appendonly yes --appendfsync always``). ``--redis-persistence none`` runs it without
(the machine's default); then a restart empties the queues, and the trial checks instead that the
next hourly cycle catches up (it re-judges whatever was not judged).

Production path otherwise, as ``kill_trials.py``: one synthetic account (the delivery of
``benchmarks/bench_forest.py``), 2 real ``adsentinel worker`` processes, the account split into
3 chunks, ``adsentinel.detect_anomalies_all`` sent as Beat sends it. A clean cycle first gives the
reference anomaly rows and the duration.

Each trial: the detection rows are cleared; the cycle is dispatched; after a random delay within
the clean duration (``--seed``) the server is stopped (PostgreSQL: ``pg_ctl stop -m fast``, which
ends every connection and rolls back open transactions; Redis: ``SHUTDOWN``), left down for
``--downtime`` seconds and started again. The script then waits for every chunk's result (polling,
so the waiting itself survives the outage) and checks: no duplicate (entity, day, metric) row, and
the rows equal the reference rows (entity, day, metric, severity, score, status).

A trial is "recovered" when the rows equal the reference, "lost" when rows are missing or the
cycle never finished, "duplicated" when a key is there twice, "wrong" otherwise.

    .venv/bin/python reliability/service_restart_trials.py [--trials 20] [--seed 3]
        [--target both|postgres|redis] [--entities 300] [--downtime 3]
        [--redis-persistence aof|none]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "reliability"))

from bench_forest import _populate  # noqa: E402  (same synthetic delivery as the benchmarks)
from kill_trials import Workers, anomaly_rows, reset_detection, worker_environment  # noqa: E402
from kill_trials import wait_ready as _wait_ready  # noqa: E402
from scratch_postgres import scratch_database  # noqa: E402

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql "
                         "(Debian package postgresql); these trials start a private cluster")
    return found[-1].parent


class PrivateServer:
    """A server process this script owns: started, stopped and restarted at will."""

    def __init__(self, name: str, start: list[str], stop: list[str], ready, user: str | None):
        self.name, self.start_argv, self.stop_argv, self.ready = name, start, stop, ready
        self.user = user

    def _run(self, argv: list[str]) -> None:
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self, timeout: float = 60) -> None:
        self._run(self.start_argv)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private {self.name} did not come up in {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        self._run(self.stop_argv)


@contextmanager
def private_postgres(folder: Path):
    """A PostgreSQL cluster in ``folder`` on a free port, trust auth; yields (server, admin URL)."""
    bin_dir = _postgres_bin()
    data = folder / "pgdata"
    data.mkdir()
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
        shutil.chown(data, user)
    port = free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth", "trust",
              "--no-sync"]
    if user:
        initdb = ["runuser", "-u", user, "--", *initdb]
    subprocess.run(initdb, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    server = PrivateServer(
        "PostgreSQL",
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log"),
         "-o", options, "-w", "start"],
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
        lambda: subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p",
                                str(port), "-q"]).returncode == 0,
        user)
    server.start()
    try:
        yield server, f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass  # already down


@contextmanager
def private_redis(folder: Path, persistence: str):
    """A Redis server in ``folder`` on a free port; yields (server, URL)."""
    import redis

    port = free_port()
    durability = (["--appendonly", "yes", "--appendfsync", "always"] if persistence == "aof"
                  else ["--appendonly", "no"])
    client = redis.Redis(port=port, socket_connect_timeout=1)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    server = PrivateServer(
        "Redis",
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
         "--save", "", "--dir", str(folder), "--logfile", str(folder / "redis.log"),
         "--pidfile", str(folder / "redis.pid"), *durability],
        ["redis-cli", "-p", str(port), "shutdown"],
        ready, None)
    server.start()
    try:
        yield server, f"redis://127.0.0.1:{port}/0"
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass


def wait_result(app, task_id: str, deadline: float):
    """The task's result, polling the backend and riding out its outages."""
    while time.monotonic() < deadline:
        try:
            result = app.AsyncResult(task_id)
            if result.ready():
                return result.get(timeout=5, propagate=True)
        except (ConnectionError, OSError):  # backend down: try again
            pass
        except Exception as exc:  # noqa: BLE001 - kombu/redis wrap their connection errors
            if "onnection" not in type(exc).__name__ + str(exc):
                raise
        time.sleep(0.5)
    raise TimeoutError(f"no result for task {task_id}")


def wait_ready(workers: Workers, app, timeout: float = 120) -> None:
    """Until every live worker answers a ping; the script's own broker connection may need a
    few tries after Redis came back."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _wait_ready(workers, app, timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - kombu/redis wrap their connection errors
            if time.monotonic() > deadline or "onnection" not in type(exc).__name__ + str(exc):
                raise
            time.sleep(1)


def run_cycle(app, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    dispatched = app.send_task("adsentinel.detect_anomalies_all")
    plan = wait_result(app, dispatched.id, deadline)
    for task_id in plan["task_ids"]:
        wait_result(app, task_id, deadline)


def main() -> None:  # noqa: C901, PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per target (default 20)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the restart points")
    parser.add_argument("--target", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--entities", type=int, default=300)
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic account")
    parser.add_argument("--downtime", type=float, default=3.0,
                        help="seconds the server stays down (default 3)")
    parser.add_argument("--redis-persistence", choices=["aof", "none"], default="aof")
    parser.add_argument("--visibility", type=int, default=20,
                        help="ADSENTINEL_BROKER_VISIBILITY_TIMEOUT (hard limit = this - 3, "
                             "soft = this - 5)")
    args = parser.parse_args()

    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.worker.app import create_celery_app

    # a SIGTERM (timeout, kill) still runs the clean-up below: workers, servers, folder
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(args.seed)
    targets = ["postgres", "redis"] if args.target == "both" else [args.target]
    folder = Path(tempfile.mkdtemp(prefix="adsentinel-restart-trials-"))
    os.chmod(folder, 0o755)
    results: dict[str, Counter] = {}
    notes: list[str] = []
    timeout = 8 * args.visibility + 120
    workers: Workers | None = None
    failed = False
    try:
        with private_postgres(folder) as (postgres, admin_url), \
                private_redis(folder, args.redis_persistence) as (redis_server, redis_url), \
                scratch_database(admin_url) as url:
            started = time.perf_counter()
            _populate(url, str(folder), args.entities, args.data_seed)
            print(f"{args.entities} entities x 90 days in a private PostgreSQL cluster "
                  f"({time.perf_counter() - started:.1f} s); Redis persistence: "
                  f"{args.redis_persistence}", flush=True)
            env, settings = worker_environment(url, redis_url, folder, folder / "models",
                                               max(1, args.entities // 3), args.visibility)
            factory = make_session_factory(open_database(settings))
            app = create_celery_app(settings)
            workers = Workers(env, folder)
            workers.start()
            workers.start()
            wait_ready(workers, app)
            app.send_task("adsentinel.train_anomaly_detectors_all").get(timeout=timeout)
            time.sleep(1)
            # the reference, twice so that its duration is that of warm workers
            for _ in range(2):
                reset_detection(factory)
                started = time.perf_counter()
                run_cycle(app, timeout)
                clean = time.perf_counter() - started
            reference = anomaly_rows(factory)
            print(f"clean detection cycle: {clean:.1f} s -> {len(reference)} anomaly rows",
                  flush=True)
            servers = {"postgres": postgres, "redis": redis_server}

            for target in targets:
                counts = results.setdefault(target, Counter())
                server = servers[target]
                for trial in range(1, args.trials + 1):
                    wait_ready(workers, app)
                    reset_detection(factory)
                    delay = rng.uniform(0.05, 0.95) * clean
                    outcome: dict[str, str] = {}

                    def cycle(outcome=outcome) -> None:
                        try:
                            run_cycle(app, timeout)
                        except Exception as exc:  # noqa: BLE001 - a failed trial is a result
                            outcome["error"] = f"{type(exc).__name__}: {exc}"

                    # without persistence the queues die with Redis: waiting out the whole
                    # timeout for results that cannot come would only slow the trials
                    wait = timeout if target != "redis" or args.redis_persistence == "aof" \
                        else 3 * clean + 2 * args.visibility
                    thread = threading.Thread(target=cycle, daemon=True)
                    t0 = time.perf_counter()
                    thread.start()
                    time.sleep(delay)
                    mid_cycle = thread.is_alive()
                    server.stop()
                    time.sleep(args.downtime)
                    server.start()
                    thread.join(wait + 30)
                    if thread.is_alive():
                        outcome["error"] = "did not finish"
                    caught_up = ""
                    if "error" in outcome and target == "redis" \
                            and args.redis_persistence == "none":
                        # the queues died with the server: the next hourly cycle must catch up
                        try:
                            run_cycle(app, timeout)
                            caught_up = " (next hourly cycle ran)"
                            outcome.pop("error")
                        except Exception as exc:  # noqa: BLE001
                            outcome["error"] += f"; next cycle: {exc}"
                    elapsed = time.perf_counter() - t0
                    rows = anomaly_rows(factory)
                    keys = Counter(row[:3] for row in rows)
                    dupes = sum(1 for c in keys.values() if c > 1)
                    missing = set(reference) - set(rows)
                    extra = set(rows) - set(reference)
                    verdict, detail = "recovered", f"rows {len(rows)}"
                    if dupes:
                        verdict, detail = "duplicated", f"{dupes} duplicated keys"
                    elif "error" in outcome:
                        verdict, detail = "lost", outcome["error"]
                    elif missing and not extra:
                        verdict, detail = "lost", f"{len(missing)} rows missing"
                    elif missing or extra:
                        verdict, detail = "wrong", f"{len(missing)} missing, {len(extra)} extra"
                    counts["trials"] += 1
                    counts[verdict] += 1
                    counts["mid-cycle"] += mid_cycle
                    counts["needed next cycle"] += bool(caught_up)
                    print(f"{target:8} trial {trial:2}/{args.trials}: restart at {delay:5.2f} s"
                          f"{'' if mid_cycle else ' (cycle already done)'}, done in "
                          f"{elapsed:5.1f} s -> {verdict} {detail}{caught_up}", flush=True)
                    if verdict != "recovered":
                        notes.append(f"{target} trial {trial}: {verdict}: {detail}")
            workers.stop_all()
            factory.kw["bind"].dispose()
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
    except BaseException:
        failed = True
        raise
    finally:
        if workers is not None:
            workers.stop_all()
        if failed:
            shutil.rmtree(folder / "pgdata", ignore_errors=True)
            print(f"the worker, PostgreSQL and Redis logs are kept in {folder}", flush=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| restart during a detection cycle | Redis persistence | trials | restarted mid-cycle | "
          "recovered | lost | duplicated | wrong | needed the next hourly cycle |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for target, c in results.items():
        label = "PostgreSQL" if target == "postgres" else "Redis"
        print(f"| {label} down {args.downtime:g} s | {args.redis_persistence} | {c['trials']} | "
              f"{c['mid-cycle']} | {c['recovered']} | {c['lost']} | {c['duplicated']} | "
              f"{c['wrong']} | {c['needed next cycle']} |")
    for note in notes:
        print("NOTE", note)
    summary = " ".join(f"{t}_trials={c['trials']} {t}_recovered={c['recovered']}"
                       for t, c in results.items())
    print(f"RELIABILITY service_restart_trials seed={args.seed} "
          f"redis={args.redis_persistence} {summary}")


if __name__ == "__main__":
    main()
