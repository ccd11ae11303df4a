"""`adsentinel status`, `GET /api/v1/status` and `GET /health/ready` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from ops_world import NOW, build_ops_world, free_port

from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.service.status import account_statuses
from factories import LAST_DAY


def test_status_reads_runs_freshness_anomalies_and_alerts(session_factory):
    world = build_ops_world(session_factory)
    statuses = {s.name: s for s in account_statuses(session_factory=session_factory, now=NOW)}

    azul, verde = statuses["Loja Azul"], statuses["Loja Verde"]
    assert azul.last_complete_day == LAST_DAY
    assert azul.last_partial_update is not None  # the incomplete day after LAST_DAY
    assert azul.last_sync.counts == {"insight_rows": 500}  # the latest of two runs
    assert azul.last_sync.duration_seconds == pytest.approx(120.0)
    assert azul.models == {"trained": 4, "skipped": 2, "failed": 1}
    assert azul.last_training.duration_seconds == 42.0
    assert (NOW - azul.last_detection_at).total_seconds() == pytest.approx(300, abs=1)
    assert azul.open_anomalies == {"high": 2, "critical": 1}
    assert azul.alerts == {"pending": 1, "retrying": 1, "sent": 1, "failed": 1}
    assert azul.attention == ["1 alert(s) failed for good: see `adsentinel alerts outbox`",
                              "1 critical anomaly(ies) open"]

    assert verde.account_id == world.broken
    assert verde.last_sync.status == "failed"
    assert verde.last_successful_sync.counts == {"insight_rows": 7}
    assert verde.attention == [
        "marked: token expired (190)",
        "the last sync failed: Meta refused the token (code 190)",
        "no successful sync for 5 h",
        "never trained: run `adsentinel train` (statistical detection only until then)",
        "never detected: run `adsentinel detect`",
    ]


def test_api_status_is_scoped_by_token(ops_api):
    everything = ops_api.get("/api/v1/status")
    assert everything.status_code == 200
    body = everything.json()
    assert [a["name"] for a in body["items"]] == ["Loja Azul", "Loja Verde"]
    assert body["needs_attention"] == ["Loja Azul", "Loja Verde"]
    azul = body["items"][0]
    assert azul["last_complete_day"] == LAST_DAY.isoformat()
    assert azul["models"] == {"trained": 4, "skipped": 2, "failed": 1}
    assert azul["last_sync"]["status"] == "succeeded"

    limited = ops_api.get("/api/v1/status", token="azul").json()
    assert [a["name"] for a in limited["items"]] == ["Loja Azul"]
    assert ops_api.get("/api/v1/status", token=None).status_code == 401


def test_ready_checks_database_and_model_store_without_a_broker_on_sqlite(settings):
    from fastapi.testclient import TestClient

    from adsentinel.api import create_app

    with TestClient(create_app(settings)) as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"] == {"database": "ok", "broker": "not used",
                                       "model_store": "ok"}


@pytest.mark.postgres
def test_ready_is_503_naming_the_broker_when_it_does_not_answer(fresh_postgres_url, tmp_path):
    from fastapi.testclient import TestClient

    from adsentinel.api import create_app
    from adsentinel.config import load_settings

    settings = load_settings(data_dir=tmp_path / "data", database_url=fresh_postgres_url,
                             broker_url=f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings, jobs="in-process")) as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"] == "ok" and checks["model_store"] == "ok"
    assert checks["broker"].startswith("the broker at redis://:***@127.0.0.1:")
    assert "hunter2secret" not in answer.text


def test_ready_reports_a_model_store_that_cannot_be_used(tmp_path):
    from fastapi.testclient import TestClient

    from adsentinel.api import create_app
    from adsentinel.config import load_settings

    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the store should be")
    settings = load_settings(data_dir=tmp_path / "data", models_storage_path=not_a_folder,
                             model_signing_key="k" * 32)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert str(not_a_folder) in answer.json()["checks"]["model_store"]


@pytest.mark.slow  # two CLI process starts
def test_cli_status_through_the_console_entry_point(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), COLUMNS="200")
    from adsentinel.config import load_settings

    settings = load_settings(data_dir=tmp_path / "data")
    build_ops_world(make_session_factory(open_database(settings)))
    command = [sys.executable, "-m", "adsentinel", "status"]

    table = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "Loja Azul" in table.stdout and "Loja Verde" in table.stdout
    assert "2 high" in table.stdout and "token expired" in table.stdout

    checked = subprocess.run([*command, "--check", "--format", "json"], env=env,
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert checked.returncode == 1, checked.stderr
    accounts = json.loads(checked.stdout)
    assert [a["name"] for a in accounts] == ["Loja Azul", "Loja Verde"]
    assert datetime.fromisoformat(accounts[0]["last_detection_at"]) <= datetime.now(NOW.tzinfo)
