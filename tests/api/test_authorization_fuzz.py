"""The authorisation matrix driven by schemathesis: for every operation of the OpenAPI schema,
generated path, query and body values are sent as four identities, and whatever the input no
answer is 500 and none lets a caller past its token.

* ``none``: no Authorization header. Always 401.
* ``malformed``: the Bearer values schemathesis generates for the security scheme (random text).
  Always 401.
* ``other-account``: the token limited to account a, with the path's ids replaced by account b's
  objects. 404 (422 for an invalid query or body) and never 403; a list answers 200 without any
  object of account b (a filter on one of them is 404).
* ``read-only``: any write is 403 whatever the input; a read is 200, 400, 404 or 422.

``/health`` needs no token: 200 for everyone. Jobs are recorded, not run. On SQLite and
PostgreSQL; the examples are bounded and derandomised (1,828 cases, about 25 s for both on an
idle machine; the same cases every run).
"""

from __future__ import annotations

import csv
import io
from collections import Counter

import openpyxl
import pytest
import schemathesis
from api_world import build_world
from auth_matrix import API, RecordingDispatcher, objects_of
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from adsentinel.api import create_app
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import Anomaly

EXAMPLES = {"sqlite": 20, "postgresql": 15}
IDENTITIES = ("none", "malformed", "other-account", "read-only")
#: path parameter -> the key of :func:`objects_of` that fills it
PATH_OBJECTS = {"account_id": "account", "entity_id": "entity", "anomaly_id": "anomaly",
                "task_id": "task"}


@pytest.fixture
def fuzz_world(db_settings, tmp_path):
    engine = open_database(db_settings)
    factory = make_session_factory(engine)
    world = build_world(db_settings, engine, factory, tmp_path)
    dispatcher = RecordingDispatcher()
    world.tasks = {key: dispatcher.enqueue("detection", getattr(world, f"account_{key}"))
                   for key in ("a", "b")}
    app = create_app(db_settings, session_factory=factory, dispatcher=dispatcher)
    yield app, world
    engine.dispose()


def _route_of(operation) -> tuple[str, str]:
    return operation.method.upper(), operation.path


def _dress(case, identity: str, world) -> None:
    """Give the generated case the identity's Authorization header (and, for another account,
    account b's objects in its path)."""
    headers = case.headers if case.headers is not None else {}
    if identity == "none":
        headers.pop("Authorization", None)
    elif identity == "malformed":
        generated = headers.get("Authorization", "Bearer ")
        headers["Authorization"] = generated if generated.startswith("Bearer ") else "Bearer "
    elif identity == "other-account":
        headers["Authorization"] = f"Bearer {world.tokens['scoped_a']}"
        b_objects = objects_of(world, "b")
        case.path_parameters = {name: b_objects[PATH_OBJECTS[name]]
                                for name in (case.path_parameters or {})}
    else:
        headers["Authorization"] = f"Bearer {world.tokens['read_only']}"
    case.headers = headers


def _judge(route, identity: str, response, world) -> None:
    """Fail unless ``response`` is what ``identity`` may get from ``route``."""
    api = API[route]
    code = response.status_code
    if api.public:
        assert code == 200, (route, identity, code)
        return
    if identity in ("none", "malformed"):
        assert code == 401, (route, identity, code, response.text[:200])
        return
    if identity == "read-only":
        expected = {403} if api.write else {200, 400, 404, 422}
        assert code in expected, (route, identity, code, response.text[:200])
        return
    if api.lists:
        assert code in (200, 400, 404, 422), (route, identity, code, response.text[:200])
        if code == 200 and _is_export(response):  # ?format=csv|xlsx: the list as a file
            b_anomalies = {v for k, v in world.anomalies.items() if k.endswith("_b")}
            assert not b_anomalies & _exported_ids(response), (route, "exports account b's")
        elif code == 200:
            body = response.json()
            items = body["items"] if isinstance(body, dict) else body
            accounts = {item.get("account_id", item.get("id")) for item in items}
            assert world.account_b not in accounts, (route, "lists an object of account b")
        return
    assert code in (404, 422), (route, identity, code, response.text[:200])


def _content_type(response) -> str:
    value = response.headers.get("content-type", "")  # schemathesis keeps a list per header
    return value[0] if isinstance(value, list) else value


def _is_export(response) -> bool:
    return not _content_type(response).startswith("application/json")


def _exported_ids(response) -> set[int]:
    """The anomaly ids (column ``id``) of a CSV or XLSX export."""
    if _content_type(response).startswith("text/csv"):
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    column = rows[0].index("id")
    return {int(row[column]) for row in rows[1:]}


def _run_cell(operation, identity: str, world, examples: int, cases: Counter) -> None:
    """Generated cases of one operation as one identity; counts them in ``cases``."""
    route = _route_of(operation)

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def exercise(case):
        _dress(case, identity, world)
        response = case.call()
        assert response.status_code < 500, (route, identity, response.text[:200])
        _judge(route, identity, response, world)
        cases[route, identity] += 1

    exercise()


@pytest.mark.slow
def test_generated_requests_never_pass_a_token_they_should_not(fuzz_world):
    app, world = fuzz_world
    database = app.state.settings.effective_database_url.split(":")[0].split("+")[0]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {_route_of(op) for op in operations} == set(API)
    cases: Counter[tuple[tuple[str, str], str]] = Counter()
    for operation in operations:
        for identity in IDENTITIES:
            _run_cell(operation, identity, world, EXAMPLES[database], cases)
    assert set(cases) == {(route, identity) for route in API for identity in IDENTITIES}
    print(f"\n{database}: {len(cases)} (operation, identity) cells, "
          f"{sum(cases.values())} generated cases")
    # account b's anomaly was never changed by the scoped or read-only token
    with app.state.session_factory() as session:
        assert session.get(Anomaly, world.anomalies["open_b"]).status == "open"
