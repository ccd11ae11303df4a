"""What `adsentinel status` lists under "needs attention", in the account's language (its own,
else the LOCALE setting's); English accounts read what they read before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ops_world import NOW, build_ops_world
from sqlalchemy import update

from adsentinel.db.models import AdAccount
from adsentinel.service.status import account_statuses


def set_locale(session_factory, account_id, locale):
    with session_factory() as session:
        session.execute(update(AdAccount).where(AdAccount.id == account_id).values(locale=locale))
        session.commit()


def test_attention_in_the_accounts_language(session_factory):
    world = build_ops_world(session_factory)
    set_locale(session_factory, world.broken, "pt_BR")
    statuses = {s.name: s for s in account_statuses(session_factory=session_factory, now=NOW)}
    assert statuses["Loja Verde"].attention == [
        "marcada: token expired (190)",
        "a última sincronização falhou: Meta refused the token (code 190)",
        "nenhuma sincronização bem-sucedida há 5 h",
        "nunca treinada: execute `adsentinel train` (só detecção estatística até lá)",
        "detecção nunca executada: execute `adsentinel detect`",
    ]
    assert statuses["Loja Azul"].attention == [
        "1 alert(s) failed for good: see `adsentinel alerts outbox`",
        "1 critical anomaly(ies) open"]
    by_setting = {s.name: s for s in account_statuses(session_factory=session_factory, now=NOW,
                                                      default_locale="pt_BR")}
    assert by_setting["Loja Azul"].attention == [
        "1 alerta(s) falharam de vez: veja `adsentinel alerts outbox`",
        "1 anomalia(s) crítica(s) aberta(s)"]


def test_the_status_command_follows_the_locale_setting(tmp_path):
    from adsentinel.config import load_settings
    from adsentinel.db.engine import make_session_factory, open_database

    settings = load_settings(data_dir=tmp_path / "data")
    build_ops_world(make_session_factory(open_database(settings)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSENTINEL_")}
    env.update(ADSENTINEL_DATA_DIR=str(tmp_path / "data"), ADSENTINEL_LOCALE="pt_BR",
               COLUMNS="250")
    console_script = Path(sys.executable).parent / "adsentinel"
    result = subprocess.run([str(console_script), "status", "--check", "--format", "json"],
                            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # accounts need attention
    verde = next(a for a in json.loads(result.stdout) if a["name"] == "Loja Verde")
    assert "nunca treinada: execute `adsentinel train` (só detecção estatística até lá)" in (
        verde["attention"])
    assert "never trained" not in result.stdout


def test_the_status_api_speaks_the_requests_language_else_the_locale_setting(
        db_settings, session_factory):
    from fastapi.testclient import TestClient

    from adsentinel.api import create_app
    from adsentinel.service.tokens import create_token

    build_ops_world(session_factory)
    secret = create_token(session_factory=session_factory, name="admin").secret
    app = create_app(db_settings.model_copy(update={"locale": "pt_BR"}),
                     session_factory=session_factory, jobs="in-process")

    def attention(**headers):
        body = client.get("/api/v1/status",
                          headers={"Authorization": f"Bearer {secret}", **headers}).json()
        return {item["name"]: item["attention"] for item in body["items"]}

    with TestClient(app) as client:
        unsaid = attention()  # no Accept-Language: the LOCALE setting
        assert unsaid["Loja Azul"] == ["1 alerta(s) falharam de vez: veja `adsentinel alerts "
                                       "outbox`", "1 anomalia(s) crítica(s) aberta(s)"]
        english = attention(**{"Accept-Language": "en-US,en;q=0.8"})
        assert english["Loja Azul"] == ["1 alert(s) failed for good: see `adsentinel alerts "
                                        "outbox`", "1 critical anomaly(ies) open"]
        unsupported = attention(**{"Accept-Language": "de-DE"})  # no catalog: the setting
        assert unsupported == unsaid
