"""GET /metrics: the per-account figures read from the database at scrape time, and the
server's requests by route template, scraped from the running app."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def scrape(ops_api, token: str = "admin") -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one scrape."""
    answer = ops_api.get("/metrics", token=token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_account_figures_come_from_the_database(ops_api):
    samples = scrape(ops_api)
    azul = {"account": "Loja Azul"}
    assert value(samples, "adsentinel_last_sync_rows", **azul) == 500
    assert value(samples, "adsentinel_last_sync_duration_seconds", **azul) == 120
    assert value(samples, "adsentinel_last_sync_failed", **azul) == 0
    assert value(samples, "adsentinel_last_sync_failed", account="Loja Verde") == 1
    assert value(samples, "adsentinel_last_training_duration_seconds", **azul) == 42
    assert value(samples, "adsentinel_models", outcome="trained", **azul) == 4
    assert value(samples, "adsentinel_open_anomalies", severity="high", **azul) == 2
    assert value(samples, "adsentinel_open_anomalies", severity="low", **azul) == 0
    assert value(samples, "adsentinel_alerts", state="retrying", **azul) == 1
    assert value(samples, "adsentinel_alerts", state="failed", **azul) == 1
    assert value(samples, "adsentinel_alert_outbox_depth") == 2
    assert value(samples, "adsentinel_account_attention_items", account="Loja Verde") == 5
    assert value(samples, "adsentinel_last_detection_timestamp_seconds", **azul) > 1.7e9
    assert value(samples, "adsentinel_last_detection_timestamp_seconds",
                 account="Loja Verde") is None  # never detected: no sample, not a zero


def test_a_limited_token_sees_only_its_accounts_and_no_token_none(ops_api):
    samples = scrape(ops_api, token="azul")
    accounts = {dict(labels).get("account") for _, labels in samples} - {None}
    assert accounts == {"Loja Azul"}
    assert ops_api.get("/metrics", token=None).status_code == 401


def test_requests_are_counted_by_route_template(ops_api):
    path = f"/api/v1/entities/{ops_api.world.entity}"
    before = scrape(ops_api)
    for _ in range(3):
        assert ops_api.get(path).status_code == 200
    assert ops_api.get("/api/v1/entities/999999").status_code == 404
    assert ops_api.get("/no/such/page/123").status_code == 404
    after = scrape(ops_api)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    route = "/api/v1/entities/{entity_id}"
    assert delta("adsentinel_http_requests_total", method="GET", route=route, status="200") == 3
    assert delta("adsentinel_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("adsentinel_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1
    assert delta("adsentinel_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert not any(str(ops_api.world.entity) in dict(labels).get("route", "")
                   for _, labels in after)
