"""Who may do what: no token or a bad one is 401, another account's objects are 404 (never 403)
and absent from lists, read-only tokens cannot change anything. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adsentinel.service.tokens import revoke_token

#: every protected route, as (method, path template, JSON body); {a_*} are objects of account a
READS = [
    ("GET", "/api/v1/accounts", None),
    ("GET", "/api/v1/accounts/{account_a}", None),
    ("GET", "/api/v1/accounts/{account_a}/entities", None),
    ("GET", "/api/v1/accounts/{account_a}/entity-tree", None),
    ("GET", "/api/v1/accounts/{account_a}/training", None),
    ("GET", "/api/v1/entities/{a_ad}", None),
    ("GET", "/api/v1/entities/{a_ad}/metrics", None),
    ("GET", "/api/v1/anomalies", None),
    ("GET", "/api/v1/anomalies/{a_anomaly}", None),
]
WRITES = [
    ("PATCH", "/api/v1/anomalies/{a_anomaly}", {"status": "acknowledged"}),
    ("POST", "/api/v1/accounts/{account_a}/training", None),
    ("POST", "/api/v1/accounts/{account_a}/detection", None),
]
#: routes on objects of account b, which the token limited to account a must not see
OF_ACCOUNT_B = [
    ("GET", "/api/v1/accounts/{account_b}", None),
    ("GET", "/api/v1/accounts/{account_b}/entities", None),
    ("GET", "/api/v1/accounts/{account_b}/entity-tree", None),
    ("GET", "/api/v1/accounts/{account_b}/training", None),
    ("GET", "/api/v1/entities/{b_ad}", None),
    ("GET", "/api/v1/entities/{b_campaign}/metrics", None),
    ("GET", "/api/v1/anomalies/{b_anomaly}", None),
    ("GET", "/api/v1/anomalies?account_id={account_b}", None),
    ("GET", "/api/v1/anomalies?entity_id={b_ad}", None),
    ("PATCH", "/api/v1/anomalies/{b_anomaly}", {"status": "acknowledged"}),
    ("POST", "/api/v1/accounts/{account_b}/training", None),
    ("POST", "/api/v1/accounts/{account_b}/detection", None),
]


def _url(template: str, world) -> str:
    return template.format(
        account_a=world.account_a, account_b=world.account_b,
        a_ad=world.entities["a"]["ad"], b_ad=world.entities["b"]["ad"],
        b_campaign=world.entities["b"]["campaign"],
        a_anomaly=world.anomalies["open_a"], b_anomaly=world.anomalies["open_b"])


def _call(client, world, route, headers):
    method, template, body = route
    return client.request(method, _url(template, world), headers=headers, json=body)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer ads_not-a-real-token"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "ads_missing_scheme"},
], ids=["none", "unknown", "empty", "basic", "no-scheme"])
def test_no_valid_token_is_401_everywhere(client, world, headers):
    for route in READS + WRITES:
        response = _call(client, world, route, headers)
        assert response.status_code == 401, (route, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "token" in response.json()["detail"]


def test_revoked_token_is_401(client, world, session_factory):
    assert _call(client, world, READS[0], world.headers("full")).status_code == 200
    revoke_token(session_factory=session_factory, name_or_prefix="full")
    response = _call(client, world, READS[0], world.headers("full"))
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked API token"


def test_scoped_token_gets_404_on_other_accounts_objects(client, world):
    for route in OF_ACCOUNT_B:
        response = _call(client, world, route, world.headers("scoped_a"))
        assert response.status_code == 404, (route, response.text)
        assert "does not exist" in response.json()["detail"]
    # nothing was changed or queued on account b
    anomaly = client.get(f"/api/v1/anomalies/{world.anomalies['open_b']}",
                         headers=world.headers("full")).json()
    assert anomaly["status"] == "open"


def test_scoped_token_reads_and_writes_its_own_account(client, world):
    for route in READS:
        assert _call(client, world, route, world.headers("scoped_a")).status_code == 200, route
    for route in WRITES:
        response = _call(client, world, route, world.headers("scoped_a"))
        assert response.status_code in (200, 202), (route, response.text)


def test_scoped_token_lists_leave_other_accounts_out(client, world):
    headers = world.headers("scoped_a")
    accounts = client.get("/api/v1/accounts", headers=headers).json()
    assert [a["id"] for a in accounts] == [world.account_a]
    anomalies = client.get("/api/v1/anomalies", headers=headers).json()
    assert anomalies["total"] == 3
    assert {a["account_id"] for a in anomalies["items"]} == {world.account_a}
    full = client.get("/api/v1/anomalies", headers=world.headers("full")).json()
    assert full["total"] == 4


def test_scoped_token_cannot_follow_another_accounts_task(client, world):
    queued = client.post(f"/api/v1/accounts/{world.account_b}/detection",
                         headers=world.headers("full")).json()
    response = client.get(f"/api/v1/tasks/{queued['task_id']}", headers=world.headers("scoped_a"))
    assert response.status_code == 404
    assert client.get(f"/api/v1/tasks/{queued['task_id']}",
                      headers=world.headers("full")).status_code == 200


def test_read_only_token_reads_but_cannot_change(client, world):
    headers = world.headers("read_only")
    for route in READS:
        assert _call(client, world, route, headers).status_code == 200, route
    for route in WRITES:
        response = _call(client, world, route, headers)
        assert response.status_code == 403, (route, response.text)
        assert "read-only" in response.json()["detail"]
    anomaly = client.get(f"/api/v1/anomalies/{world.anomalies['open_a']}", headers=headers).json()
    assert anomaly["status"] == "open" and anomaly["status_by"] is None
