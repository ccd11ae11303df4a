"""The Meta client against recorded Graph API payloads served through the SDK's HTTP stack."""

from __future__ import annotations

import logging
from datetime import date
from unittest import mock

import pytest
import requests
from graph_api import ACCOUNT, TOKEN, payload, serve_insights, serve_structure

from adsentinel.sync.errors import (
    MetaApiError,
    MetaAuthError,
    MetaThrottledError,
    SyncPayloadError,
)

DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)


def test_paging_is_followed_to_the_end(graph, make_client):
    serve_structure(graph)
    client = make_client()
    ads = client.ads()
    assert [a["id"] for a in ads] == ["120210000000000301", "120210000000000302",
                                      "120210000000000303", "120210000000000304"]
    asked = graph.asked("GET", f"{ACCOUNT}/ads")
    assert [p.get("after") for p in asked] == [None, "QVFIUkdWU0tGWjBn"]
    assert "effective_status" in asked[0]["fields"] and asked[0]["access_token"] == TOKEN


def test_insights_ask_for_ad_level_daily_rows(graph, make_client):
    serve_insights(graph, "insights_page1", "insights_page2")
    rows = make_client().insights(DAY1, DAY2)
    assert len(rows) == 5 and rows[0]["spend"] == "152.37"
    first = graph.asked("GET", f"{ACCOUNT}/insights")[0]
    assert first["level"] == "ad" and first["time_increment"] == "1"
    assert first["time_range"] == '{"since":"2026-11-24","until":"2026-11-25"}'
    for field in ("spend", "impressions", "inline_link_clicks", "reach", "frequency", "actions",
                  "action_values", "ad_id"):
        assert field in first["fields"].split(",")


def test_large_pull_runs_as_an_async_report_job(graph, make_client, clock):
    job = payload("async_job_created")["report_run_id"]
    graph.ok("POST", f"{ACCOUNT}/insights", "async_job_created")
    graph.ok("GET", job, "async_job_running")
    graph.ok("GET", job, "async_job_running")
    graph.ok("GET", job, "async_job_completed")
    graph.ok("GET", f"{job}/insights", "insights_page1")
    graph.ok("GET", f"{job}/insights", "insights_page2", after="MgZDZD")
    client = make_client(async_threshold_rows=10)
    rows = client.insights(DAY1, DAY2, expected_rows=10)
    assert len(rows) == 5
    posted = graph.asked("POST", f"{ACCOUNT}/insights")[0]
    assert posted["level"] == "ad" and "spend" in posted["fields"]
    assert len(graph.asked("GET", job)) == 3
    assert clock.sleeps == [1.0, 2.0]  # polling backs off
    assert client.stats.async_jobs == 1


def test_async_job_that_never_finishes_is_split_then_given_up(graph, make_client, caplog):
    job = payload("async_job_created")["report_run_id"]
    graph.ok("POST", f"{ACCOUNT}/insights", "async_job_created")
    graph.ok("GET", job, "async_job_running")
    client = make_client(async_threshold_rows=1, poll_timeout_seconds=60)
    with caplog.at_level(logging.WARNING), pytest.raises(
            MetaApiError, match=r"on 2026-11-24 failed 2 times \(last status 'timed out'\)") as error:
        client.insights(DAY1, DAY2, expected_rows=5)
    assert "SYNC_ASYNC_POLL_TIMEOUT" in error.value.hint
    assert "still 'Job Running' at 42% after 60 s" in caplog.text
    ranges = [p["time_range"] for p in graph.asked("POST", f"{ACCOUNT}/insights")]
    assert ranges == ['{"since":"2026-11-24","until":"2026-11-25"}',
                      '{"since":"2026-11-24","until":"2026-11-24"}',
                      '{"since":"2026-11-24","until":"2026-11-24"}']


def test_throttle_waits_for_metas_estimate_then_succeeds(graph, make_client, clock, caplog):
    graph.on("GET", f"{ACCOUNT}/insights",
             (400, payload("error_throttled"), payload("headers_throttled")),
             (200, payload("insights_page2"), payload("headers_quiet")))
    client = make_client()
    with caplog.at_level(logging.WARNING):
        rows = client.insights(DAY2, DAY2)
    assert len(rows) == 2
    assert client.stats.throttled == 1
    # estimated_time_to_regain_access is 2 minutes: at least 120 s, plus at most 50 % jitter
    # of the backoff step (2 s on the first attempt)
    assert len(clock.sleeps) == 1 and 120 <= clock.sleeps[0] <= 121
    assert "code 80000" in caplog.text and TOKEN not in caplog.text


def test_throttling_beyond_the_runs_allowance_stops_the_run(graph, make_client):
    graph.on("GET", f"{ACCOUNT}/insights",
             (400, payload("error_throttled"), payload("headers_throttled")))
    client = make_client(max_throttle_wait_seconds=100)
    with pytest.raises(MetaThrottledError, match="beyond this run's 100 s allowance"):
        client.insights(DAY2, DAY2)


def test_expired_token_is_not_retried(graph, make_client, clock):
    graph.on("GET", ACCOUNT, (400, payload("error_token_expired"), {}))
    client = make_client()
    with pytest.raises(MetaAuthError) as error:
        client.account()
    assert error.value.code == 190 and "Session has expired" in error.value.message
    assert len(graph.requests) == 1 and clock.sleeps == []
    assert TOKEN not in str(error.value)


def test_transient_errors_are_retried_then_given_up(graph, make_client, clock):
    graph.on("GET", ACCOUNT, (500, payload("error_unknown"), {}))
    client = make_client()
    with pytest.raises(MetaApiError, match="gave up after 6 attempts"):
        client.account()
    assert len(graph.requests) == 6 and len(clock.sleeps) == 5
    assert clock.sleeps == sorted(clock.sleeps)  # exponential


def test_transient_error_then_success(graph, make_client):
    graph.on("GET", ACCOUNT, (500, payload("error_unknown"), {}),
             (200, payload("account"), payload("headers_quiet")))
    assert make_client().account()["currency"] == "BRL"


def test_a_server_error_page_that_is_not_json_is_retried_as_transient(graph, make_client, clock):
    # a load balancer's HTML error page in front of the Graph API is Meta having trouble,
    # not a malformed answer: retried, then given up as a Meta error
    graph.on("GET", ACCOUNT, (502, "<html><body>Bad Gateway</body></html>", {}),
             (200, payload("account"), payload("headers_quiet")))
    assert make_client().account()["currency"] == "BRL"
    assert len(graph.requests) == 2 and len(clock.sleeps) == 1


def test_network_error_text_never_carries_the_token(graph, make_client, clock):
    def refuse(self, request, **kwargs):
        raise requests.ConnectionError(f"HTTPSConnectionPool(host='graph.facebook.com'): Max "
                                       f"retries exceeded with url: {request.path_url}")
    # undone inside the test: a monkeypatch would be undone after `graph` stops, putting the
    # mock's own `send` back for good and every later test in this process would hit the mock
    with mock.patch("requests.adapters.HTTPAdapter.send", refuse), \
            pytest.raises(MetaApiError) as error:
        make_client().account()
    assert "access_token=***" in error.value.message and TOKEN not in error.value.message


def test_a_body_that_is_not_json_is_a_payload_error(graph, make_client):
    graph.on("GET", f"{ACCOUNT}/campaigns", (200, "<html>upstream timed out</html>", {}))
    with pytest.raises(SyncPayloadError, match="campaigns of act_1234567890 is not a JSON"):
        make_client().campaigns()


def test_busy_budget_slows_the_next_call(graph, make_client, clock):
    graph.ok("GET", ACCOUNT, "account", headers="headers_busy")
    graph.ok("GET", f"{ACCOUNT}/campaigns", "campaigns")
    client = make_client(slowdown_percent=75)
    client.account()
    assert clock.sleeps == []
    client.campaigns()
    # 91 % of the business use case budget: (91 - 75) / 25 of the 60 s maximum pause
    assert clock.sleeps == [pytest.approx(38.4)]
    assert client.stats.highest_usage_percent == 91


def test_debug_request_lines_of_urllib3_are_scrubbed(caplog):
    import adsentinel.sync.meta_client  # noqa: F401 - installs the filter

    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug(
            '%s://%s:%s "%s %s %s" %s %s', "https", "graph.facebook.com", 443, "GET",
            f"/v26.0/{ACCOUNT}/ads?access_token={TOKEN}&limit=500", "HTTP/1.1", 200, 1234)
    assert TOKEN not in caplog.text and "access_token=***&limit=500" in caplog.text


def test_an_empty_page_in_the_middle_does_not_end_the_paging(graph, make_client):
    graph.ok("GET", f"{ACCOUNT}/insights", "insights_page1")
    graph.ok("GET", f"{ACCOUNT}/insights", "insights_empty_page", after="MgZDZD")
    graph.ok("GET", f"{ACCOUNT}/insights", "insights_page2", after="MwZDZD")
    rows = make_client().insights(DAY1, DAY2)
    assert len(rows) == 5
    assert [p.get("after") for p in graph.asked("GET", f"{ACCOUNT}/insights")] == [
        None, "MgZDZD", "MwZDZD"]


def test_a_failed_report_job_is_started_again(graph, make_client):
    job = payload("async_job_created")["report_run_id"]
    graph.ok("POST", f"{ACCOUNT}/insights", "async_job_created")
    graph.on("GET", job, (200, payload("async_job_failed"), {}),
             (200, payload("async_job_completed"), {}))
    graph.ok("GET", f"{job}/insights", "insights_page2")
    client = make_client(async_threshold_rows=1)
    assert len(client.insights(DAY2, DAY2, expected_rows=5)) == 2
    assert len(graph.asked("POST", f"{ACCOUNT}/insights")) == 2 and client.stats.async_jobs == 2


def test_too_much_data_for_a_plain_request_switches_to_a_report_job(graph, make_client):
    job = payload("async_job_created")["report_run_id"]
    graph.on("GET", f"{ACCOUNT}/insights", (500, payload("error_too_much_data"), {}))
    graph.ok("POST", f"{ACCOUNT}/insights", "async_job_created")
    graph.ok("GET", job, "async_job_completed")
    graph.ok("GET", f"{job}/insights", "insights_page2")
    client = make_client()
    assert len(client.insights(DAY2, DAY2)) == 2
    assert len(graph.asked("GET", f"{ACCOUNT}/insights")) == 1  # not retried as it was
