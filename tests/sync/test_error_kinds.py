"""A failed sync stores a stable kind of failure from Meta's error code, and whoever shows the
error (status, the dashboard's banner, the "sync broken" alert) tells that kind in the reader's
language with Meta's own words kept as the detail, whatever Meta's wording."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from graph_emulator import EmulatedAccount, Fault
from sqlalchemy import select, update

from adsentinel.accounts.service import add_meta_account
from adsentinel.alerts.messages import render_text
from adsentinel.config import load_settings
from adsentinel.db.models import AdAccount, AlertChannel, AlertOutbox, SyncRun
from adsentinel.i18n import language
from adsentinel.service.status import account_statuses
from adsentinel.sync.error_kinds import (
    ERROR_KINDS,
    attention_sentence,
    error_sentence,
    meta_error_kind,
)
from adsentinel.sync.errors import (
    CredentialsError,
    MetaApiError,
    MetaAuthError,
    MetaJobsTooSlowError,
    MetaThrottledError,
    SyncPayloadError,
)
from adsentinel.sync.rate_limits import BackoffPolicy
from adsentinel.sync.service import failure_kind, sync_account

TOKEN = "EAAemulatorToken0000000000000000000003"
ENV = {"META_TOKEN": TOKEN}
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(("code", "subcode", "message", "kind"), [
    (190, 463, "Error validating access token: Session has expired", "token_expired"),
    (190, None, "Invalid OAuth access token", "token_expired"),
    (102, None, "Session key invalid", "token_expired"),
    (200, None, "Requires ads_read permission", "permission"),
    (10, None, "Application does not have permission", "permission"),
    (2635, None, "You are calling a deprecated version of the Ads API", "version_retired"),
    (100, None, "API calls from the server require an appsecret_proof argument",
     "appsecret_required"),
    (100, 33, "Unsupported get request", "request_refused"),
    (17, 2446079, "User request limit reached", "throttled"),
    (4, None, "Application request limit reached", "throttled"),
    (613, None, "Calls to this api have exceeded the rate limit", "throttled"),
    (80004, None, "There have been too many calls to this ad-account", "throttled"),
    (1, 99, "An unknown error occurred", "meta_unavailable"),
    (2, None, "Service temporarily unavailable", "meta_unavailable"),
    (None, None, "ConnectionError: refused", "meta_unavailable"),
])
def test_the_kind_comes_from_metas_code_not_its_wording(code, subcode, message, kind):
    assert meta_error_kind(code, subcode, message) == kind
    assert meta_error_kind(code, subcode, "Meta reworded this entirely") == (
        "request_refused" if kind == "appsecret_required" else kind)


def test_failures_without_a_meta_code_have_kinds_of_their_own():
    assert failure_kind(MetaAuthError("x", code=190, subcode=463)) == "token_expired"
    assert failure_kind(MetaThrottledError("x", code=80000)) == "throttled"
    assert failure_kind(MetaJobsTooSlowError("x")) == "report_jobs_slow"
    assert failure_kind(MetaApiError("x; gave up after 6 attempts")) == "meta_unavailable"
    assert failure_kind(SyncPayloadError("not a JSON object")) == "bad_response"
    assert failure_kind(CredentialsError("META_TOKEN is not set")) == "token_missing"
    assert failure_kind(RuntimeError("boom")) == "other"


def test_every_kind_reads_in_portuguese_with_metas_words_as_detail():
    pt, en = language("pt_BR"), language("en")
    for kind in ERROR_KINDS:
        told = error_sentence(pt, kind, "Meta's own words")
        assert told.endswith("(Meta's own words)") and told != error_sentence(en, kind, "x")
    assert error_sentence(pt, "token_expired", "Session has expired (code 190)") == (
        "o token de acesso da Meta expirou ou é inválido (Session has expired (code 190))")
    assert error_sentence(pt, None, "HTTP 500 from Meta") == "HTTP 500 from Meta"  # older run
    mark = "Meta access token expired or invalid (code 190): set META_TOKEN"
    assert attention_sentence(en, "token_expired", mark) == mark  # the particulars, in English
    assert attention_sentence(pt, "token_expired", mark).startswith(
        "o token de acesso da Meta expirou ou é inválido: crie um novo token")
    assert attention_sentence(pt, None, "a person's mark") == "a person's mark"


@pytest.fixture
def db_settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def pt_account(emulator, session_factory, db_settings):
    account = emulator.add_account(EmulatedAccount(number=778000, name="Clinica"), TOKEN)
    account_id = add_meta_account(session_factory=session_factory,
                                  platform_account_id=account.id, token_env="META_TOKEN",
                                  name="Clinica").id
    with session_factory() as session, session.begin():
        session.execute(update(AdAccount).where(AdAccount.id == account_id)
                        .values(locale="pt_BR"))
        session.add(AlertChannel(account_id=account_id, kind="webhook",
                                 target="http://127.0.0.1:9/hook"))
    settings = db_settings.model_copy(update={"meta_graph_url": emulator.url,
                                              "sync_window_days": 1,
                                              "sync_alert_after_failures": 1})
    return account, account_id, settings


def _sync(session_factory, settings, account_id, client_factory):
    return sync_account(session_factory=session_factory, settings=settings,
                        account_id=account_id, since=date(2026, 11, 25),
                        client_factory=client_factory, environ=ENV, now=NOW)


def test_an_expired_token_is_told_in_portuguese_everywhere(emulator, pt_account,
                                                           session_factory, client_factory):
    _, account_id, settings = pt_account
    emulator.expired_tokens.add(TOKEN)
    assert _sync(session_factory, settings, account_id, client_factory).status == (
        "needs_attention")
    with session_factory() as session:
        run = session.scalars(select(SyncRun)).one()
        account = session.get(AdAccount, account_id)
        assert (run.error_kind, account.needs_attention_kind) == ("token_expired",
                                                                  "token_expired")
        assert "Session has expired" in run.error  # Meta's words, stored as they were
        payload = session.scalars(select(AlertOutbox)).one().payload
    assert payload["error_kind"] == "token_expired"
    text = render_text(payload)
    assert ("Último erro: o token de acesso da Meta expirou ou é inválido (Meta refused "
            "reading") in text
    assert "Session has expired" in text and "(code 190, subcode 463)" in text
    assert "crie um novo token com ads_read nesta conta" in payload["what_to_do"]
    statuses = {s.name: s for s in account_statuses(session_factory=session_factory, now=NOW)}
    attention = statuses["Clinica"].attention
    assert attention[0].startswith("marcada: o token de acesso da Meta expirou ou é inválido: "
                                   "crie um novo token")
    assert attention[1].startswith("a última sincronização falhou: o token de acesso da Meta "
                                   "expirou ou é inválido (Meta refused reading")
    assert statuses["Clinica"].last_sync.as_dict()["error_kind"] == "token_expired"


def test_a_run_that_gave_up_on_meta_is_told_by_its_kind(emulator, pt_account, session_factory,
                                             client_factory):
    account, account_id, settings = pt_account
    client_factory.changes.update(backoff=BackoffPolicy(max_attempts=1))
    emulator.faults.append(Fault(path=account.id, kind="error", times=100))
    assert _sync(session_factory, settings, account_id, client_factory).status == "failed"
    with session_factory() as session:
        assert session.scalars(select(SyncRun.error_kind)).one() == "meta_unavailable"
    attention = {s.name: s for s in account_statuses(session_factory=session_factory,
                                                     now=NOW)}["Clinica"].attention
    assert attention[0].startswith("a última sincronização falhou: a Meta continuou falhando "
                                   "ou não pôde ser alcançada (")
