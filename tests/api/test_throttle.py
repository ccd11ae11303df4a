"""Throttles of the API server (issue 17, item 7): failed authentication per client, the chart
queue of a process, and one queued job per account and kind."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from api_world import one_ad_app
from fastapi.testclient import TestClient

from adsentinel.api import series
from adsentinel.api.dispatch import JobAlreadyQueued
from adsentinel.api.throttle import ChartQueue, FailureThrottle, TooManyRequests, chart_queue

BAD = {"Authorization": "Bearer ads_not-a-real-token-0123456789abcdefghijklmnopq"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failure_throttle_counts_per_client_in_a_sliding_window():
    clock = Clock()
    throttle = FailureThrottle(limit=3, window_seconds=60, clock=clock)
    for _ in range(2):
        throttle.record_failure("10.0.0.1")
        clock.now += 10
    assert throttle.retry_after("10.0.0.1") is None  # 2 of 3
    throttle.record_failure("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(40)  # the first leaves at +60
    assert throttle.retry_after("10.0.0.2") is None  # another client is not concerned
    clock.now += 40
    assert throttle.retry_after("10.0.0.1") is None  # 2 failures left in the window
    assert FailureThrottle(limit=0, window_seconds=60).retry_after("x") is None


def test_chart_queue_admits_one_computing_and_its_waiting_limit():
    queue = ChartQueue(waiting_limit=1)
    with queue.admitted(), queue.admitted():
        with pytest.raises(TooManyRequests) as refused, queue.admitted():
            pass
        assert refused.value.status_code == 429 and refused.value.retry_after >= 1
        assert refused.value.headers == {"Retry-After": str(refused.value.retry_after)}
    with queue.admitted():  # the places are given back
        assert queue.inside == 1
    assert queue.inside == 0


@pytest.fixture
def small_world(tmp_path):
    """One imported account on SQLite, a token, and the app with tight throttles."""
    with one_ad_app(tmp_path, "ops", auth_failure_limit=3, auth_failure_window_seconds=600,
                    chart_queue_limit=0) as world:
        yield (world.app, {"Authorization": f"Bearer {world.secret}"}, world.secret,
               world.entity_id)


def test_bad_tokens_are_throttled_per_client_then_even_a_good_one_waits(small_world):
    app, good, _, _ = small_world
    with TestClient(app) as client:
        assert [client.get("/api/v1/accounts", headers=BAD).status_code
                for _ in range(3)] == [401, 401, 401]
        refused = client.get("/api/v1/accounts", headers=good)
        assert refused.status_code == 429, refused.text
        assert 590 <= int(refused.headers["Retry-After"]) <= 600
        assert "too many failed authentications" in refused.json()["detail"]
        assert client.get("/api/v1/health").status_code == 200  # needs no token


def test_failed_dashboard_logins_are_throttled(small_world):
    app, _, secret, _ = small_world
    with TestClient(app) as client:
        csrf = _login_form_csrf(client)
        codes = [client.post("/login", data={"token": "ads_wrong", "csrf_token": csrf},
                             follow_redirects=False).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        refused = client.post("/login", data={"token": secret, "csrf_token": csrf},
                              follow_redirects=False)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 590
        assert "Too many failed logins" in refused.text


def _login_form_csrf(client: TestClient) -> str:
    page = client.get("/login").text
    marker = 'name="csrf_token" value="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0]


def test_a_chart_past_the_queue_limit_is_429_at_once(small_world):
    """chart_queue_limit 0: while one chart is computed, the next is refused, not queued."""
    app, good, _, entity_id = small_world
    url = f"/api/v1/entities/{entity_id}/metrics"
    queue = chart_queue(app)
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=1) as pool:
        series._CHART_SLOTS.acquire()  # the process is busy computing a chart
        try:
            first = pool.submit(client.get, url, headers=good)
            deadline = time.monotonic() + 30
            while queue.inside == 0:  # the first request is in, waiting for its turn
                assert time.monotonic() < deadline and not first.done()
                time.sleep(0.02)
            started = time.monotonic()
            refused = client.get(url, headers=good)
            assert time.monotonic() - started < 5
        finally:
            series._CHART_SLOTS.release()
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert first.result(timeout=60).status_code == 200
        assert client.get(url, headers=good).status_code == 200  # free again


def test_a_second_queued_job_of_the_same_account_and_kind_is_409(small_world):
    app, good, _, _ = small_world
    dispatcher = app.state.dispatcher
    gate = threading.Event()
    dispatcher._executor.submit(gate.wait, 30)  # the single job thread is busy
    with TestClient(app) as client:  # leaving it closes the dispatcher
        try:
            first = client.post("/api/v1/accounts/1/training", headers=good)
            assert first.status_code == 202, first.text
            again = client.post("/api/v1/accounts/1/training", headers=good)
            assert again.status_code == 409, again.text
            assert first.json()["task_id"] in again.json()["detail"]
            other_kind = client.post("/api/v1/accounts/1/detection", headers=good)
            assert other_kind.status_code == 202
        finally:
            gate.set()
        task_id = first.json()["task_id"]
        deadline = time.monotonic() + 60
        while dispatcher.state(task_id).state == "queued":  # once it runs, another may queue
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.post("/api/v1/accounts/1/training", headers=good).status_code == 202


def test_the_dispatcher_itself_refuses_the_same_queued_job(small_world):
    app, _, _, _ = small_world
    dispatcher = app.state.dispatcher
    gate = threading.Event()
    dispatcher._executor.submit(gate.wait, 30)
    try:
        queued = dispatcher.enqueue("detection", 1)
        with pytest.raises(JobAlreadyQueued, match=f"already queued as task {queued}"):
            dispatcher.enqueue("detection", 1)
        assert dispatcher.enqueue("detection", 2) != queued  # another account is not concerned
    finally:
        gate.set()


def test_the_entity_page_past_the_chart_queue_is_a_429_page(small_world):
    app, _, secret, entity_id = small_world
    queue = chart_queue(app)
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=1) as pool:
        logged_in = client.post("/login", data={"token": secret,
                                                "csrf_token": _login_form_csrf(client)},
                                follow_redirects=False)
        assert logged_in.status_code == 303, logged_in.text
        series._CHART_SLOTS.acquire()
        try:
            first = pool.submit(client.get, f"/entities/{entity_id}")
            deadline = time.monotonic() + 30
            while queue.inside == 0:
                assert time.monotonic() < deadline and not first.done()
                time.sleep(0.02)
            refused = client.get(f"/entities/{entity_id}")
        finally:
            series._CHART_SLOTS.release()
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "text/html" in refused.headers["content-type"]
        assert "charts are already being computed" in refused.text
        assert first.result(timeout=60).status_code == 200
