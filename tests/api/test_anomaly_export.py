"""The anomaly list's money, run, next step and Meta ids, its filters and sorts, and its CSV /
XLSX export with formula injection escaped (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from api_world import LAST_DAY
from openpyxl import load_workbook
from sqlalchemy import select

from adsentinel.api import anomaly_export
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, Anomaly, Entity

YESTERDAY = LAST_DAY - timedelta(days=1)


def _get(client, world, path="/api/v1/anomalies", token="full", **params):
    return client.get(path, headers=world.headers(token), params=params)


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["items"]]


@pytest.fixture
def richer(world, session_factory) -> dict[str, int]:
    """The world plus named entities, money at stake and good news: a spend typo on account
    a's campaign (R$ 900 at stake, medium), a tracking break on its ad (R$ 60, two days) and a
    CPC fall on account b (good news)."""
    a, b = world.entities["a"], world.entities["b"]
    with session_scope(session_factory) as session:
        ad_set = session.get(Entity, a["ad"]).parent_id  # the ad's own ad set
        names = {a["campaign"]: "=HYPERLINK(\"http://x\")", ad_set: "Leads SP",
                 a["ad"]: "Video 1", b["ad"]: "@Carrossel"}
        for entity_id, name in names.items():
            session.get(Entity, entity_id).name = name
        rows = {
            "typo": Anomaly(account_id=world.account_a, entity_id=a["campaign"], day=YESTERDAY,
                            metric="spend", detectors="robust_z+iqr", actual=1200.0,
                            expected=300.0, lower=200.0, upper=400.0, direction="up",
                            score=70.0, severity="medium", message="-Spend R$ 1,200 vs 300",
                            drivers={"spend": 1200.0}, impact_amount=900.0, started=YESTERDAY,
                            duration_days=1),
            "cheaper": Anomaly(account_id=world.account_b, entity_id=b["ad"], day=LAST_DAY,
                               metric="cpc", detectors="nb_rate", actual=0.5, expected=1.0,
                               lower=0.8, upper=1.2, direction="down", score=55.0,
                               severity="low", message="CPC 0.50 vs 1.00 expected",
                               drivers={"clicks": 10.0}),
        }
        session.add_all(rows.values())
        tracking = session.get(Anomaly, world.anomalies["open_a"])
        tracking.impact_amount, tracking.started, tracking.duration_days = (
            60.0, LAST_DAY - timedelta(days=1), 2)
        tracking.drivers = {"leads": 0.0, "spend": 60.0}
        session.flush()
        return {name: row.id for name, row in rows.items()}


def _entity(session_factory, entity_id: int) -> Entity:
    with session_scope(session_factory) as session:
        entity = session.get(Entity, entity_id)
        session.expunge(entity)
        return entity


def _path_ids(session_factory, entity_id: int) -> list[str]:
    """Meta ids from the campaign down to the entity."""
    ids = []
    with session_scope(session_factory) as session:
        entity = session.get(Entity, entity_id)
        while entity is not None:
            ids.insert(0, entity.platform_id)
            entity = session.get(Entity, entity.parent_id) if entity.parent_id else None
    return ids


def test_anomaly_fields_carry_money_run_next_step_and_meta_ids(client, world, richer,
                                                               session_factory):
    detail = _get(client, world, f"/api/v1/anomalies/{world.anomalies['open_a']}").json()
    assert detail["impact_amount"] == 60.0 and detail["currency"] == "USD"
    assert detail["started"] == (LAST_DAY - timedelta(days=1)).isoformat()
    assert detail["duration_days"] == 2
    assert detail["kind"] == "tracking_break"  # CPL up with 0 leads on R$ 60
    assert "pixel" in detail["next_step"] and "this ad since" in detail["next_step"]
    assert detail["level"] == "ad"
    campaign, adset, ad = _path_ids(session_factory, world.entities["a"]["ad"])
    assert detail["meta_ids"] == {"account": "act_a", "campaign": campaign, "adset": adset,
                                  "ad": ad}
    assert detail["names"]["adset"] == "Leads SP" and detail["names"]["account"] == "act_a"
    typo = _get(client, world, f"/api/v1/anomalies/{richer['typo']}").json()
    assert typo["kind"] == "spend_spike" and "budget edits" in typo["next_step"]
    assert typo["meta_ids"] == {"account": "act_a", "campaign": campaign, "adset": None,
                                "ad": None}
    # anomalies stored before money was stored: computed from their own numbers
    old = _get(client, world, f"/api/v1/anomalies/{world.anomalies['high_a_old']}").json()
    assert old["impact_amount"] is None  # a CTR fall whose spend is not among its numbers
    assert old["started"] == old["day"] and old["duration_days"] == 1
    cheaper = _get(client, world, f"/api/v1/anomalies/{richer['cheaper']}").json()
    assert (cheaper["kind"], cheaper["impact_amount"]) == ("good_news", 0.0)


def test_open_list_is_money_first_and_good_news_left_out(client, world, richer):
    open_ids = _ids(_get(client, world, status="open"))
    # money first (900, 60, then the unknown-money ones by severity), no good news
    assert open_ids[:2] == [richer["typo"], world.anomalies["open_a"]]
    assert richer["cheaper"] not in open_ids
    assert richer["cheaper"] in _ids(_get(client, world, status="open", good_news="true"))
    # nor counted among an account's open anomalies
    accounts = {a["id"]: a["open_anomalies"] for a in _get(
        client, world, "/api/v1/accounts").json()}
    assert accounts[world.account_b] == 1  # open_b only, not the cheaper CPC
    by_severity = _ids(_get(client, world, status="open", sort="severity"))
    assert by_severity[0] == world.anomalies["high_a_old"]  # the critical one
    newest = _get(client, world, sort="day").json()["items"]
    assert [a["day"] for a in newest] == sorted((a["day"] for a in newest), reverse=True)
    assert _get(client, world, sort="money").status_code == 422


def test_filters_search_by_name_or_meta_id_and_min_severity(client, world, richer,
                                                            session_factory):
    a = world.anomalies
    named = {a["open_a"]}  # the ad set's child, and the ad set's own when it has one
    ad_set = _entity(session_factory, world.entities["a"]["ad"]).parent_id
    if world.entities["a"]["adset"] == ad_set:
        named.add(a["high_a_old"])
    assert set(_ids(_get(client, world, q="leads sp"))) == named
    campaign_id = _path_ids(session_factory, world.entities["a"]["campaign"])[0]
    assert set(_ids(_get(client, world, q=campaign_id, account_id=world.account_a,
                         status="open"))) == {  # the campaign and everything below it
        a["open_a"], a["high_a_old"], richer["typo"]}
    assert set(_ids(_get(client, world, q="act_b"))) == {a["open_b"]}
    assert set(_ids(_get(client, world, q="b"))) == {a["open_b"]}  # part of act_b's name
    assert _ids(_get(client, world, q="100%_")) == []  # wildcards are plain characters
    assert set(_ids(_get(client, world, min_severity="high"))) == {
        a["open_a"], a["open_b"], a["high_a_old"]}
    assert _ids(_get(client, world, level="campaign", status="open")) == [richer["typo"]]
    assert _ids(_get(client, world, token="scoped_a", q="act_b")) == []  # scope still applies


def _csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_export_is_the_whole_filtered_list_with_formulas_escaped(client, world, richer,
                                                                    session_factory):
    listed = _ids(_get(client, world, status="open", page_size=1))
    rows = _csv_rows(_get(client, world, status="open", page_size=1, format="csv"))
    assert len(listed) == 1 and len(rows) == 4  # every page, not the first only
    assert [int(r["id"]) for r in rows] == _ids(_get(client, world, status="open"))
    typo = rows[0]
    assert typo["campaign"] == "'=HYPERLINK(\"http://x\")"  # shown as text, never run
    assert typo["message"] == "'-Spend R$ 1,200 vs 300"
    assert typo["impact_amount"] == "900.0" and typo["currency"] == "USD"
    campaign_meta_id = _path_ids(session_factory, world.entities["a"]["campaign"])[0]
    assert typo["campaign_meta_id"] == campaign_meta_id
    assert typo["account_meta_id"] == "act_a"
    assert typo["next_step"].startswith("Check the budget edits")
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[world.anomalies["open_b"]]["ad"] == "'@Carrossel"
    only_b = _csv_rows(_get(client, world, account_id=world.account_b, format="csv"))
    assert [int(r["id"]) for r in only_b] == [world.anomalies["open_b"]]


def test_xlsx_export_matches_the_list(client, world, richer):
    response = _get(client, world, status="open", format="xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"] == anomaly_export.MEDIA_TYPES["xlsx"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert tuple(header) == anomaly_export.COLUMNS
    assert [r[0] for r in rows] == _ids(_get(client, world, status="open"))
    first = dict(zip(header, rows[0], strict=True))
    assert first["campaign"] == "'=HYPERLINK(\"http://x\")"
    assert first["impact_amount"] == 900.0  # a number, not text
    assert first["day"].date() == YESTERDAY


def test_export_refuses_bad_filters_and_too_many_rows(client, world, richer, monkeypatch):
    bad = _get(client, world, format="csv", start="2026-09-10", end="2026-09-01")
    assert bad.status_code == 400 and "after" in bad.json()["detail"]
    assert _get(client, world, format="pdf").status_code == 422
    assert _get(client, world, format="csv", account_id=999_999).status_code == 404
    monkeypatch.setattr(anomaly_export, "XLSX_MAX_ROWS", 2)
    refused = _get(client, world, format="xlsx")
    assert refused.status_code == 400 and "format=csv" in refused.json()["detail"]


def test_the_inert_rule_of_owasp():
    for risky in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert anomaly_export.inert(risky) == "'" + risky
    assert anomaly_export.inert("Video 1") == "Video 1"
    assert anomaly_export.inert(-5.0) == -5.0  # numbers stay numbers
    assert anomaly_export.inert(None) is None


def test_export_reads_in_chunks(client, world, richer, monkeypatch, session_factory):
    monkeypatch.setattr(anomaly_export, "CHUNK", 2)
    rows = _csv_rows(_get(client, world, good_news="true", format="csv", sort="score"))
    with session_scope(session_factory) as session:
        expected = session.scalars(select(Anomaly.id).where(Anomaly.status != "x")
                                   .order_by(Anomaly.score.desc(), Anomaly.day.desc(),
                                             Anomaly.id.desc())).all()
        assert session.scalar(select(AdAccount.currency).limit(1)) == "USD"
    assert [int(r["id"]) for r in rows] == list(expected)
