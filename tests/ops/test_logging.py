"""Structured logs: ADSENTINEL_LOG_FORMAT=json|text, the account/task/run id context, secrets
scrubbed, the same set-up for the CLI, the API server and the workers."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from adsentinel.logging_setup import configure_logging, current_log_context, log_context
from factories import insight_rows, write_csv

META_TOKEN = "EAAGsecretTOKENvalue123"
API_TOKEN = "ads_" + "x" * 43


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="INFO", log_format="json", stream=stream)
    yield stream
    configure_logging(level="INFO", log_format="text")


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_context_and_no_secret(captured):
    log = logging.getLogger("adsentinel.test")
    with log_context(account=7, task="adsentinel.detect_anomalies", run_id="r-1"):
        log.warning("calling %s", f"https://graph.facebook.com/v26.0/act_1?access_token={META_TOKEN}")
        with log_context(account=8):
            assert current_log_context() == {"account": 8, "task": "adsentinel.detect_anomalies",
                                             "run_id": "r-1"}
            try:
                raise RuntimeError(f"token {API_TOKEN} refused")
            except RuntimeError:
                log.exception("request failed for %s", API_TOKEN)
    log.info("outside")

    first, second, third = lines(captured)
    assert first["level"] == "WARNING" and first["logger"] == "adsentinel.test"
    assert (first["account"], first["task"], first["run_id"]) == (7, "adsentinel.detect_anomalies",
                                                                  "r-1")
    assert first["message"].endswith("access_token=***")
    assert second["account"] == 8 and second["message"] == "request failed for ads_***"
    assert "RuntimeError: token ads_*** refused" in second["traceback"]
    assert "account" not in third and third["message"] == "outside"
    assert META_TOKEN not in captured.getvalue() and API_TOKEN not in captured.getvalue()


def test_uvicorn_records_reach_the_same_handler(captured):
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                             f"/api/v1/accounts?token={API_TOKEN}", "1.1", 200)
    (record,) = lines(captured)
    assert record["logger"] == "uvicorn.access"
    assert record["message"] == '127.0.0.1:5000 - "GET /api/v1/accounts?token=ads_*** HTTP/1.1" 200'


def test_text_format_appends_the_context():
    stream = io.StringIO()
    configure_logging(level="INFO", log_format="text", stream=stream)
    try:
        with log_context(account=3, run_id="abc"):
            logging.getLogger("adsentinel.test").info("trained")
    finally:
        configure_logging(level="INFO", log_format="text")
    assert "trained [account=3 run_id=abc]" in stream.getvalue()
    assert not stream.getvalue().lstrip().startswith("{")


def test_log_context_refuses_unknown_fields():
    with pytest.raises(ValueError, match="account, task, run_id"), log_context(acount=3):
        pass


def run_cli(tmp_path, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), **env_extra)
    return subprocess.run([sys.executable, "-m", "adsentinel", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow  # a CLI process start: several seconds on a busy machine
def test_the_cli_logs_json_lines_when_asked(tmp_path):
    csv_file = write_csv(tmp_path / "in.csv", insight_rows(days=3, ads=2))
    done = run_cli(tmp_path, "import", str(csv_file), ADSENTINEL_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert records, done.stderr
    assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert any(r["logger"].startswith("adsentinel.ingest") for r in records)


@pytest.mark.slow
def test_an_unknown_log_format_is_refused_naming_the_variable(tmp_path):
    done = run_cli(tmp_path, "config", "show", ADSENTINEL_LOG_FORMAT="xml")
    assert done.returncode == 78
    assert "ADSENTINEL_LOG_FORMAT" in done.stderr and "xml" in done.stderr


@pytest.mark.slow  # a real server process
def test_the_server_logs_json_lines_with_the_access_log_scrubbed(tmp_path):
    import time
    import urllib.error
    import urllib.request

    from ops_world import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), ADSENTINEL_LOG_FORMAT="json")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "adsentinel", "serve", "--port",
                                   str(port)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=out)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/accounts?token={API_TOKEN}",
                                   timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/api/v1/accounts?token=ads_*** HTTP/1.1\" 401" in r["message"] for r in access)
    assert any(r["logger"] == "uvicorn.error" for r in records)
    assert API_TOKEN not in text


def test_the_embedded_scheduler_tags_each_job_and_account(captured, settings, tmp_path):
    import threading

    from adsentinel.db.engine import make_session_factory, open_database
    from adsentinel.worker.embedded import every, run_schedule, scheduled_jobs
    from factories import small_account

    factory = make_session_factory(open_database(settings))
    account = small_account(factory)["account"]
    jobs = scheduled_jobs(settings=settings, session_factory=factory, training=every(3600),
                          detection=every(3600))
    run_schedule(jobs[:2], stop=threading.Event(), run_first=True, max_runs=2)
    records = lines(captured)
    training = [r for r in records if r.get("task") == "adsentinel.training"]
    assert training and {r.get("account") for r in training} >= {account}
    assert len({r["run_id"] for r in training}) == 1
    detection = [r for r in records if r.get("task") == "adsentinel.detection"]
    assert detection and {r["run_id"] for r in detection}.isdisjoint({training[0]["run_id"]})
