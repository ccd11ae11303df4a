"""``GET /metrics``: Prometheus metrics of the deployment and of this API server.

Per account figures are read from the database at scrape time (:class:`AccountFigures`), so
they are true whichever process (worker, ``adsentinel run``, CLI) did the work, and survive
restarts. The server's own request counts and latencies by route are counted in process
(with ``serve --workers N``, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder so that every
server process's figures are summed). The route needs an API token like the rest of the API
(Prometheus: ``authorization: {credentials_file: ...}``); a token limited to some accounts sees
only theirs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adsentinel.api.routes_api import Reader
from adsentinel.service.status import SEVERITIES, AccountStatus, account_statuses

router = APIRouter()

REQUESTS = Counter("adsentinel_http_requests", "HTTP requests answered, by route template.",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("adsentinel_http_request_duration_seconds",
                            "Time to answer an HTTP request, by route template.",
                            ["method", "route"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
UNMATCHED_ROUTE = "unmatched"  # 404s of unknown paths: one label, not one per path


class RequestMetricsMiddleware:
    """Counts every HTTP request and its duration under its route's template
    (``/api/v1/entities/{entity_id}``), never the raw path."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def remember_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            REQUEST_SECONDS.labels(scope["method"], route).observe(
                time.perf_counter() - started)


class AccountFigures(Collector):
    """The per-account figures of :func:`adsentinel.service.status.account_statuses`, as
    gauges (one set of queries per scrape)."""

    def __init__(self, statuses: list[AccountStatus]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {name: GaugeMetricFamily(name, doc, labels=labels)
                    for name, doc, labels in _ACCOUNT_FAMILIES}
        depth = 0
        for status in self.statuses:
            _add_account(families, status)
            depth += status.alerts.get("pending", 0) + status.alerts.get("retrying", 0)
        yield from families.values()
        outbox = GaugeMetricFamily("adsentinel_alert_outbox_depth",
                                   "Alerts waiting to be delivered (pending and retrying).")
        outbox.add_metric([], depth)
        yield outbox


_ACCOUNT = ["account"]
_ACCOUNT_FAMILIES = (
    ("adsentinel_account_info", "1 per account; account_id is the database id.",
     ["account", "account_id", "active"]),
    ("adsentinel_account_attention_items",
     "Problems needing a person (see GET /api/v1/status); 0 when all is well.", _ACCOUNT),
    ("adsentinel_last_sync_success_timestamp_seconds",
     "End of the last successful Meta sync (Unix time).", _ACCOUNT),
    ("adsentinel_last_sync_duration_seconds", "Duration of the last successful sync.", _ACCOUNT),
    ("adsentinel_last_sync_rows", "Insight rows the last successful sync pulled.", _ACCOUNT),
    ("adsentinel_last_sync_failed", "1 when the latest sync failed, else 0.", _ACCOUNT),
    ("adsentinel_last_training_success_timestamp_seconds",
     "Start of the last successful training (Unix time).", _ACCOUNT),
    ("adsentinel_last_training_duration_seconds", "Duration of the last successful training.",
     _ACCOUNT),
    ("adsentinel_last_training_failed", "1 when the latest training failed, else 0.", _ACCOUNT),
    ("adsentinel_models", "Entity models of the last successful training, by outcome.",
     ["account", "outcome"]),
    ("adsentinel_last_detection_timestamp_seconds",
     "Start of the last detection run that judged an entity (Unix time).", _ACCOUNT),
    ("adsentinel_open_anomalies", "Open anomalies by severity.", ["account", "severity"]),
    ("adsentinel_alerts", "Alert outbox rows by state (pending, retrying, sent, failed).",
     ["account", "state"]),
    ("adsentinel_model_files_refused",
     "Entities whose stored model the last detection refused (damaged, tampered with, "
     "foreign): statistical detection only until retrained.", _ACCOUNT),
    ("adsentinel_graph_api_usage_percent",
     "Highest share of a Meta rate-limit budget used during the latest sync (0-100, above "
     "100 when throttled), by budget.", ["account", "budget"]),
)


def _add_account(families: dict[str, GaugeMetricFamily], status: AccountStatus) -> None:
    account = [status.name]

    def put(name: str, value: float | None, *extra: str) -> None:
        if value is not None:
            families[name].add_metric(account + list(extra), value)

    families["adsentinel_account_info"].add_metric(
        [status.name, str(status.account_id), str(status.is_active).lower()], 1)
    put("adsentinel_account_attention_items", len(status.attention))
    sync, training = status.last_successful_sync, status.last_successful_training
    if sync is not None:
        put("adsentinel_last_sync_success_timestamp_seconds",
            (sync.finished_at or sync.started_at).timestamp())
        put("adsentinel_last_sync_duration_seconds", sync.duration_seconds)
        put("adsentinel_last_sync_rows", (sync.counts or {}).get("insight_rows"))
    if status.last_sync is not None:
        put("adsentinel_last_sync_failed", float(status.last_sync.status == "failed"))
    if training is not None:
        put("adsentinel_last_training_success_timestamp_seconds", training.started_at.timestamp())
        put("adsentinel_last_training_duration_seconds", training.duration_seconds)
        for outcome, count in status.models.items():
            put("adsentinel_models", count, outcome)
    if status.last_training is not None:
        put("adsentinel_last_training_failed", float(status.last_training.status == "failed"))
    if status.last_detection_at is not None:
        put("adsentinel_last_detection_timestamp_seconds", status.last_detection_at.timestamp())
    for severity in SEVERITIES:
        put("adsentinel_open_anomalies", status.open_anomalies.get(severity, 0), severity)
    for state, count in status.alerts.items():
        put("adsentinel_alerts", count, state)
    put("adsentinel_model_files_refused", status.models_refused)
    for budget, percent in sorted(status.graph_api_usage_percent.items()):
        put("adsentinel_graph_api_usage_percent", percent, budget)


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or every server process's with the multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, principal: Reader) -> Response:
    """Prometheus text format: the accounts the token sees, and this server's requests."""
    statuses = account_statuses(session_factory=request.app.state.session_factory,
                                account_filter=principal.account_filter, with_freshness=False)
    accounts = CollectorRegistry(auto_describe=False)
    accounts.register(AccountFigures(statuses))
    body = generate_latest(_process_registry()) + generate_latest(accounts)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Add ``/metrics`` and the request counting to ``app``."""
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(router)
