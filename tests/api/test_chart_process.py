"""Charts are computed in a process beside the server process (issue 15: 8 concurrent charts must
not slow ``/health``): never in the server process, at a lower CPU priority, replaced when it
dies, and ended when its server process ends however it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from api_world import one_ad_app
from fastapi.testclient import TestClient

from adsentinel.api import create_app, series
from adsentinel.api.chart_process import CHART_NICENESS, ChartProcess, chart_process
from adsentinel.api.dispatch import InProcessDispatcher
from adsentinel.config import load_settings
from adsentinel.db.engine import create_db_engine, make_session_factory


@pytest.fixture
def charted(tmp_path):
    """One imported account of 20 days on SQLite, a token, and the app."""
    with one_ad_app(tmp_path, "charts") as world:
        yield world.app, world.secret, world.entity_id


def _refuse_in_this_process(*_args, **_kwargs):
    raise AssertionError("a chart's expected values were computed in the server process")


def test_the_chart_routes_compute_outside_the_server_process(charted, monkeypatch):
    """The expected values are refused in this process: the chart process (a fresh interpreter)
    computes them, and the API and the dashboard page still show them."""
    app, secret, entity_id = charted
    monkeypatch.setattr(series, "expected_by_day", _refuse_in_this_process)
    with TestClient(app) as client:
        answer = client.get(f"/api/v1/entities/{entity_id}/metrics",
                            headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200, answer.text
        last = answer.json()["days"][-1]["metrics"]["spend"]
        assert last["actual"] == 10.0 and last["expected"] == pytest.approx(10.0)
        page = client.get("/login").text
        marker = 'name="csrf_token" value="'
        csrf = page[page.index(marker) + len(marker):].split('"', 1)[0]
        assert client.post("/login", data={"token": secret, "csrf_token": csrf},
                           follow_redirects=False).status_code == 303
        assert client.get(f"/entities/{entity_id}").status_code == 200
    with pytest.raises(AssertionError, match="computed in the server process"):
        series.entity_series(session=app.state.session_factory(), settings=app.state.settings,
                             entity_id=entity_id, first=series.date(2026, 9, 1),
                             last=series.date(2026, 9, 20))  # without run: here, refused


def test_the_chart_process_is_another_process_yielding_the_cpu():
    runner = ChartProcess()
    try:
        assert runner.run(os.getpid) != os.getpid()
        assert runner.run(os.nice, 0) == min(19, os.nice(0) + CHART_NICENESS)
        points = runner.run(series.chart_points, [], series.ChartRules(3.0, 1.5, 14, 90),
                            series.date(2026, 9, 1), series.date(2026, 9, 2))
        assert points == []
        # the computation without the application around it (about half the memory)
        assert runner.run(eval, "'adsentinel.api.series' in __import__('sys').modules")
        assert not runner.run(eval, "'fastapi' in __import__('sys').modules")
    finally:
        runner.close()
    assert chart_process() is chart_process()  # one per server process


def test_a_killed_chart_process_is_replaced_and_the_chart_retried():
    runner = ChartProcess()
    try:
        first = runner.run(os.getpid)
        os.kill(first, signal.SIGKILL)
        second = runner.run(os.getpid)  # the broken process is noticed, a new one answers
        assert second != first
        assert runner.run(os.getpid) == second
    finally:
        runner.close()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # ended, not reaped
    except FileNotFoundError:
        return True


def test_the_chart_process_ends_when_its_server_process_is_killed():
    """A server process killed (SIGKILL: no lifespan, no atexit) leaves no chart process."""
    server = subprocess.Popen(
        [sys.executable, "-c",
         "import os, signal\n"
         "from adsentinel.api.chart_process import ChartProcess\n"
         "print(ChartProcess().run(os.getpid), flush=True)\n"
         "os.kill(os.getpid(), signal.SIGKILL)\n"],
        stdout=subprocess.PIPE, text=True)
    orphan = int(server.stdout.readline())  # the chart process holds the pipe: no communicate
    assert server.wait(timeout=120) == -signal.SIGKILL
    server.stdout.close()
    deadline = time.monotonic() + 30
    while not _gone(orphan):
        if time.monotonic() > deadline:
            os.kill(orphan, signal.SIGKILL)
            raise AssertionError(f"the chart process {orphan} outlived its server process")
        time.sleep(0.1)


def test_health_answers_while_every_request_thread_is_taken(charted):
    """Waiting chart requests each hold a thread of the request pool; /health does not queue
    behind them: here the pool has one thread and a borrower holds it."""
    import anyio.to_thread

    app, _, _ = charted
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=1) as asker:
        limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
        limiter.total_tokens = 1
        holder = object()
        client.portal.call(limiter.acquire_on_behalf_of, holder)
        try:
            answer = asker.submit(client.get, "/api/v1/health").result(timeout=60)
        finally:
            client.portal.call(limiter.release_on_behalf_of, holder)
        assert answer.status_code == 200 and answer.json()["database"] == "ok"


def test_health_is_503_when_the_database_does_not_answer(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    away = make_session_factory(create_db_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"))
    app = create_app(settings, session_factory=away,
                     dispatcher=InProcessDispatcher(settings, away))
    with TestClient(app) as client:
        answer = client.get("/api/v1/health")
    assert answer.status_code == 503
    assert "database is not reachable" in answer.json()["detail"]


def _serve_one_chart() -> int:
    """As a server process started by ``uvicorn --workers``: a chart, then the process returns."""
    return chart_process().run(os.getpid)


def test_a_server_process_started_by_multiprocessing_ends_with_its_chart_process():
    """uvicorn's server processes are multiprocessing children: they join their children when
    they end, and the chart process ends before that join (else they would never end)."""
    import multiprocessing

    server = multiprocessing.get_context("spawn").Process(target=_serve_one_chart)
    server.start()
    server.join(timeout=60)
    alive = server.is_alive()
    if alive:
        server.kill()
    assert not alive and server.exitcode == 0
