"""What status and /metrics say about the Meta sync and the models: Graph API usage by budget,
model files refused, currency and timezone changes (SQLite and PostgreSQL), and the CLI's
`status` and `accounts list` through the console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pytest
from ops_world import NOW, build_ops_world
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import AccountSettingChange, DailyInsight, Entity, SyncRun
from adsentinel.detection.service import retrain_refused, run_detection
from adsentinel.model_store.store import PACK_SUFFIX, ModelStore
from adsentinel.service.status import account_statuses
from adsentinel.training.service import train_account_models
from factories import LAST_DAY, daily_insight_values, small_account

USAGE = {"ad_account": 17.5, "business_use_case_ads_insights": 41.0}
REFUSED = ("1 model file(s) refused by the last detection (damaged, tampered with or trained on "
           "other features): statistical detection only for them until their campaigns are "
           "retrained (queued; or run `adsentinel train`)")


def add_sync_figures(session_factory, world) -> None:
    """The healthy account's latest sync saw Meta's usage, one of its models was refused, and
    its currency changed from EUR to BRL on 1 June."""
    with session_scope(session_factory) as session:
        latest = session.scalars(select(SyncRun).where(SyncRun.account_id == world.healthy)
                                 .order_by(SyncRun.started_at.desc())).first()
        latest.counts = {**latest.counts, "api_usage_percent": USAGE}
        session.execute(update(Entity).where(Entity.id == world.entity)
                        .values(model_refused_at=NOW))
        session.add(AccountSettingChange(account_id=world.healthy, setting="currency",
                                         old_value="EUR", new_value="BRL",
                                         changed_on=date(2026, 6, 1), noticed_at=NOW))


def test_status_shows_usage_refused_models_and_setting_changes(session_factory):
    world = build_ops_world(session_factory)
    add_sync_figures(session_factory, world)
    statuses = {s.name: s for s in account_statuses(session_factory=session_factory, now=NOW)}
    azul, verde = statuses["Loja Azul"], statuses["Loja Verde"]
    assert azul.graph_api_usage_percent == USAGE
    assert azul.models_refused == 1 and azul.models_refused_at == NOW
    assert REFUSED in azul.attention
    assert [c.describe() for c in azul.setting_changes] == ["currency EUR -> BRL from 2026-06-01"]
    # the latest run counts, failed or not
    assert (verde.graph_api_usage_percent, verde.models_refused, verde.setting_changes) == \
        ({"ad_account": 2.5}, 0, [])
    assert REFUSED not in verde.attention
    shown = azul.as_dict()
    assert shown["graph_api_usage_percent"] == USAGE and shown["models_refused"] == 1
    assert shown["setting_changes"] == [{"setting": "currency", "from": "EUR", "to": "BRL",
                                         "changed_on": "2026-06-01"}]


def test_status_api_and_metrics_carry_the_same_figures(ops_api, session_factory):
    add_sync_figures(session_factory, ops_api.world)
    body = ops_api.get("/api/v1/status").json()
    azul = {item["name"]: item for item in body["items"]}["Loja Azul"]
    assert azul["graph_api_usage_percent"] == USAGE
    assert azul["models_refused"] == 1 and REFUSED in azul["attention"]
    assert azul["setting_changes"][0]["to"] == "BRL"

    answer = ops_api.get("/metrics")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(answer.text)
               for s in family.samples}
    assert samples[("adsentinel_model_files_refused", (("account", "Loja Azul"),))] == 1
    assert samples[("adsentinel_model_files_refused", (("account", "Loja Verde"),))] == 0
    for budget, percent in USAGE.items():
        key = ("adsentinel_graph_api_usage_percent",
               (("account", "Loja Azul"), ("budget", budget)))
        assert samples[key] == percent
    limited = ops_api.get("/metrics", token="azul").text
    assert "Loja Verde" not in limited and "adsentinel_graph_api_usage_percent" in limited


def test_a_sync_tasks_usage_is_a_worker_gauge():
    from prometheus_client import generate_latest

    from adsentinel.worker import worker_metrics

    worker_metrics.record_task(task="adsentinel.sync_account", state="SUCCESS", seconds=3.0,
                               account=7, result={"status": "succeeded",
                                                  "api_usage_percent": USAGE})
    text = generate_latest(worker_metrics.WORKER_REGISTRY).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    for budget, percent in USAGE.items():
        assert samples[("adsentinel_worker_graph_api_usage_percent",
                        (("account", "7"), ("budget", budget)))] == percent


def test_a_refused_model_is_marked_until_a_detection_reads_a_sound_one(tmp_path):
    """A truncated model pack: detection marks its entity, status says so; once its campaign is
    retrained, the next detection clears the mark."""
    settings = load_settings(data_dir=tmp_path / "data", models_storage_path=tmp_path / "models",
                             model_signing_key="test-signing-key-0123")
    factory = make_session_factory(open_database(settings))
    built = small_account(factory)
    train_account_models(session_factory=factory, settings=settings, account_id=built["account"])
    rng = np.random.default_rng(11)
    with session_scope(factory) as session:  # a new day, so that detection judges something
        session.execute(update(DailyInsight).where(DailyInsight.day > LAST_DAY)
                        .values(is_complete=True))
        session.execute(insert(DailyInsight), [
            daily_insight_values(rng, entity_id, LAST_DAY + timedelta(days=2), True)
            for entity_id in list(built["ids"].values())[:5]])
    store = ModelStore.from_settings(settings, cache=None)
    pack = next(store.account_dir(built["account"]).glob("*" + PACK_SUFFIX))
    pack.write_bytes(pack.read_bytes()[:-7])

    result = run_detection(session_factory=factory, settings=settings,
                           account_id=built["account"])
    assert result.refused_models >= 1
    status = account_statuses(session_factory=factory)[0]
    assert status.models_refused == result.refused_models
    assert any("refused by the last detection" in line for line in status.attention)

    retrain_refused(session_factory=factory, settings=settings, detection=result)
    again = run_detection(session_factory=factory, settings=settings,
                          account_id=built["account"])
    assert again.refused_models == 0
    status = account_statuses(session_factory=factory)[0]
    assert status.models_refused == 0 and status.models_refused_at is None
    assert not any("refused" in line for line in status.attention)


@pytest.mark.slow  # two CLI process starts, run side by side
def test_cli_status_and_accounts_list_show_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), COLUMNS="250")
    settings = load_settings(data_dir=tmp_path / "data")
    factory = make_session_factory(open_database(settings))
    add_sync_figures(factory, build_ops_world(factory))
    commands = {"status": ["status", "--format", "json"], "table": ["status"],
                "accounts": ["accounts", "list"]}
    running = {name: subprocess.Popen([sys.executable, "-m", "adsentinel", *args], env=env,
                                      cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for name, args in commands.items()}
    out = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, (name, stderr)
        out[name] = stdout
    azul = {a["name"]: a for a in json.loads(out["status"])}["Loja Azul"]
    assert azul["models_refused"] == 1 and azul["graph_api_usage_percent"] == USAGE
    assert "1 refused" in out["table"]
    assert "API 41% (business_use_case_ads_insights)" in out["table"]
    assert "compared from 2026-06-01" in out["table"]
    assert "(currency EUR -> BRL)" in out["table"]
    assert "currency EUR -> BRL from 2026-06-01" in out["accounts"]
    assert "(detection compares from the last change on)" in out["accounts"]
