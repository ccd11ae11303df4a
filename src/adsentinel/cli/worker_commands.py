"""`adsentinel worker`, `adsentinel beat` (production, Celery + Redis) and `adsentinel run`
(embedded: the same schedule in one process, no broker)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from adsentinel.cli.app import app, console, get_settings


@app.command()
def worker(
    queues: Annotated[str, typer.Option(
        "-Q", "--queues", help="Queues to consume.")] = "training,detection,alerts",
    concurrency: Annotated[int | None, typer.Option(help="Worker processes (default: cores).")] = None,
    hostname: Annotated[str | None, typer.Option("-n", "--hostname", help="Node name.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve Prometheus metrics of all this worker's processes on "
        "this port (default ADSENTINEL_WORKER_METRICS_PORT; 0: none).")] = None,
) -> None:
    """Run a Celery worker (production mode; needs the broker at ADSENTINEL_BROKER_URL)."""
    settings = get_settings()
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:  # before the worker app (and prometheus-client) is imported
        from adsentinel.worker.observability import prepare_worker_metrics

        prepare_worker_metrics(port)
    from adsentinel.worker.app import celery_app

    # Mingle, gossip and event heartbeats are cluster chatter adsentinel does not use (remote
    # control, and so ``celery inspect``, stays on). With them, a worker whose Redis restarted
    # could hang for good while reconnecting (reliability/service_restart_trials.py; Celery
    # issues 8030 and 8091).
    argv = ["worker", "-Q", queues, "--loglevel", settings.log_level,
            "--without-mingle", "--without-gossip", "--without-heartbeat"]
    if settings.log_format == "json":  # no start-up banner: every line is a JSON object
        argv.insert(0, "--quiet")  # one of celery's own options, before the sub-command
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    celery_app.worker_main(argv)


@app.command()
def beat() -> None:
    """Run Celery Beat: exactly one per deployment (training at 04:00, detection hourly)."""
    settings = get_settings()
    from adsentinel.worker.app import celery_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "--loglevel", settings.log_level,
                      "--schedule", str(settings.data_dir / "celerybeat-schedule")])


@app.command()
def run(
    now: Annotated[bool, typer.Option(
        "--now/--no-now", help="Train then detect once at start, then follow the schedule.")] = True,
    once: Annotated[bool, typer.Option(
        "--once", help="Train, detect and deliver due alerts once, and exit.")] = False,
) -> None:
    """Embedded mode: train daily at ADSENTINEL_TRAINING_TIME, detect hourly and deliver alerts
    every minute, in this process.

    Uses the configured database (SQLite by default) and the local model folder; no Redis.
    Stop with Ctrl-C.
    """
    settings = get_settings()
    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.worker.embedded import run_schedule, scheduled_jobs

    session_factory = make_session_factory(open_database(settings))
    jobs = scheduled_jobs(settings=settings, session_factory=session_factory)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"embedded scheduler: training daily at {settings.training_time:%H:%M} "
                  f"{settings.timezone}, detection hourly at :{settings.detection_minute:02d}")
    run_schedule(jobs, stop=stop, run_first=now or once, max_runs=len(jobs) if once else None)
    print_run_results(session_factory, {job.name: job.last_result for job in jobs})


def print_run_results(session_factory, results: dict) -> None:
    """What the jobs did, as tables, and which accounts' alerts went nowhere for want of an
    active channel."""
    from sqlalchemy import select

    from adsentinel.cli import run_report
    from adsentinel.db.models import AdAccount, AlertChannel

    with session_factory() as session:
        names = dict(session.execute(select(AdAccount.id, AdAccount.name)).all())
        with_channel = set(session.scalars(select(AlertChannel.account_id).where(
            AlertChannel.is_active.is_(True))))
    if results.get("training") is not None:
        console.print(run_report.training_table(results["training"], names))
    if results.get("detection") is not None:
        console.print(run_report.detection_table(results["detection"], names))
    if results.get("alerts") is not None or results.get("digests") is not None:
        console.print(run_report.delivery_table(results.get("alerts"), results.get("digests")))
    silent = run_report.unalerted_accounts(results.get("detection") or {}, names, with_channel)
    if silent:
        console.print(f"[yellow]alerts not sent[/] for {', '.join(silent)}: no alert channel is "
                      "configured (add one with `adsentinel alerts channel add`); their "
                      "anomalies are stored and shown on the dashboard", highlight=False)
