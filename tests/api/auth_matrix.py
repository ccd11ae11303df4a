"""The authorisation matrix's declarations, shared by the hand-driven matrix
(``test_authorization.py``) and its schemathesis run (``test_authorization_fuzz.py``): every JSON
route with the URL that reaches an object of an account, the identities without a valid token,
and a dispatcher that records jobs instead of running them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import Mount

from adsentinel.api.dispatch import TaskState
from adsentinel.api.routes_dashboard import PLOTLY_PATH

#: the identities with no valid token, and the Authorization header each sends
NO_VALID_TOKEN = {
    "none": {},
    "unknown": {"Authorization": "Bearer ads_not-a-real-token-0123456789abcdefghijklmnopq"},
    "empty": {"Authorization": "Bearer "},
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "no-scheme": {"Authorization": "ads_missing_scheme"},
    "oversized": {"Authorization": "Bearer ads_" + "x" * 4000},
    "sql": {"Authorization": "Bearer ads_' OR '1'='1"},
}


@dataclass(frozen=True)
class Api:
    """A JSON route, with the URL that reaches an object of a given account.

    ``url`` is a template over :func:`_objects` (``{account}``, ``{entity}``, ``{campaign}``,
    ``{anomaly}``, ``{task}``). ``lists``: the route answers a list that a token scoped to
    another account gets without that account's objects (200), rather than 404; ``probes`` are
    filtered URLs of such a list that must be 404 for that token.
    """

    url: str
    body: dict | None = None
    write: bool = False
    lists: bool = False
    public: bool = False
    probes: tuple[str, ...] = ()


#: every route of the JSON API, keyed as the app declares it (method, path template)
API: dict[tuple[str, str], Api] = {
    ("GET", "/api/v1/health"): Api("/api/v1/health", public=True),
    ("GET", "/api/v1/accounts"): Api("/api/v1/accounts", lists=True),
    ("GET", "/api/v1/accounts/{account_id}"): Api("/api/v1/accounts/{account}"),
    ("GET", "/api/v1/accounts/{account_id}/entities"): Api(
        "/api/v1/accounts/{account}/entities"),
    ("GET", "/api/v1/accounts/{account_id}/entity-tree"): Api(
        "/api/v1/accounts/{account}/entity-tree"),
    ("GET", "/api/v1/accounts/{account_id}/training"): Api(
        "/api/v1/accounts/{account}/training"),
    ("GET", "/api/v1/entities/{entity_id}"): Api("/api/v1/entities/{entity}"),
    ("GET", "/api/v1/entities/{entity_id}/metrics"): Api("/api/v1/entities/{campaign}/metrics"),
    ("GET", "/api/v1/anomalies"): Api("/api/v1/anomalies", lists=True, probes=(
        "/api/v1/anomalies?account_id={account}", "/api/v1/anomalies?entity_id={entity}")),
    ("GET", "/api/v1/anomalies/{anomaly_id}"): Api("/api/v1/anomalies/{anomaly}"),
    ("PATCH", "/api/v1/anomalies/{anomaly_id}"): Api(
        "/api/v1/anomalies/{anomaly}", body={"status": "acknowledged"}, write=True),
    ("POST", "/api/v1/accounts/{account_id}/training"): Api(
        "/api/v1/accounts/{account}/training", write=True),
    ("POST", "/api/v1/accounts/{account_id}/detection"): Api(
        "/api/v1/accounts/{account}/detection", write=True),
    ("GET", "/api/v1/tasks/{task_id}"): Api("/api/v1/tasks/{task}"),
    ("GET", "/api/v1/status"): Api("/api/v1/status", lists=True),
    ("GET", "/health/ready"): Api("/health/ready", public=True),
}
#: token-scoped routes that answer another format than JSON (tests/ops/test_metrics.py)
TEXT_ROUTES = {("GET", "/metrics"): "/metrics"}


@dataclass(frozen=True)
class Page:
    """A dashboard route: a page (GET) or a form (POST) on an object of a given account."""

    url: str
    form: dict | None = None  # the fields of a form post, without the CSRF token
    write: bool = False
    lists: bool = False
    probes: tuple[str, ...] = ()


#: the dashboard's routes that need a session (login and logout are tested on their own)
DASHBOARD: dict[tuple[str, str], Page] = {
    ("GET", "/"): Page("/", lists=True, probes=("/?account={account}",)),
    ("GET", "/entities/{entity_id}"): Page("/entities/{entity}"),
    ("POST", "/anomalies/{anomaly_id}/status"): Page(
        "/anomalies/{anomaly}/status", form={"status": "acknowledged"}, write=True),
    ("GET", "/export"): Page("/export?account={account}"),
}
#: the session's own doors: open to anyone, but a form without the CSRF token changes nothing
SESSION_DOORS = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
#: served to anyone on purpose: the schema and its viewers, the charts library, CSS and icons
PUBLIC = {
    ("GET", "/openapi.json"): "/openapi.json",
    ("GET", "/docs"): "/docs",
    ("GET", "/docs/oauth2-redirect"): "/docs/oauth2-redirect",
    ("GET", "/redoc"): "/redoc",
    ("GET", "/vendor/plotly.min.js"): "/vendor/plotly.min.js",
    ("GET", PLOTLY_PATH): PLOTLY_PATH,
    ("GET", "/api-reference"): "/api-reference",
    ("GET", "/language"): "/language?lang=pt-BR",
    ("MOUNT", "/static"): "/static/style.css",
}


def served_routes(routes: Iterable) -> set[tuple[str, str]]:
    """(method, path template) of every route in an app's route table (HEAD aside); a mounted
    app counts as ("MOUNT", prefix). Routers included in the app are walked."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if hasattr(route, "effective_candidates"):  # FastAPI's included router
            found |= served_routes(route.effective_candidates())
        elif hasattr(route, "routes") and hasattr(route, "include_router"):
            found |= served_routes(route.routes)
        elif isinstance(route, Mount):
            found.add(("MOUNT", route.path))
        else:
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


class RecordingDispatcher:
    """Takes jobs and runs none: the matrix is about who may enqueue, and a detection running
    in the background would retract the world's anomalies under the test's feet."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: dict[str, TaskState] = {}

    def enqueue(self, kind: str, account_id: int) -> str:
        task_id = f"{kind}-{len(self.tasks) + 1}"
        self.tasks[task_id] = TaskState("PENDING", account_id)
        return task_id

    def state(self, task_id: str) -> TaskState | None:
        return self.tasks.get(task_id)

    def close(self) -> None:
        pass


def objects_of(world, key: str) -> dict[str, object]:
    """The ids the URL templates name, of account ``key`` (a or b) of the world."""
    return {"account": getattr(world, f"account_{key}"), "entity": world.entities[key]["ad"],
            "campaign": world.entities[key]["campaign"],
            "anomaly": world.anomalies[f"open_{key}"], "task": world.tasks[key]}
