"""Who may do what, on every route the app serves: no token or a bad one is 401, another
account's objects are 404 (never 403) and absent from lists, read-only tokens cannot change
anything; the dashboard sends strangers to the login page and refuses forms without their CSRF
token. On SQLite and PostgreSQL.

The matrix is built from the app's own route table: :func:`served_routes` walks it, and
:func:`test_the_matrix_has_an_entry_for_every_route_the_app_serves` fails as soon as a route is
added without an entry in :data:`API`, :data:`DASHBOARD` or :data:`PUBLIC`. Every
(route, identity) pair tried is a *cell*; each test asserts it covered its routes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import itsdangerous
import pytest
from auth_matrix import (
    API,
    DASHBOARD,
    NO_VALID_TOKEN,
    PUBLIC,
    SESSION_DOORS,
    TEXT_ROUTES,
    Api,
    Page,
    RecordingDispatcher,
    objects_of,
    served_routes,
)
from fastapi.testclient import TestClient

from adsentinel.api import create_app
from adsentinel.service.tokens import create_token, revoke_token


class Cells:
    """The (route, identity) pairs a test tried."""

    def __init__(self) -> None:
        self.tried: set[tuple[tuple[str, str], str]] = set()

    def add(self, route: tuple[str, str], identity: str) -> None:
        self.tried.add((route, identity))

    def routes(self) -> set[tuple[str, str]]:
        return {route for route, _ in self.tried}


def _b_object_ids(world) -> dict[str, set[int]]:
    return {"account": {world.account_b},
            "entity": set(world.entities["b"].values()),
            "anomaly": {world.anomalies["open_b"]}}


@pytest.fixture
def client(db_settings, session_factory, world) -> Iterator[TestClient]:
    """The app on the world's database; enqueued jobs are recorded, not run."""
    app = create_app(db_settings, session_factory=session_factory,
                     dispatcher=RecordingDispatcher())
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def matrix_world(world, client, session_factory):
    """The API world plus a revoked token, a task of each account, and a token limited to
    account b (to show account a's objects are hidden both ways)."""
    world.tokens["revoked"] = create_token(session_factory=session_factory,
                                           name="revoked").secret
    revoke_token(session_factory=session_factory, name_or_prefix="revoked")
    world.tasks = {}
    for key in ("a", "b"):
        queued = client.post(f"/api/v1/accounts/{getattr(world, f'account_{key}')}/detection",
                             headers=world.headers("full"))
        assert queued.status_code == 202, queued.text
        world.tasks[key] = queued.json()["task_id"]
    return world


def _call(client, route: tuple[str, str], api: Api, url: str, headers: dict):
    return client.request(route[0], url, headers=headers, json=api.body)


# --- the route table ---------------------------------------------------------------------------


def test_the_matrix_has_an_entry_for_every_route_the_app_serves(db_settings, session_factory):
    app = create_app(db_settings, session_factory=session_factory)
    declared = set(API) | set(DASHBOARD) | SESSION_DOORS | set(PUBLIC) | set(TEXT_ROUTES)
    served = served_routes(app.routes)
    assert served == declared, (f"routes without a matrix entry: {sorted(served - declared)}; "
                                f"entries of no route: {sorted(declared - served)}")
    operations = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
                  for method in item}
    assert operations == set(API)  # the schema the fuzz tests read documents every JSON route
    assert len(served) == 33


# --- the JSON API ------------------------------------------------------------------------------


@pytest.mark.parametrize("identity", sorted(NO_VALID_TOKEN))
def test_no_valid_token_is_401_on_every_api_route(client, matrix_world, identity):
    cells = Cells()
    for route, api in API.items():
        response = _call(client, route, api, api.url.format(**objects_of(matrix_world, "a")),
                         NO_VALID_TOKEN[identity])
        cells.add(route, identity)
        if api.public:
            assert response.status_code == 200, (route, response.text)
            continue
        assert response.status_code == 401, (route, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["detail"]
    assert cells.routes() == set(API)


def test_a_revoked_token_is_401_on_every_api_route(client, matrix_world):
    cells = Cells()
    for route, api in API.items():
        response = _call(client, route, api, api.url.format(**objects_of(matrix_world, "a")),
                         matrix_world.headers("revoked"))
        cells.add(route, "revoked")
        expected = 200 if api.public else 401
        assert response.status_code == expected, (route, response.text)
        if not api.public:
            assert response.json()["detail"] == "invalid or revoked API token"
    assert cells.routes() == set(API)


def test_another_accounts_objects_are_404_on_every_api_route(client, matrix_world):
    """A token limited to account a, on account b's objects: 404 as if they did not exist
    (never 403), lists without them, and nothing of account b changed or queued."""
    world, cells = matrix_world, Cells()
    hidden = _b_object_ids(world)
    for route, api in API.items():
        url = api.url.format(**objects_of(world, "b"))
        response = _call(client, route, api, url, world.headers("scoped_a"))
        cells.add(route, "other-account")
        if api.public:
            assert response.status_code == 200
        elif api.lists:
            assert response.status_code == 200, (route, response.text)
            _assert_no_object_of_b(response.json(), hidden, route)
            for probe in api.probes:
                probed = client.get(probe.format(**objects_of(world, "b")),
                                    headers=world.headers("scoped_a"))
                assert probed.status_code == 404, (probe, probed.text)
        else:
            assert response.status_code == 404, (route, response.text)
            assert set(response.json()) == {"detail"}
            assert "does not exist" in response.json()["detail"]
    assert cells.routes() == set(API)
    # nothing was changed or queued on account b by the scoped token
    anomaly = client.get(f"/api/v1/anomalies/{world.anomalies['open_b']}",
                         headers=world.headers("full")).json()
    assert anomaly["status"] == "open" and anomaly["status_by"] is None


def test_the_same_urls_answer_the_tokens_that_may_see_them(client, matrix_world):
    """The positive control of the matrix: the URLs the 401/403/404 cells used do reach the
    objects, for the token of every account and for the token scoped to their account."""
    world, cells = matrix_world, Cells()
    for key, token in (("a", "scoped_a"), ("b", "full"), ("a", "full")):
        for route, api in API.items():
            response = _call(client, route, api, api.url.format(**objects_of(world, key)),
                             world.headers(token))
            cells.add(route, f"{token}-on-{key}")
            assert response.status_code in (200, 202), (route, token, response.text)
    assert cells.routes() == set(API)


def test_read_only_token_reads_every_route_but_writes_none(client, matrix_world):
    world, cells = matrix_world, Cells()
    for route, api in API.items():
        response = _call(client, route, api, api.url.format(**objects_of(world, "a")),
                         world.headers("read_only"))
        cells.add(route, "read-only")
        if api.write:
            assert response.status_code == 403, (route, response.text)
            assert "read-only" in response.json()["detail"]
        else:
            assert response.status_code == 200, (route, response.text)
    assert cells.routes() == set(API)
    anomaly = client.get(f"/api/v1/anomalies/{world.anomalies['open_a']}",
                         headers=world.headers("read_only")).json()
    assert anomaly["status"] == "open" and anomaly["status_by"] is None


def test_scoped_token_lists_leave_other_accounts_out(client, world):
    headers = world.headers("scoped_a")
    accounts = client.get("/api/v1/accounts", headers=headers).json()
    assert [a["id"] for a in accounts] == [world.account_a]
    anomalies = client.get("/api/v1/anomalies", headers=headers).json()
    assert anomalies["total"] == 3
    assert {a["account_id"] for a in anomalies["items"]} == {world.account_a}
    full = client.get("/api/v1/anomalies", headers=world.headers("full")).json()
    assert full["total"] == 4


def _assert_no_object_of_b(body, hidden: dict[str, set[int]], route) -> None:
    items = body["items"] if isinstance(body, dict) else body
    assert items, f"{route}: the list is empty, so it proves nothing"
    for item in items:
        if "account_id" in item:
            assert item["account_id"] not in hidden["account"], (route, item)
        else:  # an account
            assert item["id"] not in hidden["account"], (route, item)
        if "entity_id" in item:
            assert item["entity_id"] not in hidden["entity"], (route, item)


# --- the dashboard -----------------------------------------------------------------------------


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client, world, token: str) -> str:
    """Log in through the form with one of the world's tokens; returns the session's CSRF."""
    client.cookies.clear()
    page = client.get("/login")
    response = client.post("/login", data={"token": world.tokens[token],
                                           "csrf_token": _csrf(page.text), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return _csrf(client.get("/").text)


def _forged_session_cookie(payload: dict, key: str) -> str:
    """A session cookie as Starlette writes it, signed with ``key``."""
    data = base64.b64encode(json.dumps(payload).encode())
    return itsdangerous.TimestampSigner(key).sign(data).decode()


def _page(client, route, page: Page, world, key: str, csrf: str | None):
    url = page.url.format(**objects_of(world, key))
    if route[0] == "GET":
        return client.get(url, follow_redirects=False)
    form = dict(page.form or {})
    if csrf is not None:
        form["csrf_token"] = csrf
    return client.post(url, data=form, follow_redirects=False)


@pytest.mark.parametrize("identity", ["anonymous", "garbage-cookie", "cookie-signed-elsewhere",
                                      "revoked-session"])
def test_strangers_go_to_the_login_page_from_every_dashboard_route(client, matrix_world,
                                                                   session_factory, identity):
    world, cells = matrix_world, Cells()
    csrf = None
    if identity == "garbage-cookie":
        client.cookies.set("adsentinel_session", "not-a-signed-cookie")
    elif identity == "cookie-signed-elsewhere":
        client.cookies.set("adsentinel_session", _forged_session_cookie(
            {"token_id": 1, "csrf": "x" * 43}, "a-key-of-another-server-0123456789"))
        csrf = "x" * 43
    elif identity == "revoked-session":
        csrf = _login(client, world, "scoped_a")
        revoke_token(session_factory=session_factory, name_or_prefix="scoped-a")
    for route, page in DASHBOARD.items():
        response = _page(client, route, page, world, "a", csrf)
        cells.add(route, identity)
        assert response.status_code == 303, (route, response.text)
        assert response.headers["location"].startswith("/login?next=/"), route
    assert cells.routes() == set(DASHBOARD)
    assert client.get(f"/api/v1/anomalies/{world.anomalies['open_a']}",
                      headers=world.headers("full")).json()["status"] == "open"


def test_another_accounts_session_sees_none_of_its_pages(client, matrix_world):
    world, cells = matrix_world, Cells()
    csrf = _login(client, world, "scoped_a")
    for route, page in DASHBOARD.items():
        response = _page(client, route, page, world, "b", csrf)
        cells.add(route, "other-account")
        if page.lists:
            assert response.status_code == 200, route
            shown = {int(i) for i in re.findall(r'data-anomaly-id="(\d+)"', response.text)}
            assert shown and world.anomalies["open_b"] not in shown
            assert f"/entities/{world.entities['b']['ad']}" not in response.text
            for probe in page.probes:
                probed = client.get(probe.format(**objects_of(world, "b")),
                                    follow_redirects=False)
                assert probed.status_code == 404, probe
        else:
            assert response.status_code == 404, (route, response.text)
            assert "does not exist" in response.text
    assert cells.routes() == set(DASHBOARD)
    assert client.get(f"/api/v1/anomalies/{world.anomalies['open_b']}",
                      headers=world.headers("full")).json()["status"] == "open"


def test_read_only_session_sees_pages_but_changes_nothing(client, matrix_world):
    world, cells = matrix_world, Cells()
    csrf = _login(client, world, "read_only")
    for route, page in DASHBOARD.items():
        response = _page(client, route, page, world, "a", csrf)
        cells.add(route, "read-only")
        if page.write:
            assert response.status_code == 403, (route, response.text)
            assert "read-only" in response.text
        else:
            assert response.status_code == 200, route
    assert cells.routes() == set(DASHBOARD)
    assert client.get(f"/api/v1/anomalies/{world.anomalies['open_a']}",
                      headers=world.headers("full")).json()["status"] == "open"


@pytest.mark.parametrize("csrf", [None, "", "guessed-token"], ids=["missing", "empty", "wrong"])
def test_forms_without_the_sessions_csrf_token_are_refused(client, matrix_world, csrf):
    world, cells = matrix_world, Cells()
    good = _login(client, world, "full")
    for route, page in DASHBOARD.items():
        if route[0] != "POST":
            continue
        response = _page(client, route, page, world, "a", csrf)
        cells.add(route, f"csrf-{csrf}")
        assert response.status_code == 403, (route, response.text)
    # logging out needs it too: the session survives a forged logout
    form = {} if csrf is None else {"csrf_token": csrf}
    assert client.post("/logout", data=form, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    # and the login form itself: a forged login is not even checked
    forged = client.post("/login", data={"token": world.tokens["read_only"], **form})
    assert forged.status_code == 400 and "expired" in forged.text
    assert client.get(f"/api/v1/anomalies/{world.anomalies['open_a']}",
                      headers=world.headers("full")).json()["status"] == "open"
    # the positive control: the same form with the session's token goes through
    done = _page(client, ("POST", "/anomalies/{anomaly_id}/status"),
                 DASHBOARD[("POST", "/anomalies/{anomaly_id}/status")], world, "a", good)
    assert done.status_code == 303
    assert client.post("/logout", data={"csrf_token": good}, follow_redirects=False)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert cells.routes() == {r for r in DASHBOARD if r[0] == "POST"}


def test_logging_out_ends_every_copy_of_the_session_cookie(client, matrix_world):
    """A cookie copied before logout (another tab, a stolen copy) stops working at once; a new
    login of the same token works again, and an old copy stays dead."""
    world = matrix_world
    csrf = _login(client, world, "full")
    copied = client.cookies.get("adsentinel_session")
    assert client.post("/logout", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    client.cookies.set("adsentinel_session", copied)
    for route, page in DASHBOARD.items():
        response = _page(client, route, page, world, "a", csrf)
        assert response.status_code == 303, (route, response.text)
        assert response.headers["location"].startswith("/login?next=/"), route
    _login(client, world, "full")
    assert client.get("/", follow_redirects=False).status_code == 200
    client.cookies.set("adsentinel_session", copied)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_refuses_every_token_that_is_not_valid(client, matrix_world):
    world = matrix_world
    for identity, headers in NO_VALID_TOKEN.items():
        client.cookies.clear()
        token = headers.get("Authorization", "").removeprefix("Bearer ")[:300]
        page = client.get("/login")
        response = client.post("/login", data={"token": token, "csrf_token": _csrf(page.text)},
                               follow_redirects=False)
        assert response.status_code in (401, 422), (identity, response.status_code)
        assert client.get("/", follow_redirects=False).status_code == 303, identity
    page = client.get("/login")
    revoked = client.post("/login", data={"token": world.tokens["revoked"],
                                          "csrf_token": _csrf(page.text)})
    assert revoked.status_code == 401


@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_public_routes_need_no_token_and_show_no_data(client, matrix_world, route):
    response = client.get(PUBLIC[route])
    assert response.status_code == 200
    # the account names as words ("impact_amount", a field's name, holds the letters act_a)
    assert not re.search(r"\bact_[ab]\b", response.text)


# --- answers that hold account data -----------------------------------------------------------


def test_json_answers_and_pages_are_never_cached(client, matrix_world):
    world = matrix_world
    answers = [client.get(f"/api/v1/accounts/{world.account_a}/training",
                          headers=world.headers("full")),
               client.get("/api/v1/accounts", headers=world.headers("full")),
               client.get("/api/v1/accounts"),  # a 401 says no more than it must, uncached too
               client.get("/openapi.json")]
    _login(client, world, "full")
    answers.append(client.get("/"))
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
    assert "no-store" not in client.get("/vendor/plotly.min.js").headers["cache-control"]


def test_a_malformed_metadata_json_is_not_a_server_error(client, world, db_settings):
    folder = (db_settings.effective_models_path / "anomaly_detector"
              / f"config_{world.account_a}")
    folder.mkdir(parents=True, exist_ok=True)
    for text in ('[]', '{"models_count": 5}', '{"skip_reasons": ["x"]}',
                 '{"last_training": "soon"}', '{"models_count": {"ad": "x"}}', "{not json"):
        (folder / "metadata.json").write_text(text)
        answer = client.get(f"/api/v1/accounts/{world.account_a}/training",
                            headers=world.headers("full"))
        assert answer.status_code == 200, (text, answer.text)
        assert answer.json()["models_total"] == 0 and answer.json()["last_training"] is None
