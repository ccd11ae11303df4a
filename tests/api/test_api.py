"""The JSON API on SQLite and PostgreSQL: what each route answers, and bad input as 4xx."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from api_world import LAST_DAY, START
from sqlalchemy import select

from adsentinel.db.models import Anomaly


def _get(client, world, path, token="full", **params):
    return client.get(path, headers=world.headers(token), params=params)


def test_health_needs_no_token_and_checks_the_database(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "version": "0.1.0"}


def test_accounts_list_with_open_counts(client, world):
    accounts = _get(client, world, "/api/v1/accounts").json()
    assert [(a["platform_account_id"], a["open_anomalies"]) for a in accounts] == [
        ("act_a", 2), ("act_b", 1)]
    one = _get(client, world, f"/api/v1/accounts/{world.account_b}").json()
    assert one["name"] == "act_b" and one["open_anomalies"] == 1


def test_entities_flat_list_filters_by_level_and_status(client, world):
    path = f"/api/v1/accounts/{world.account_a}/entities"
    everything = _get(client, world, path).json()
    assert everything["total"] == 1 + 2 + 4  # 1 campaign, 2 ad sets, 4 ads
    assert [e["level"] for e in everything["items"]][:3] == ["campaign", "adset", "adset"]
    ads = _get(client, world, path, level="ad").json()
    assert ads["total"] == 4 and {e["level"] for e in ads["items"]} == {"ad"}
    assert _get(client, world, path, status="active").json()["total"] == 7  # case-insensitive
    assert _get(client, world, path, status="PAUSED").json()["total"] == 0
    second = _get(client, world, path, page=2, page_size=5).json()
    assert len(second["items"]) == 2 and second["page"] == 2


def test_entity_tree_nests_campaign_adset_ad_and_cuts_at_a_level(client, world):
    tree = _get(client, world, f"/api/v1/accounts/{world.account_a}/entity-tree").json()
    assert len(tree) == 1 and tree[0]["level"] == "campaign"
    adsets = tree[0]["children"]
    assert [a["level"] for a in adsets] == ["adset", "adset"]
    assert all(len(a["children"]) == 2 and a["children"][0]["level"] == "ad" for a in adsets)
    campaigns_only = _get(client, world, f"/api/v1/accounts/{world.account_a}/entity-tree",
                          level="campaign").json()
    assert campaigns_only[0]["children"] == []
    assert _get(client, world, f"/api/v1/accounts/{world.account_a}/entity-tree",
                status="PAUSED").json() == []


def test_entity_detail_has_its_path_and_children(client, world):
    adset = world.entities["a"]["adset"]
    detail = _get(client, world, f"/api/v1/entities/{adset}").json()
    assert [p["level"] for p in detail["path"]] == ["campaign", "adset"]
    assert detail["path"][-1]["id"] == adset
    assert [c["level"] for c in detail["children"]] == ["ad", "ad"]


def test_entity_metrics_have_expected_values_from_detection_and_the_anomalies(client, world):
    ad = world.entities["a"]["ad"]
    body = _get(client, world, f"/api/v1/entities/{ad}/metrics").json()
    assert body["end"] == LAST_DAY.isoformat()
    assert len(body["days"]) == 30  # the 60-day default range, clipped to the data
    first, last = body["days"][0], body["days"][-1]
    assert first["metrics"]["spend"]["expected"] is None  # no history before the first day
    spend = last["metrics"]["spend"]
    # the factory's ad spends the same every day: expected equals actual, inside the bounds
    assert spend["actual"] in {10.0, 11.0, 12.0, 13.0}
    assert spend["expected"] == pytest.approx(spend["actual"])
    assert spend["lower"] < spend["actual"] < spend["upper"]
    ctr = last["metrics"]["ctr"]
    assert ctr["actual"] == pytest.approx(0.1) and ctr["lower"] <= 0.1 <= ctr["upper"]
    assert [a["id"] for a in body["anomalies"]] == [world.anomalies["open_a"]]
    window = _get(client, world, f"/api/v1/entities/{ad}/metrics",
                  start=(START + timedelta(days=20)).isoformat(),
                  end=(START + timedelta(days=24)).isoformat()).json()
    assert [d["day"] for d in window["days"]] == [
        (START + timedelta(days=k)).isoformat() for k in range(20, 25)]
    assert window["anomalies"] == []


@pytest.mark.parametrize(("params", "status", "fragment"), [
    ({"start": "2026-13-01"}, 422, "month value is outside"),
    ({"start": "yesterday"}, 422, "valid date"),
    ({"start": "2026-09-20", "end": "2026-09-10"}, 400, "is after end"),
    ({"start": "2020-01-01", "end": "2026-09-10"}, 400, "at most 366"),
    ({"start": "0001-01-01"}, 400, "out of range"),
])
def test_entity_metrics_refuse_bad_ranges(client, world, params, status, fragment):
    response = _get(client, world, f"/api/v1/entities/{world.entities['a']['ad']}/metrics",
                    **params)
    assert response.status_code == status
    assert fragment in str(response.json()["detail"])


def test_anomalies_newest_first_and_filtered(client, world):
    ids = world.anomalies
    everything = _get(client, world, "/api/v1/anomalies").json()
    assert everything["total"] == 4
    days = [a["day"] for a in everything["items"]]
    assert days == sorted(days, reverse=True)

    def found(**params):
        return {a["id"] for a in _get(client, world, "/api/v1/anomalies", **params).json()["items"]}

    assert found(account_id=world.account_b) == {ids["open_b"]}
    assert found(level="adset") == {ids["high_a_old"]}
    assert found(entity_id=world.entities["a"]["ad"]) == {ids["open_a"]}
    assert found(metric="ctr") == {ids["high_a_old"]}
    assert found(severity="critical") == {ids["high_a_old"]}
    assert found(status="retracted") == {ids["retracted_a"]}
    assert found(start=LAST_DAY.isoformat()) == {ids["open_a"], ids["open_b"], ids["retracted_a"]}
    assert found(end=(LAST_DAY - timedelta(days=1)).isoformat()) == {ids["high_a_old"]}
    assert found(metric="cpl", status="open", account_id=world.account_a) == {ids["open_a"]}


def test_anomaly_paging_and_pages_out_of_range(client, world):
    first = _get(client, world, "/api/v1/anomalies", page_size=3).json()
    second = _get(client, world, "/api/v1/anomalies", page_size=3, page=2).json()
    assert (first["total"], len(first["items"]), len(second["items"])) == (4, 3, 1)
    assert not {a["id"] for a in first["items"]} & {a["id"] for a in second["items"]}
    past = _get(client, world, "/api/v1/anomalies", page_size=3, page=3)
    assert past.status_code == 404
    assert "page 3 is past the last page (2)" in past.json()["detail"]
    assert _get(client, world, "/api/v1/anomalies", page=0).status_code == 422
    assert _get(client, world, "/api/v1/anomalies", page_size=501).status_code == 422
    empty = _get(client, world, "/api/v1/anomalies", severity="low")
    assert empty.status_code == 200 and empty.json()["items"] == []


@pytest.mark.parametrize(("params", "fragment"), [
    ({"severity": "huge"}, "'low', 'medium', 'high' or 'critical'"),
    ({"status": "closed"}, "false_positive"),
    ({"start": "2026-02-30"}, "day value is outside"),
    ({"metric": "CPL; drop table"}, "pattern"),
    ({"account_id": "abc"}, "valid integer"),
])
def test_anomaly_filters_refuse_bad_values(client, world, params, fragment):
    response = _get(client, world, "/api/v1/anomalies", **params)
    assert response.status_code == 422
    assert fragment in str(response.json()["detail"])


def test_anomaly_filters_on_unknown_ids_are_404(client, world):
    assert _get(client, world, "/api/v1/anomalies", account_id=999999).status_code == 404
    assert _get(client, world, "/api/v1/anomalies", entity_id=2**40).status_code == 422
    headers = world.headers("full")
    assert client.get("/api/v1/accounts/2147483648", headers=headers).status_code == 422
    assert client.get("/api/v1/anomalies/2147483648", headers=headers).status_code == 404
    assert _get(client, world, "/api/v1/anomalies", start="2026-09-10",
                end="2026-09-01").status_code == 400


def test_patch_status_records_who_and_when(client, world, session_factory):
    anomaly_id = world.anomalies["open_a"]
    before = datetime.now(UTC)
    response = client.patch(f"/api/v1/anomalies/{anomaly_id}", headers=world.headers("full"),
                            json={"status": "acknowledged"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["status_by"]) == ("acknowledged", "full")
    assert datetime.fromisoformat(body["status_at"]) >= before - timedelta(seconds=1)
    client.patch(f"/api/v1/anomalies/{anomaly_id}", headers=world.headers("full"),
                 json={"status": "false_positive", "by": "maria@agency"})
    with session_factory() as session:
        stored = session.get(Anomaly, anomaly_id)
        assert (stored.status, stored.status_by) == ("false_positive", "maria@agency")
    open_now = _get(client, world, "/api/v1/anomalies", status="open").json()["items"]
    assert anomaly_id not in {a["id"] for a in open_now}


def test_patch_of_an_incident_covers_the_anomalies_attached_to_it(client, world,
                                                                  session_factory):
    head, child = world.anomalies["high_a_old"], world.anomalies["open_a"]
    with session_factory() as session:  # the ad's anomaly is part of the ad set's incident
        session.get(Anomaly, child).incident_id = head
        session.commit()
    response = client.patch(f"/api/v1/anomalies/{head}", headers=world.headers("full"),
                            json={"status": "false_positive"})
    assert response.status_code == 200, response.text
    with session_factory() as session:
        attached = session.get(Anomaly, child)
        assert (attached.status, attached.status_by) == ("false_positive", "full")


def test_patch_refuses_retracted_unknown_and_invalid(client, world):
    headers = world.headers("full")
    retracted = client.patch(f"/api/v1/anomalies/{world.anomalies['retracted_a']}",
                             headers=headers, json={"status": "acknowledged"})
    assert retracted.status_code == 409
    assert "retracted" in retracted.json()["detail"]
    assert client.patch("/api/v1/anomalies/999999", headers=headers,
                        json={"status": "resolved"}).status_code == 404
    invalid = client.patch(f"/api/v1/anomalies/{world.anomalies['open_a']}", headers=headers,
                           json={"status": "retracted"})
    assert invalid.status_code == 422
    assert "'open', 'acknowledged', 'resolved', 'false_positive' or 'expected'" in invalid.text
    assert client.patch(f"/api/v1/anomalies/{world.anomalies['open_a']}", headers=headers,
                        json={"status": "resolved", "colour": "red"}).status_code == 422
    assert client.patch(f"/api/v1/anomalies/{world.anomalies['open_a']}", headers=headers,
                        content=b"not json").status_code == 422


def _wait_for(client, world, task_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _get(client, world, f"/api/v1/tasks/{task_id}").json()
        if state["state"] in ("succeeded", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish in {timeout} s")


def test_training_status_before_and_after_an_enqueued_training(client, world):
    path = f"/api/v1/accounts/{world.account_a}/training"
    before = _get(client, world, path).json()
    assert before["last_run"] is None and before["models_total"] == 0
    queued = client.post(path, headers=world.headers("full"))
    assert queued.status_code == 202
    assert queued.json()["dispatcher"] == "in-process" and queued.json()["kind"] == "training"
    assert _wait_for(client, world, queued.json()["task_id"])["state"] == "succeeded"
    after = _get(client, world, path).json()
    assert after["last_run"]["status"] == "succeeded"
    # 30 days is fewer than the 50 a model needs: every entity skipped, and the reason says so
    assert after["models_total"] == 0
    assert after["skip_reasons"] == {"insufficient_data": 7}


def test_enqueued_detection_runs_and_reports(client, world):
    queued = client.post(f"/api/v1/accounts/{world.account_b}/detection",
                         headers=world.headers("full"))
    assert queued.status_code == 202
    done = _wait_for(client, world, queued.json()["task_id"])
    assert done["state"] == "succeeded" and done["result"]["account_id"] == world.account_b
    assert client.post("/api/v1/accounts/999999/detection",
                       headers=world.headers("full")).status_code == 404
    assert _get(client, world, "/api/v1/tasks/not-a-task").status_code == 404


def test_anomaly_with_a_nan_expected_value_serialises(client, world, session_factory):
    with session_factory() as session:
        stored = session.scalar(select(Anomaly).where(Anomaly.id == world.anomalies["open_b"]))
        stored.lower = float("nan")
        session.commit()
    body = _get(client, world, f"/api/v1/anomalies/{world.anomalies['open_b']}").json()
    assert body["lower"] is None
