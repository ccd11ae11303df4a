"""The Grafana dashboard in deploy/grafana: importable JSON, and every query names a metric
that the API server (scraped here through its /metrics) or a worker really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "adsentinel.json"
METRIC = re.compile(r"\badsentinel_[a-z0-9_]+")


def sample_names(exposition: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(exposition)
            for sample in family.samples}


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    queries += [variable["definition"] for variable in board["templating"]["list"]
                if variable.get("definition")]
    return queries


def worker_sample_names() -> set[str]:
    from adsentinel.worker import worker_metrics

    worker_metrics.record_task(task="adsentinel.detect_anomalies", state="SUCCESS", seconds=1.5,
                               account=1, result={"by_severity": {"high": 1},
                                                  "refused_models": 1, "sent": 1})
    return sample_names(generate_latest(worker_metrics.WORKER_REGISTRY).decode())


def test_the_dashboard_is_grafana_json_with_unique_panels():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "adsentinel" and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_every_query_names_a_metric_the_server_or_a_worker_exposes(ops_api):
    ops_api.get("/api/v1/status")  # a request, so that the request metrics have samples
    answer = ops_api.get("/metrics")
    assert answer.status_code == 200
    server, worker = sample_names(answer.text), worker_sample_names()
    named = {name for query in dashboard_queries() for name in METRIC.findall(query)}
    assert len(named) >= 15
    for name in sorted(named):
        exposed_by = worker if name.startswith("adsentinel_worker_") else server
        assert name in exposed_by, f"{name} is not exposed ({sorted(exposed_by)})"
    # and the dashboard shows every per-account figure the server has
    per_account = {name for name in server if name.startswith("adsentinel_")
                   and not name.startswith("adsentinel_http_")}
    assert per_account <= named, per_account - named
