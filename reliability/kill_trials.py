"""Fault trials: a worker killed with SIGKILL at a random point of training or of detection.

Production path: a throw-away PostgreSQL database holding one synthetic account (the delivery of
``benchmarks/bench_forest.py``), real ``adsentinel worker`` processes on Redis, the account split
into chunks of whole campaigns, and the Celery tasks ``adsentinel.train_anomaly_detectors_all`` /
``adsentinel.detect_anomalies_all`` sent as Beat would send them.

Once at the start, a clean run (no kill) of training then detection through the same workers is
the reference: its model files (scored on a fixed probe matrix) and its anomaly rows.

Each trial: 2 workers are up; the task is dispatched; after a random delay within the clean run's
duration (``--seed``) one of the two workers, chosen at random, is killed with SIGKILL on its
whole process group (main process and pool child, as a machine dying); a replacement worker is
started once the broker's visibility timeout has passed (it then takes the unacknowledged task
back; acks_late + reject_on_worker_lost); the script waits for every task's result, then checks:

* training: every model pack (one signed file per campaign) of the reference exists, reads and
  verifies (``ModelStore.read_pack``) and its models score the probe exactly as the reference's
  do; no extra models; temporary files left behind are counted and must all be refused by
  ``ModelStore.read_pack`` or be whole;
* detection: no duplicate (entity, day, metric) rows; the rows equal the reference rows
  (entity, day, metric, severity, score, status).

A trial is "recovered" when every check passes, "lost" when work is missing or a task never
finished (timeout/failure), "duplicated" when a row or a model is there twice / too often, and
"wrong" when the rows or scores differ from the reference otherwise.

    .venv/bin/python reliability/kill_trials.py [--trials 20] [--seed 1] [--phase both]
        [--entities 300] [--redis redis://127.0.0.1:6379/14]

Cleans up (workers, Redis database, scratch PostgreSQL database, temp folder) on exit, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_forest import _populate  # noqa: E402  (same synthetic delivery as the benchmarks)
from scratch_postgres import scratch_database  # noqa: E402

SIGNING_KEY = "reliability-signing-key-0123"
ACCOUNT_ID = 1


class Workers:
    """Real ``adsentinel worker`` processes, each in its own process group."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.live: list[subprocess.Popen] = []
        self.all: list[subprocess.Popen] = []
        self.count = 0

    def start(self) -> subprocess.Popen:
        self.count += 1
        name = f"rel{self.count}"
        hostname = f"{name}@{uuid.uuid4().hex[:6]}"
        path = self.logdir / f"worker-{name}.log"
        log = open(path, "ab")  # noqa: SIM115 - closed below, the child keeps its copy
        process = subprocess.Popen(
            [sys.executable, "-m", "adsentinel", "worker", "-Q", "training,detection",
             "--concurrency", "1", "-n", hostname],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        process.log_path = path  # type: ignore[attr-defined]
        process.hostname = hostname  # type: ignore[attr-defined]
        self.live.append(process)
        self.all.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        self.live.remove(process)

    def stop_all(self) -> None:
        for process in self.all:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.all:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=15)


def worker_environment(url: str, redis_url: str, folder: Path, models: Path, chunk: int,
                       visibility: int) -> tuple[dict[str, str], object]:
    """The workers' environment (short time limits, so that a lost delivery comes back within
    ``visibility`` seconds) and the same settings for this process."""
    from adsentinel.config import load_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update({
        "ADSENTINEL_DATABASE_URL": url, "ADSENTINEL_BROKER_URL": redis_url,
        "ADSENTINEL_DATA_DIR": str(folder), "ADSENTINEL_MODELS_STORAGE_PATH": str(models),
        "ADSENTINEL_MODEL_SIGNING_KEY": SIGNING_KEY,
        "ADSENTINEL_CHUNK_ENTITIES": str(chunk),
        "ADSENTINEL_TASK_SOFT_TIME_LIMIT": str(visibility - 5),
        "ADSENTINEL_TASK_TIME_LIMIT": str(visibility - 3),
        "ADSENTINEL_BROKER_VISIBILITY_TIMEOUT": str(visibility),
        "ADSENTINEL_LOCK_RETRY_SECONDS": "1",
        "ADSENTINEL_LOG_LEVEL": "INFO",
    })
    settings = load_settings(**{k.removeprefix("ADSENTINEL_").lower(): v
                                for k, v in env.items() if k.startswith("ADSENTINEL_")})
    return env, settings


def wait_ready(workers: Workers, app, timeout: float = 90) -> None:
    """Until every live worker answers a ping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= len(workers.live):
            return
        time.sleep(0.5)
    raise RuntimeError(f"workers not ready after {timeout}s; logs in {workers.logdir}")


def in_flight(app, process: subprocess.Popen) -> list[str]:
    """The tasks the worker is running right now (asked just before it is killed)."""
    hostname = process.hostname  # type: ignore[attr-defined]
    try:
        replies = app.control.inspect(destination=[hostname], timeout=1.0, limit=1).active() or {}
    except Exception:  # noqa: BLE001 - unknown is reported as such
        return ["unknown"]
    return [t["name"].removeprefix("adsentinel.") for t in replies.get(hostname, [])]


def run_training(app, timeout: float) -> None:
    plan = app.send_task("adsentinel.train_anomaly_detectors_all").get(timeout=timeout)
    for task in plan["tasks"]:
        app.AsyncResult(task["task_id"]).get(timeout=timeout)


def run_detection(app, timeout: float) -> None:
    dispatched = app.send_task("adsentinel.detect_anomalies_all").get(timeout=timeout)
    for task_id in dispatched["task_ids"]:
        app.AsyncResult(task_id).get(timeout=timeout)


def _pack_campaign(name: str) -> int:
    """The campaign id in a pack's name (``campaign_12.adsp`` or its temporary file)."""
    return int(name.lstrip(".").split(".", 1)[0].split("_", 1)[1])


def model_scores(store, account_dir: Path) -> tuple[dict[str, list[float]], list[str]]:
    """Every model of every pack read and verified, scored on a fixed matrix (by entity id);
    and the packs refused."""
    import numpy as np

    from adsentinel.model_store.store import PACK_SUFFIX

    probe = np.random.default_rng(0).normal(size=(16, 8))
    scores, refused = {}, []
    for path in sorted(account_dir.glob("*" + PACK_SUFFIX)):
        try:
            models = store.read_pack(path, ACCOUNT_ID, _pack_campaign(path.name))
        except Exception as exc:  # noqa: BLE001 - every refusal counts
            refused.append(f"{path.name}: {exc}")
            continue
        for entity_id, found in models.items():
            scores[str(entity_id)] = found.model.score_samples(probe).tolist()
    return scores, refused


def temp_files(store, account_dir: Path) -> tuple[int, int]:
    """(temporary files left in the account folder, how many of them ``read_pack`` accepts)."""
    left = [p for p in account_dir.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    accepted = 0
    for path in left:
        try:
            store.read_pack(path, ACCOUNT_ID, _pack_campaign(path.name))
            accepted += 1
        except Exception:  # noqa: BLE001 - refused, as it must be when half-written
            pass
    return len(left), accepted


def anomaly_rows(factory) -> list[tuple]:
    from sqlalchemy import text

    with factory() as session:
        return [tuple(r) for r in session.execute(text(
            "SELECT entity_id, day, metric, severity, round(score::numeric, 2), status "
            "FROM anomalies ORDER BY entity_id, day, metric"))]


def reset_detection(factory) -> None:
    from sqlalchemy import text

    with factory.begin() as session:
        session.execute(text("TRUNCATE anomalies CASCADE"))
        session.execute(text("UPDATE entities SET judged_at = NULL"))


def main() -> None:  # noqa: C901, PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per phase (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill points and victims")
    parser.add_argument("--phase", choices=["training", "detection", "both"], default="both")
    parser.add_argument("--entities", type=int, default=None,
                        help="entities of the account (default: 3000 for training only, else 300)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic account")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--visibility", type=int, default=15,
                        help="ADSENTINEL_BROKER_VISIBILITY_TIMEOUT (hard limit = this - 3, "
                             "soft = this - 5)")
    args = parser.parse_args()

    import redis
    from sqlalchemy import text

    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.model_store.store import ModelStore
    from adsentinel.worker.app import create_celery_app

    rng = random.Random(args.seed)
    phases = ["training", "detection"] if args.phase == "both" else [args.phase]
    if args.entities is None:
        args.entities = 3000 if phases == ["training"] else 300
    client = redis.Redis.from_url(args.redis)
    client.flushdb()
    folder = Path(tempfile.mkdtemp(prefix="adsentinel-kill-trials-"))
    workers: Workers | None = None
    results: dict[str, Counter] = {}
    notes: list[str] = []
    timeout = 6 * args.visibility + 60
    try:
        with scratch_database() as url:
            started = time.perf_counter()
            _populate(url, str(folder), args.entities, args.data_seed)
            print(f"{args.entities} entities x 90 days in a scratch PostgreSQL database "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            chunk = max(1, args.entities // 3)  # 3 chunks: both workers busy
            models = folder / "models"
            env, settings = worker_environment(url, args.redis, folder, models, chunk,
                                               args.visibility)
            factory = make_session_factory(open_database(settings))
            store = ModelStore.from_settings(settings, cache=None)
            account_dir = store.account_dir(ACCOUNT_ID)
            app = create_celery_app(settings)
            workers = Workers(env, folder)
            workers.start()
            workers.start()
            wait_ready(workers, app)

            # the clean reference run, through the same workers, no kill; run twice so the
            # duration (the range of the kill points) is that of warm workers
            for _ in range(2):
                shutil.rmtree(account_dir, ignore_errors=True)
                started = time.perf_counter()
                run_training(app, timeout)
                clean_train = time.perf_counter() - started
            reference_models, refused = model_scores(store, account_dir)
            if refused or not reference_models:
                raise RuntimeError(f"clean training left refused or no models: {refused[:3]}")
            clean_detect, reference_rows = 0.0, []
            if "detection" in phases:
                for _ in range(2):
                    reset_detection(factory)
                    started = time.perf_counter()
                    run_detection(app, timeout)
                    clean_detect = time.perf_counter() - started
                reference_rows = anomaly_rows(factory)
            print(f"clean reference: training {clean_train:.1f} s -> {len(reference_models)} "
                  f"models; detection {clean_detect:.1f} s -> {len(reference_rows)} anomaly rows",
                  flush=True)

            for phase in phases:
                counts = results.setdefault(phase, Counter())
                duration = clean_train if phase == "training" else clean_detect
                for trial in range(1, args.trials + 1):
                    while len(workers.live) < 2:
                        workers.start()
                    wait_ready(workers, app)
                    if phase == "training":
                        shutil.rmtree(account_dir, ignore_errors=True)
                        with factory.begin() as session:
                            session.execute(text("DELETE FROM training_runs"))
                        job = run_training
                    else:
                        reset_detection(factory)
                        job = run_detection
                    delay = rng.uniform(0.05, 0.95) * duration
                    victim = rng.choice(workers.live)
                    outcome: dict[str, object] = {}

                    def target(job=job, outcome=outcome) -> None:
                        try:
                            job(app, timeout)
                        except Exception as exc:  # noqa: BLE001 - a failed trial is a result
                            outcome["error"] = f"{type(exc).__name__}: {exc}"

                    import threading
                    thread = threading.Thread(target=target, daemon=True)
                    t0 = time.perf_counter()
                    thread.start()
                    time.sleep(delay)
                    finished_before_kill = not thread.is_alive()
                    killed_tasks = in_flight(app, victim)
                    killed_at = time.monotonic()
                    workers.kill(victim)
                    # the replacement's first broker poll takes back messages older than the
                    # visibility timeout; start it once the killed delivery is that old
                    time.sleep(max(0.0, killed_at + args.visibility + 0.5 - time.monotonic()))
                    workers.start()
                    thread.join(timeout + 30)
                    elapsed = time.perf_counter() - t0
                    if thread.is_alive():
                        outcome["error"] = "did not finish"
                    verdict, detail = "recovered", ""
                    if killed_tasks:
                        counts["killed mid-task"] += 1
                        detail += f"killed in {','.join(killed_tasks)};"
                    else:
                        detail += "victim was idle;"
                    if "error" in outcome:
                        verdict, detail = "lost", str(outcome["error"])
                    elif phase == "training":
                        got, refused = model_scores(store, account_dir)
                        tmp_left, tmp_accepted = temp_files(store, account_dir)
                        missing = set(reference_models) - set(got)
                        extra = set(got) - set(reference_models)
                        differ = [n for n in got if n in reference_models
                                  and got[n] != reference_models[n]]
                        with factory() as session:
                            runs = Counter(session.scalars(
                                text("SELECT status FROM training_runs")).all())
                        if refused or missing:
                            verdict = "lost"
                            detail = f"{len(missing)} missing, {len(refused)} refused"
                        elif extra:
                            verdict, detail = "duplicated", f"{len(extra)} unexpected model files"
                        elif differ:
                            verdict, detail = "wrong", f"{len(differ)} models score differently"
                        if tmp_left:
                            # a temp file that read() accepts passed the HMAC over all its
                            # bytes: it is whole, only not renamed; the loader never opens it
                            detail += f" temp files left {tmp_left} (whole and verifying: " \
                                      f"{tmp_accepted}, refused: {tmp_left - tmp_accepted})"
                            counts["temp files left"] += tmp_left
                            counts["temp files half-written"] += tmp_left - tmp_accepted
                        detail += f" runs {dict(runs)}"
                    else:
                        rows = anomaly_rows(factory)
                        keys = Counter(r[:3] for r in rows)
                        dupes = sum(1 for c in keys.values() if c > 1)
                        missing = set(reference_rows) - set(rows)
                        extra = set(rows) - set(reference_rows)
                        if dupes:
                            verdict, detail = "duplicated", f"{dupes} duplicated keys"
                        elif missing and not extra:
                            verdict, detail = "lost", f"{len(missing)} rows missing"
                        elif missing or extra:
                            verdict, detail = "wrong", f"{len(missing)} missing, {len(extra)} extra"
                        detail += f" rows {len(rows)}"
                    if finished_before_kill:
                        detail += " (work had finished before the kill)"
                        counts["finished before kill"] += 1
                    counts[verdict] += 1
                    counts["trials"] += 1
                    print(f"{phase:9} trial {trial:2}/{args.trials}: kill {victim.pid} at "
                          f"{delay:5.2f} s, done in {elapsed:5.1f} s -> {verdict} {detail}",
                          flush=True)
                    if verdict != "recovered":
                        notes.append(f"{phase} trial {trial}: {verdict}: {detail}")
            workers.stop_all()
    except KeyboardInterrupt:
        print("interrupted; cleaning up", flush=True)
    finally:
        if workers is not None:
            workers.stop_all()
        client.flushdb()
        shutil.rmtree(folder, ignore_errors=True)

    print()
    print("| kill trial | trials | victim killed mid-task | recovered | lost | duplicated | "
          "wrong | work finished before the kill |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for phase, c in results.items():
        print(f"| SIGKILL during {phase} | {c['trials']} | {c['killed mid-task']} | "
              f"{c['recovered']} | {c['lost']} | "
              f"{c['duplicated']} | {c['wrong']} | {c['finished before kill']} |")
    for phase, c in results.items():
        if phase == "training":
            print(f"temporary files left by killed training: {c['temp files left']} "
                  f"(half-written, refused by read: {c['temp files half-written']}; the others "
                  "verify whole; the loader opens only final names)")
    for note in notes:
        print("NOTE", note)
    summary = " ".join(f"{p}_trials={c['trials']} {p}_recovered={c['recovered']}"
                       for p, c in results.items())
    print(f"RELIABILITY kill_trials seed={args.seed} entities={args.entities} {summary}")


if __name__ == "__main__":
    main()
