"""API tokens: only the hash is stored, the secret is shown once, scope and revocation hold;
`adsentinel tokens create|list|revoke` as a user runs them; the session key file."""

from __future__ import annotations

import stat
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from adsentinel.api.auth import session_secret
from adsentinel.cli import app, main
from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.db.models import AdAccount, ApiToken
from adsentinel.errors import AdsentinelError, ConfigError, NotFoundError
from adsentinel.ingest.csv_import import import_insights_csv
from adsentinel.service.tokens import (
    LAST_USED_RESOLUTION,
    authenticate_token,
    create_token,
    hash_token,
    list_tokens,
    revoke_token,
)
from factories import insight_rows, write_csv


def test_token_is_stored_only_as_its_hash(session_factory):
    created = create_token(session_factory=session_factory, name="grafana")
    assert created.secret.startswith("ads_") and len(created.secret) == 4 + 43
    with session_factory() as session:
        row = session.scalar(select(ApiToken))
    assert row.token_hash == hash_token(created.secret) != created.secret
    assert created.secret not in (row.prefix, row.token_hash, row.name)
    assert created.secret.startswith(row.prefix) and len(row.prefix) == 12
    found = authenticate_token(session_factory=session_factory, secret=created.secret)
    assert found.name == "grafana"
    assert authenticate_token(session_factory=session_factory, secret=created.secret + "x") is None
    assert authenticate_token(session_factory=session_factory, secret="nope") is None


def test_two_tokens_never_share_a_secret(session_factory):
    first = create_token(session_factory=session_factory, name="one").secret
    second = create_token(session_factory=session_factory, name="two").secret
    assert first != second


def test_names_are_unique_and_required(session_factory):
    create_token(session_factory=session_factory, name="ci")
    with pytest.raises(AdsentinelError, match="already exists"):
        create_token(session_factory=session_factory, name="ci")
    with pytest.raises(AdsentinelError, match="needs a name"):
        create_token(session_factory=session_factory, name="  ")
    assert [t.name for t in list_tokens(session_factory=session_factory)] == ["ci"]


def test_accounts_resolve_by_name_and_unknown_ones_write_nothing(session_factory, engine,
                                                                 tmp_path):
    import_insights_csv(write_csv(tmp_path / "a.csv", insight_rows(days=2, ads=1, account="act_9")),
                        engine=engine)
    scoped = create_token(session_factory=session_factory, name="agency", accounts=["act_9"])
    assert scoped.info.account_ids == (1,)
    with pytest.raises(NotFoundError, match="act_404"):
        create_token(session_factory=session_factory, name="bad", accounts=["act_9", "act_404"])
    assert [t.name for t in list_tokens(session_factory=session_factory)] == ["agency"]


def test_an_account_reference_that_is_an_id_and_another_accounts_name_is_refused(
        session_factory):
    """Account 2 and an account *named* "2": which one a token sees must not be a guess."""
    with session_factory() as session:
        session.add_all([AdAccount(id=1, name="Acme", platform_account_id="act_1"),
                         AdAccount(id=2, name="Shoes", platform_account_id="act_2"),
                         AdAccount(id=3, name="2", platform_account_id="act_3")])
        session.commit()
    with pytest.raises(AdsentinelError, match=r"--accounts '2' is ambiguous: it matches id 2 "
                                              r"\(name 'Shoes'.*id 3 \(name '2'"):
        create_token(session_factory=session_factory, name="agency", accounts=["Acme", "2"])
    assert list_tokens(session_factory=session_factory) == []
    assert create_token(session_factory=session_factory, name="shoes",
                        accounts=["Shoes"]).info.account_ids == (2,)
    assert create_token(session_factory=session_factory, name="named-2",
                        accounts=["act_3", "1"]).info.account_ids == (1, 3)


def test_the_data_folder_and_database_file_are_private(tmp_path):
    settings = load_settings(data_dir=tmp_path / "fresh" / "data")
    open_database(settings).dispose()
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    database = settings.data_dir / "adsentinel.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    session_secret(settings)
    assert stat.S_IMODE((settings.data_dir / ".session-key").stat().st_mode) == 0o600


def test_a_session_key_others_may_read_is_refused(settings):
    path = settings.data_dir / ".session-key"
    session_secret(settings)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"may be read by group or others \(mode 0644\)"):
        session_secret(settings)


def test_last_use_is_recorded_at_most_once_a_minute(session_factory):
    created = create_token(session_factory=session_factory, name="poller")
    first = authenticate_token(session_factory=session_factory, secret=created.secret)
    assert first.last_used_at is None  # the info is read before this use is recorded
    used = list_tokens(session_factory=session_factory)[0].last_used_at
    assert used is not None
    authenticate_token(session_factory=session_factory, secret=created.secret)
    assert list_tokens(session_factory=session_factory)[0].last_used_at == used
    authenticate_token(session_factory=session_factory, secret=created.secret,
                       now=used + LAST_USED_RESOLUTION + timedelta(seconds=1))
    assert list_tokens(session_factory=session_factory)[0].last_used_at > used


def test_revoke_by_name_or_prefix(session_factory):
    one = create_token(session_factory=session_factory, name="one")
    two = create_token(session_factory=session_factory, name="two")
    revoke_token(session_factory=session_factory, name_or_prefix="one")
    revoke_token(session_factory=session_factory, name_or_prefix=two.info.prefix)
    assert authenticate_token(session_factory=session_factory, secret=one.secret) is None
    assert authenticate_token(session_factory=session_factory, secret=two.secret) is None
    assert list_tokens(session_factory=session_factory) == []
    assert len(list_tokens(session_factory=session_factory, include_revoked=True)) == 2
    with pytest.raises(NotFoundError, match="tokens list"):
        revoke_token(session_factory=session_factory, name_or_prefix="three")


def test_cli_create_list_revoke(tmp_path, monkeypatch):
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    created = runner.invoke(app, ["tokens", "create", "--name", "maria", "--read-only"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("ads_")
    listed = runner.invoke(app, ["tokens", "list", "--json"])
    assert listed.exit_code == 0
    assert secret not in listed.stdout and '"read_only": true' in listed.stdout
    assert '"name": "maria"' in listed.stdout and secret[:12] in listed.stdout
    table = runner.invoke(app, ["tokens", "list"])
    assert "maria" in table.stdout and "read-only" in table.stdout and secret not in table.stdout
    assert runner.invoke(app, ["tokens", "revoke", "maria"]).exit_code == 0
    factory = make_session_factory(open_database(load_settings()))
    assert authenticate_token(session_factory=factory, secret=secret) is None


def _main(*args: str, capsys) -> tuple[int, str]:
    """Run the console entry point in this process (as `adsentinel ARGS`); exit code, stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["adsentinel", *args])
        with pytest.raises(SystemExit) as ended:
            main()
    code = ended.value.code
    return code if isinstance(code, int) else 0, capsys.readouterr().err


def test_cli_errors_are_one_line_with_an_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(tmp_path / "data"))
    code, err = _main("tokens", "create", "--name", "x", "--accounts", "act_404", capsys=capsys)
    assert code == 66 and "act_404" in err and "Traceback" not in err
    runner = CliRunner()
    assert runner.invoke(app, ["tokens", "create", "--name", "x"]).exit_code == 0
    code, err = _main("tokens", "create", "--name", "x", capsys=capsys)
    assert code == 1 and "already exists" in err
    code, err = _main("tokens", "revoke", "nobody", capsys=capsys)
    assert code == 66 and "tokens list" in err


def test_session_key_is_created_once_private_and_kept(settings):
    key = session_secret(settings)
    path = settings.data_dir / ".session-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert session_secret(settings) == key and len(key) == 64
    configured = load_settings(data_dir=settings.data_dir, session_secret="x" * 40)
    assert session_secret(configured) == "x" * 40
    with pytest.raises(ConfigError, match="too short"):
        session_secret(load_settings(data_dir=settings.data_dir, session_secret="short"))
    path.write_text("garbage")
    with pytest.raises(ConfigError, match="malformed"):
        session_secret(settings)
