"""Secrets never show: the Meta access token, API tokens, the model signing key, the session key,
the SMTP password, the webhook signing key and the PostgreSQL password appear in no log line, no
command output, no error and nowhere in the database, in plain text or URL-encoded.

One run sets a distinctive value for each, then does what a user and the servers do with them:
the CLI (accounts add, sync with Meta answering OK, an expired token (code 190) and HTTP 500, both
through ``responses`` and through a real local HTTP server so that urllib3 logs its request
lines, tokens create/list/revoke, config show, db upgrade/current, alert channels add/list/test
against a local webhook receiver and SMTP server, commands that fail), and the API and dashboard
served by a real uvicorn (good, wrong and revoked tokens, a token pasted into a query string or a
path by mistake, a dashboard login with a wrong token). Every log record of every logger at DEBUG
(uvicorn, httpx, urllib3, requests, facebook_business included), every output, every exception
and every column of every table, plus every file of the data folder, are then searched.

The only place a secret may appear is the one line of ``tokens create`` that hands the new token
over.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import itsdangerous
import pytest
import responses
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from adsentinel.cli import app as cli_app
from adsentinel.config import load_settings
from factories import insight_rows, write_csv

sys.path.insert(0, str(Path(__file__).parent / "sync"))
from graph_api import ACCOUNT, RecordedGraph, payload, serve_insights, serve_structure

META_TOKEN = "EAAKcanaryMetaZBtok3nZD9xQ7wR2tY5uI8oP1aS4dF6gH0jK"
SECRETS = {
    "meta access token": META_TOKEN,
    "model signing key": "signing-canary-4f1d9b7e2a6c8d0e3b5a7f9c",
    "session secret": "session-canary-8e2b4d6f0a1c3e5b7d9f2a4c",
    "smtp password": "smtp-canary-P@ss w0rd/+&=?",
    "webhook signing key": "webhook-canary-5c7e9a1b3d5f7a9c",
    "webhook URL": "hook-url-canary-3e6a9c1f7b2d4e8a",  # the secret part of the URL's path
}
PG_PASSWORD = "pg-canary-Z7x#Y6w/q"
BROKER_PASSWORD = "broker-canary-R4d1s"
#: what a rich table puts inside a folded value: line breaks, padding and cell borders
_FOLDING = re.compile(r"[\s│┃║|]+")
#: loggers turned to DEBUG besides the root (some libraries set their own level)
LOUD_LOGGERS = ("adsentinel", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore",
                "urllib3", "urllib3.connectionpool", "requests", "facebook_business",
                "starlette", "fastapi", "smtplib")
#: loggers of this test's own receivers (what a hostile receiver logs is not adsentinel's)
RECEIVER_LOGGERS = ("mail.log",)


class Capture(logging.Handler):
    """Every record, formatted with its exception and stack, whatever logger it came from;
    ``muted`` loggers (the test's own HTTP client while it calls the API) are left out."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[tuple[str, str]] = []
        self.muted: tuple[str, ...] = ()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(RECEIVER_LOGGERS + self.muted):
            self.records.append((record.name, self.format(record)))


@dataclass
class Corpus:
    """Everything a secret must not be found in, by where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str | None) -> None:
        if text:
            self.texts.append((where, text))

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        """Where each secret (plain or URL-encoded) occurs, also across the line breaks and
        borders of a folded table."""
        found = []
        for name, secret in secrets.items():
            forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
            for where, text in self.texts:
                squeezed = _squeeze(text)
                for form in forms:
                    if form in text:
                        at = text.index(form)
                        found.append(f"{name} in {where}: ...{text[max(0, at - 80):at + 20]!r}")
                        break
                    if _squeeze(form) in squeezed:
                        found.append(f"{name} in {where} (folded over lines)")
                        break
        return found


def _squeeze(text: str) -> str:
    return _FOLDING.sub("", text)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:
    """None for the embedded SQLite; for PostgreSQL a URL carrying a password (the local
    server trusts 127.0.0.1, so the password is sent nowhere, but every URL printed has it)."""
    if request.param == "sqlite":
        return None
    url = make_url(request.getfixturevalue("fresh_postgres_url"))
    return url.set(password=PG_PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def capture():
    handler = Capture()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *LOUD_LOGGERS)}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.captureWarnings(True)
    yield handler
    logging.captureWarnings(False)
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Receiver(ThreadingHTTPServer):
    """A local HTTP server answering every request with ``self.answer`` (status, JSON body)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.answer: tuple[int, dict] = (200, {})
        self.seen: list[str] = []
        self.signed: list[tuple[bytes, str]] = []  # (body, X-Adsentinel-Signature)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.seen.append(self.path)
                if self.headers.get("X-Adsentinel-Signature"):
                    receiver.signed.append((body, self.headers["X-Adsentinel-Signature"]))
                status, body = receiver.answer
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _reply  # http.server's naming

            def log_message(self, *args):  # the receiver is not what is being tested
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    server = _Receiver()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class _Smtp:
    """An SMTP server that wants a login; ``reject`` refuses it, ``passwords`` holds what came."""

    reject: bool = True
    passwords: list[bytes] = field(default_factory=list)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.passwords.append(auth_data.password)
        return AuthResult(success=not self.reject)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's naming
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    state = _Smtp()
    controller = Controller(state, hostname="127.0.0.1", port=_free_port(),
                            authenticator=state.authenticate, auth_require_tls=False)
    controller.start()
    yield state, controller.port
    controller.stop()


@pytest.fixture
def environment(monkeypatch, tmp_path, database_url, smtp):
    """Every secret where a deployment puts it: ADSENTINEL_* settings and the variables that
    credentials_ref and secret_ref name."""
    _, smtp_port = smtp
    values = {
        "ADSENTINEL_DATA_DIR": str(tmp_path / "data"),
        "ADSENTINEL_LOG_LEVEL": "DEBUG",
        "ADSENTINEL_MODEL_SIGNING_KEY": SECRETS["model signing key"],
        "ADSENTINEL_SESSION_SECRET": SECRETS["session secret"],
        "ADSENTINEL_SMTP_HOST": "127.0.0.1",
        "ADSENTINEL_SMTP_PORT": str(smtp_port),
        "ADSENTINEL_SMTP_USERNAME": "alerts",
        "ADSENTINEL_SMTP_PASSWORD": SECRETS["smtp password"],
        "ADSENTINEL_SMTP_ALLOW_PLAINTEXT_LOGIN": "true",  # the test's server speaks no TLS
        "META_TOKEN": META_TOKEN,
        "WEBHOOK_KEY": SECRETS["webhook signing key"],
        "COLUMNS": "200",
    }
    if database_url is not None:
        values["ADSENTINEL_DATABASE_URL"] = database_url
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    from adsentinel.cli.app import console, err_console

    for shared in (console, err_console):
        monkeypatch.setattr(shared, "width", 200)
    return values


class Cli:
    """Runs commands in process and keeps everything they said."""

    def __init__(self, corpus: Corpus) -> None:
        self.runner = CliRunner()
        self.corpus = corpus
        self.count = 0

    def __call__(self, *args: str, exit_code: int | None = 0, keep_stdout: bool = True):
        result = self.runner.invoke(cli_app, list(args))
        self.count += 1
        where = "`adsentinel " + " ".join(args) + "`"
        if keep_stdout:
            self.corpus.add(f"{where} stdout", result.stdout)
        self.corpus.add(f"{where} stderr", result.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            self.corpus.add(f"{where} exception", "".join(
                traceback.format_exception(*result.exc_info)))
            self.corpus.add(f"{where} hint", getattr(result.exception, "hint", None))
        if exit_code is not None:
            assert result.exit_code == exit_code, (args, result.output, result.exception)
        return result


def _client_factory(graph_url: str | None = None):
    """The service's Meta client without real waiting (and, given a URL, on a local server)."""
    from adsentinel.sync.meta_client import MetaAccountClient

    def factory(platform_account_id, token, options, on_progress=None):
        return MetaAccountClient(platform_account_id, token, options=replace(options),
                                 sleep=lambda _seconds: None, rng=random.Random(7),
                                 graph_url=graph_url, on_progress=on_progress)
    return factory


def _exercise_meta_sync(cli: Cli, monkeypatch, receiver: _Receiver) -> None:
    import adsentinel.sync.service as sync_service

    monkeypatch.setattr(sync_service, "default_client_factory", _client_factory())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        graph = RecordedGraph(mock)
        serve_insights(serve_structure(graph), "insights_page1", "insights_page2")
        cli("accounts", "add", "--account-id", ACCOUNT, "--token-env", "META_TOKEN",
            "--name", "Sorriso")
        synced = cli("sync", "--since", "2026-11-24")
        assert "succeeded" in synced.stdout
        assert graph.asked("GET", ACCOUNT)[0]["access_token"] == META_TOKEN  # it was used
    cli("accounts", "add", "--account-id", "act_999", "--token-env", META_TOKEN, exit_code=None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        graph = RecordedGraph(mock)
        graph.on("GET", ACCOUNT, (400, payload("error_token_expired"), {}))
        assert "needs_attention" in cli("sync", "--account", ACCOUNT, exit_code=77).stdout
    cli("accounts", "list")
    cli("accounts", "enable", "Sorriso")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        graph = RecordedGraph(mock)
        graph.on("GET", ACCOUNT, (500, "<html>Internal Server Error</html>", {}))
        assert "failed" in cli("sync", exit_code=None).stdout
        graph.routes.clear()
        graph.on("GET", ACCOUNT, (500, payload("error_unknown"), {}))
        assert "failed" in cli("sync", exit_code=None).stdout
    # the same through a real HTTP server: urllib3 logs every request line, query included
    monkeypatch.setattr(sync_service, "default_client_factory", _client_factory(receiver.url))
    receiver.answer = (500, payload("error_unknown"))
    assert "failed" in cli("sync", exit_code=None).stdout
    receiver.answer = (400, payload("error_token_expired"))
    cli("sync", exit_code=77)
    assert any(META_TOKEN in path for path in receiver.seen)  # the token did travel
    cli("accounts", "list")
    cli("sync", exit_code=0)  # skipped: needs attention
    # nothing listens: requests' ConnectionError quotes the URL, token included
    cli("accounts", "enable", "Sorriso")
    monkeypatch.setattr(sync_service, "default_client_factory",
                        _client_factory(f"http://127.0.0.1:{_free_port()}"))
    assert "failed" in cli("sync", exit_code=None).stdout


def _exercise_tokens(cli: Cli) -> dict[str, str]:
    created = {}
    for name, extra in (("ops", []), ("reader", ["--read-only", "--accounts", "Sorriso"]),
                        ("throwaway", [])):
        result = cli("tokens", "create", "--name", name, *extra, keep_stdout=False)
        created[name] = result.stdout.strip()
        assert result.stdout.count(created[name]) == 1  # handed over once, the allowed place
    cli("tokens", "create", "--name", "ops", exit_code=None)  # taken: fails
    cli("tokens", "list")
    cli("tokens", "revoke", created["throwaway"])  # the secret given instead of the name
    cli("tokens", "list", "--all", "--json")
    return created


def _exercise_alerts(cli: Cli, receiver: _Receiver, smtp: tuple[_Smtp, int],
                     monkeypatch) -> None:
    state, _ = smtp
    url = f"{receiver.url}/hook/{SECRETS['webhook URL']}"
    cli("alerts", "channel", "add", "--account", "Sorriso", "--kind", "webhook", "--target",
        url, "--secret-ref", "env:WEBHOOK_KEY", exit_code=None)  # refused: not kept in clear
    monkeypatch.setenv("WEBHOOK_URL", url)
    cli("alerts", "channel", "add", "--account", "Sorriso", "--kind", "webhook", "--target",
        "env:WEBHOOK_URL", "--secret-ref", "env:WEBHOOK_KEY")
    cli("alerts", "channel", "add", "--account", "Sorriso", "--kind", "email", "--target",
        "ops@example.com")
    cli("alerts", "channel", "add", "--account", "Sorriso", "--kind", "webhook", "--target",
        "env:WEBHOOK_URL", "--secret-ref", SECRETS["webhook signing key"], exit_code=None)
    cli("alerts", "channel", "list")
    receiver.answer = (500, {"error": "receiver down"})
    cli("alerts", "channel", "test", "1", exit_code=None)
    receiver.answer = (200, {})
    cli("alerts", "channel", "test", "1")
    assert receiver.seen[-1] == f"/hook/{SECRETS['webhook URL']}"  # the URL was used
    body, signature = receiver.signed[-1]  # the key was used: the receiver can check the body
    key = SECRETS["webhook signing key"].encode()
    assert signature == "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    cli("alerts", "channel", "test", "2", exit_code=None)  # the SMTP login is refused
    state.reject = False
    cli("alerts", "channel", "test", "2")
    assert SECRETS["smtp password"].encode() in state.passwords  # the password was used


def _exercise_bad_settings(cli: Cli, monkeypatch) -> None:
    """Commands that fail on settings: the errors name the setting, never its secret."""
    with monkeypatch.context() as patch:
        patch.setenv("ADSENTINEL_SYNC_WINDOW_DAYS", "not-a-number")
        cli("config", "show", exit_code=None)
    for url in (f"mysql://adsentinel:{quote(PG_PASSWORD, safe='')}@db.example/ads",
                f"postgresql+psycopg://adsentinel:{quote(PG_PASSWORD, safe='')}@127.0.0.1:"
                f"{_free_port()}/ads", "not a url " + PG_PASSWORD):
        with monkeypatch.context() as patch:
            patch.setenv("ADSENTINEL_DATABASE_URL", url)
            cli("config", "show", exit_code=None)
            cli("db", "current", exit_code=None)
            cli("tokens", "list", exit_code=None)


def _exercise_serve_without_broker(cli: Cli, monkeypatch, corpus: Corpus, token: str) -> None:
    """`serve` with the Celery broker away (its URL has a password): the start-up line, and a
    job enqueued through the API, which answers 503."""
    from fastapi.testclient import TestClient

    answers = []

    def run_once(application, **_options):
        with TestClient(application) as client:
            answers.append(client.post("/api/v1/accounts/1/detection",
                                       headers={"Authorization": f"Bearer {token}"}))

    monkeypatch.setattr(uvicorn, "run", run_once)
    with monkeypatch.context() as patch:
        patch.setenv("ADSENTINEL_BROKER_URL",
                     f"redis://:{BROKER_PASSWORD}@127.0.0.1:{_free_port()}/0")
        for jobs in ("auto", "celery"):
            cli("serve", "--jobs", jobs)
    assert answers[-1].status_code == 503, answers[-1].text
    for answer in answers:
        corpus.add(f"serve: answer {answer.status_code}", _response_text(answer))


def _exercise_models(cli: Cli, tmp_path: Path) -> None:
    """Train (the models are signed with the key), detect, then detect on a damaged model."""
    rows = insight_rows(days=60, ads=2, start=date(2026, 8, 1), account="act_77")
    cli("import", str(write_csv(tmp_path / "shop.csv", rows)))
    cli("train", "--account", "act_77")
    models = sorted((tmp_path / "data" / "models").rglob("*.adsp"))  # packs, one a campaign
    assert models, "training stored no model: the signing key was not used"
    cli("detect", "--account", "act_77")
    models[0].write_bytes(models[0].read_bytes()[:-40] + b"\0" * 40)
    cli("detect", "--account", "act_77", exit_code=None)


class _Server:
    """The API and dashboard under a real uvicorn in a thread (its loggers propagate)."""

    def __init__(self) -> None:
        from adsentinel.api import create_app

        port = _free_port()
        config = uvicorn.Config(create_app(load_settings(), jobs="in-process"),
                                host="127.0.0.1", port=port, log_config=None,
                                log_level="debug", access_log=True, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _exercise_api(corpus: Corpus, tokens: dict[str, str]) -> int:
    server = _Server()
    good = tokens["ops"]
    requests = [
        ("GET", "/api/v1/accounts", {"Authorization": f"Bearer {good}"}, 200),
        ("GET", "/api/v1/anomalies", {"Authorization": f"Bearer {tokens['reader']}"}, 200),
        ("GET", "/api/v1/accounts", {"Authorization": f"Bearer {good}x"}, 401),
        ("GET", "/api/v1/accounts", {"Authorization": f"Bearer {tokens['throwaway']}"}, 401),
        ("GET", "/api/v1/accounts", {"Authorization": good}, 401),
        ("GET", f"/api/v1/accounts?access_token={good}", {}, 401),
        ("GET", f"/api/v1/anomalies?token={quote(good)}&page=1", {}, 401),
        ("GET", f"/api/v1/accounts/{good}", {"Authorization": f"Bearer {good}"}, 422),
        ("GET", f"/api/v1/anomalies?metric={good}", {"Authorization": f"Bearer {good}"}, 422),
        ("POST", "/api/v1/accounts/1/detection",
         {"Authorization": f"Bearer {tokens['reader']}"}, 403),
        ("GET", f"/entities/1?token={good}", {}, 303),
    ]
    try:
        with httpx.Client(base_url=server.url, follow_redirects=False) as client:
            for method, path, headers, expected in requests:
                response = client.request(method, path, headers=headers)
                assert response.status_code == expected, (path, response.text)
                corpus.add(f"response {response.status_code} to {method} {path[:30]}",
                           _response_text(response))
            page = client.get("/login")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            for token, expected in ((good + "0", 401), (tokens["throwaway"], 401),
                                    (good, 303)):
                response = client.post("/login", data={"token": token, "csrf_token": csrf,
                                                       "next": "/"})
                assert response.status_code == expected, response.text
                corpus.add(f"dashboard login answer {response.status_code}",
                           _response_text(response))
            overview = client.get("/")
            assert overview.status_code == 200
            # the session secret was used: it signs the cookie
            signer = itsdangerous.TimestampSigner(SECRETS["session secret"])
            assert signer.unsign(client.cookies["adsentinel_session"])
            corpus.add("dashboard overview", _response_text(overview))
    finally:
        server.stop()
    return len(requests) + 5  # and the login page, three logins, the overview


def _response_text(response: httpx.Response) -> str:
    return "\n".join([f"{k}: {v}" for k, v in response.headers.items()] + [response.text])


def _dump_database(url: str) -> tuple[str, int]:
    """Every column of every table as text, and how many rows there were."""
    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    lines, rows = [], 0
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(select(table)):
                    rows += 1
                    lines.append(f"{table.name}: " + " | ".join(map(str, row)))
    finally:
        engine.dispose()
    return "\n".join(lines), rows


def _data_files(root: Path) -> list[tuple[str, str]]:
    return [(f"file {path.relative_to(root)}", path.read_bytes().decode("latin-1"))
            for path in sorted(root.rglob("*")) if path.is_file()]


@pytest.mark.slow
def test_no_secret_is_ever_shown_logged_or_stored(environment, capture, monkeypatch, receiver,
                                                 smtp, tmp_path, database_url):
    corpus = Corpus()
    cli = Cli(corpus)
    cli("db", "upgrade")
    cli("db", "current")
    cli("config", "show")
    cli("config", "show", "--json")
    _exercise_meta_sync(cli, monkeypatch, receiver)
    tokens = _exercise_tokens(cli)
    _exercise_alerts(cli, receiver, smtp, monkeypatch)
    _exercise_models(cli, tmp_path)
    _exercise_serve_without_broker(cli, monkeypatch, corpus, tokens["ops"])
    capture.muted = ("httpx", "httpcore")  # the test's client, not adsentinel's
    requests = _exercise_api(corpus, tokens)
    capture.muted = ()
    _exercise_bad_settings(cli, monkeypatch)

    settings = load_settings()
    dump, rows = _dump_database(settings.effective_database_url)
    corpus.add("database", dump)
    for where, text in _data_files(tmp_path / "data"):
        corpus.add(where, text)
    for logger, line in capture.records:
        corpus.add(f"log of {logger}", line)

    secrets = dict(SECRETS)
    secrets.update({f"API token {name}": value for name, value in tokens.items()})
    secrets["PostgreSQL password"] = PG_PASSWORD  # in the URL of every PostgreSQL attempt
    secrets["broker password"] = BROKER_PASSWORD
    leaks = corpus.leaks(secrets)
    # the search finds what it looks for: the one allowed line is a leak to it
    handed_over = Corpus([("tokens create stdout", tokens["ops"] + "\n")])
    assert [leak.split(":")[0] for leak in handed_over.leaks(secrets)] == [
        "API token ops in tokens create stdout"]
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks[:40])
    # the run did what it claims: DEBUG logs of the libraries, the tables the secrets touch
    assert rows > 100
    dumped = {line.split(":", 1)[0] for line in dump.splitlines()}
    assert {"api_tokens", "ad_accounts", "sync_runs", "alert_channels"} <= dumped, dumped
    loggers = Counter(logger for logger, _ in capture.records)
    assert {"uvicorn.access", "urllib3.connectionpool", "httpx"} <= set(loggers), loggers
    assert any("access_token=" in line for _, line in capture.records)  # urllib3's requests
    print(f"\n{cli.count} commands, {requests} HTTP requests, {len(capture.records)} log records "
          f"({dict(loggers)}), {rows} rows; {len(secrets)} secrets searched in "
          f"{len(corpus.texts)} texts ({sum(len(t) for _, t in corpus.texts):,} characters)")


def test_the_search_finds_secrets_encoded_or_folded_in_a_table():
    folded = "│ smtp  │ " + META_TOKEN[:25] + " │\n│       │ " + META_TOKEN[25:] + " │"
    corpus = Corpus([("table", folded), ("url", "?p=" + quote(SECRETS["smtp password"], safe="")),
                     ("form", "p=" + quote_plus(SECRETS["smtp password"])), ("clean", "***")])
    assert [leak.split(":")[0] for leak in corpus.leaks(
        {"meta": META_TOKEN, "smtp": SECRETS["smtp password"]})] == [
        "meta in table (folded over lines)", "smtp in url", "smtp in form"]


# --- regressions of the leaks this test found ---------------------------------------------------

TOKEN = "ads_" + "Q" * 20 + "-_0123456789abcdefghijk"  # the shape of a token, not a live one


def test_scrub_api_tokens_hides_tokens_and_leaves_words_alone():
    from adsentinel.service.tokens import new_token_secret, scrub_api_tokens

    secret = new_token_secret()
    assert scrub_api_tokens(f"GET /api/v1/accounts?token={secret}&x=1 HTTP/1.1") == (
        "GET /api/v1/accounts?token=ads_***&x=1 HTTP/1.1")
    text = "create a new token with ads_read or ads_management; prefix ads_AbCdEfGh"
    assert scrub_api_tokens(text) == text


def test_uvicorn_access_log_lines_lose_a_token_pasted_into_the_url(capture):
    """Found by the run above: uvicorn logged ``GET /api/v1/accounts?access_token=ads_...``."""
    from uvicorn.logging import AccessFormatter

    import adsentinel.api.app  # noqa: F401 - installs the filter

    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                             f"/api/v1/accounts?token={TOKEN}", "1.1", 401)
    line = capture.records[-1][1]
    assert TOKEN not in line and "/api/v1/accounts?token=ads_*** HTTP/1.1" in line
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/x/{TOKEN}", "1.1", 200), None)
    logging.getLogger("uvicorn.access").filters[0].filter(record)
    assert "/x/ads_***" in AccessFormatter(use_colors=False).format(record)  # still formats


def test_errors_and_login_redirects_do_not_hand_a_token_back(settings):
    """Found by the run above: a 422 quoted the token given as a path or query value, and the
    login redirect carried it in ``next``."""
    from fastapi.testclient import TestClient

    from adsentinel.api import create_app
    from adsentinel.service.tokens import create_token

    app = create_app(settings, jobs="in-process")
    secret = create_token(session_factory=app.state.session_factory, name="t").secret
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        for path in (f"/api/v1/accounts/{secret}", f"/api/v1/anomalies?metric={secret}"):
            response = client.get(path)
            assert response.status_code == 422, response.text
            assert secret not in response.text
            assert response.json()["detail"][0]["input"] == "ads_***"
        del client.headers["Authorization"]
        page = client.get(f"/entities/1?token={secret}", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/entities/1%3Ftoken%3Dads_%2A%2A%2A"
