"""Channels under attack: a server in the middle of SMTP, names that try to be markup or to add
email headers, and webhook URLs (bearer secrets) that must never be shown."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from alert_builders import NOW, YESTERDAY, add_anomaly
from pydantic import SecretStr
from sqlalchemy import select, update
from typer.testing import CliRunner

from adsentinel.alerts.channels import ChannelView, DeliveryError, mask_url, send_message
from adsentinel.alerts.config import add_channel
from adsentinel.alerts.messages import MessageContext, check_payload, render_slack
from adsentinel.alerts.service import deliver_alerts, plan_alerts
from adsentinel.cli import app
from adsentinel.db.engine import session_scope
from adsentinel.db.models import AlertChannel, AlertOutbox, Entity


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


INJECTED = "<!channel> <https://evil.test/login|fix tracking now> & more"
EMAIL = ChannelView(1, "email", "ops@acme.test")


# --- SMTP: TLS verified, SMTPS, no password in clear --------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost / 127.0.0.1: ``(cert path, key path)``."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class Mailbox:
    """What an SMTP server got: logins (user, password) and messages."""

    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's naming
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["starttls", "smtps"])
def tls_server(request, certificate):
    """An SMTP server with the self-signed certificate, speaking STARTTLS or SMTPS (TLS from the
    first byte, as on port 465); logins are accepted over TLS only."""
    mailbox = Mailbox()
    options = ({"tls_context": _server_context(certificate), "require_starttls": True,
                "auth_require_tls": True} if request.param == "starttls" else
               # aiosmtpd counts only STARTTLS as TLS; an SMTPS connection is TLS throughout
               {"ssl_context": _server_context(certificate), "auth_require_tls": False})
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=mailbox.authenticate, **options)
    controller.start()
    yield request.param, controller.port, mailbox
    controller.stop()


def _smtp_settings(settings, port, **changes):
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                       "smtp_username": "alerts",
                                       "smtp_password": SecretStr("pw-canary-71"), **changes})


def _test_message(name: str = "Acme") -> dict:
    return check_payload(MessageContext(1, name, "BRL", {}, {}, "http://127.0.0.1:8000"), 1)


def test_a_server_with_an_untrusted_certificate_gets_no_password(settings, tls_server):
    mode, port, mailbox = tls_server
    tls = {"smtp_starttls": mode == "starttls", "smtp_ssl": mode == "smtps"}
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        send_message(EMAIL, _test_message(), "k" * 64, _smtp_settings(settings, port, **tls),
                     timeout=5)
    assert mailbox.logins == [] and mailbox.messages == []


def test_a_server_whose_ca_is_given_gets_the_message(settings, tls_server, certificate):
    mode, port, mailbox = tls_server
    tls = {"smtp_starttls": mode == "starttls", "smtp_ssl": mode == "smtps",
           "smtp_ca_file": certificate[0]}
    send_message(EMAIL, _test_message(), "k" * 64, _smtp_settings(settings, port, **tls),
                 timeout=5)
    assert mailbox.logins == [(b"alerts", b"pw-canary-71")]
    assert len(mailbox.messages) == 1


def test_a_login_without_tls_is_refused_unless_allowed(settings):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=mailbox.authenticate, auth_require_tls=False)
    controller.start()
    try:
        plain = _smtp_settings(settings, controller.port)
        with pytest.raises(DeliveryError, match="refusing to send the SMTP password"):
            send_message(EMAIL, _test_message(), "k" * 64, plain, timeout=5)
        assert mailbox.logins == []
        allowed = plain.model_copy(update={"smtp_allow_plaintext_login": True})
        send_message(EMAIL, _test_message(), "k" * 64, allowed, timeout=5)
        assert mailbox.logins == [(b"alerts", b"pw-canary-71")]
        anonymous = plain.model_copy(update={"smtp_username": None})  # no login: nothing to hide
        send_message(EMAIL, _test_message(), "k" * 64, anonymous, timeout=5)
        assert len(mailbox.messages) == 2
    finally:
        controller.stop()


# --- names are data, never markup or headers ----------------------------------------------------


def _rename(shop, entity_id: int, name: str) -> None:
    with session_scope(shop.session_factory) as session:
        session.execute(update(Entity).where(Entity.id == entity_id).values(name=name))


def test_slack_shows_an_injected_name_escaped(shop, settings, http_receiver):
    _rename(shop, shop.campaign, INJECTED)
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="slack",
                target=http_receiver.ref)
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95)
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW)
    assert deliver_alerts(session_factory=shop.session_factory, settings=settings,
                          now=NOW)["sent"] == 1
    body = json.loads(http_receiver.requests[0].body)
    mrkdwn = [body["text"], body["blocks"][1]["text"]["text"],
              body["blocks"][2]["elements"][0]["text"]]
    escaped = "&lt;!channel&gt; &lt;https://evil.test/login|fix tracking now&gt; &amp; more"
    assert escaped in body["text"] and escaped in mrkdwn[1]
    for text in mrkdwn:  # no mention, link or entity Slack would act on
        assert not re.search(r"<[!@#]|<https?:|&(?!amp;|lt;|gt;)", text), text
    assert body["blocks"][0]["text"]["type"] == "plain_text"  # shown as written, not parsed


def test_every_value_of_a_slack_message_is_escaped():
    rendered = render_slack(_test_message(INJECTED), "k" * 64)
    assert "<" not in rendered["text"] and "&lt;!channel&gt;" in rendered["text"]


def test_a_line_break_in_a_name_neither_adds_a_header_nor_drops_the_email(shop, settings,
                                                                          smtp_server):
    _rename(shop, shop.campaign, "Black Friday\r\nBcc: thief@evil.test\r\n\r\nFake body")
    settings = settings.model_copy(update={"smtp_port": smtp_server.port})
    add_channel(session_factory=shop.session_factory, account_id=shop.account_id, kind="email",
                target="ads-team@acme.test")
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95)
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW)
    assert deliver_alerts(session_factory=shop.session_factory, settings=settings,
                          now=NOW)["sent"] == 1
    [mail] = smtp_server.handler.messages
    assert mail["Bcc"] is None
    assert mail["Subject"] == ("[CRITICAL] Acme: CPL up on Black Friday  Bcc: thief@evil.test"
                               "    Fake body (1 day)")
    assert "Campaign: Black Friday  Bcc: thief@evil.test    Fake body" in \
        mail.get_payload(decode=True).decode()


# --- webhook URLs are secrets --------------------------------------------------------------------


SLACK_URL = "https://hooks.slack.com/services/T0/B0/slack-url-canary-5d1e"
LEGACY_URL = "https://hooks.slack.com/services/T0/B1/legacy-url-canary-9a2b"


def test_no_webhook_url_is_shown_by_any_command(shop, settings, http_receiver, monkeypatch):
    """Three channels hold URLs (one by env:, one webhook by env:, one stored in clear by an
    older version); list, test, deliver and outbox print none of them."""
    monkeypatch.setenv("ADSENTINEL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHOP_SLACK_URL", SLACK_URL)
    monkeypatch.setenv("HOOK_KEY", "webhook-key-canary-33")
    hook_url = http_receiver.url + "/webhook-url-canary-7c4f"
    monkeypatch.setenv("ALERT_RECEIVER_URL", hook_url)
    runner = CliRunner()
    outputs = []

    def cli(*args):
        result = runner.invoke(app, list(args))
        outputs.append(result.output + str(result.exception or ""))
        return result

    assert cli("alerts", "channel", "add", "--account", "Acme", "--kind", "slack",
               "--target", SLACK_URL).exit_code != 0  # refused: it would be stored in clear
    assert cli("alerts", "channel", "add", "--account", "Acme", "--kind", "slack",
               "--target", "env:SHOP_SLACK_URL").exit_code == 0
    assert cli("alerts", "channel", "add", "--account", "Acme", "--kind", "webhook",
               "--target", http_receiver.ref, "--secret-ref", "env:HOOK_KEY").exit_code == 0
    with session_scope(shop.session_factory) as session:
        session.add(AlertChannel(account_id=shop.account_id, kind="slack", target=LEGACY_URL,
                                 min_severity="low", digest=False, is_active=True))
    http_receiver.fail_next = 100
    cli("alerts", "channel", "list")
    assert cli("alerts", "channel", "test", "2").exit_code != 0
    assert cli("alerts", "channel", "test", "3").exit_code != 0  # hooks.slack.com: no network
    add_anomaly(shop, shop.campaign, YESTERDAY, severity="critical", score=95)
    plan_alerts(session_factory=shop.session_factory, settings=settings,
                account_id=shop.account_id, now=NOW)
    with session_scope(shop.session_factory) as session:  # an error stored by an old version
        session.execute(update(AlertOutbox).where(AlertOutbox.channel_id == 3)
                        .values(last_error=f"POST {LEGACY_URL}: ConnectError"))
    cli("alerts", "deliver")
    cli("alerts", "outbox")
    with shop.session_factory() as session:
        stored_errors = [e for e in session.scalars(select(AlertOutbox.last_error)) if e]
    assert len(http_receiver.requests) >= 2  # the URLs were used, not just hidden
    printed = "\n".join(outputs + stored_errors)
    assert "hooks.slack.com/***" in printed and "127.0.0.1" in printed
    secrets = [SLACK_URL, LEGACY_URL, hook_url, "slack-url-canary", "legacy-url-canary",
               "webhook-url-canary", "webhook-key-canary"]
    shown = {secret: printed.count(secret) for secret in secrets}
    print(f"{len(secrets)} secrets behind 3 channels, {len(outputs)} commands: {shown}")
    assert shown == dict.fromkeys(secrets, 0)


def test_mask_url_keeps_only_scheme_and_host():
    assert mask_url("https://user:pw@hooks.slack.com:8443/services/T/B/x?token=y") == \
        "https://hooks.slack.com:8443/***"
    assert mask_url("not a url") == "***"


def test_the_console_refuses_a_url_in_clear_with_exit_64_and_masks_it(shop, settings):
    """Through the real entry point: one line on stderr, the URL masked, exit code 64."""
    environment = {**os.environ, "ADSENTINEL_DATA_DIR": str(settings.data_dir)}
    ran = subprocess.run([sys.executable, "-m", "adsentinel", "alerts", "channel", "add",
                          "--account", "Acme", "--kind", "slack", "--target", SLACK_URL],
                         capture_output=True, text=True, env=environment, timeout=60)
    assert ran.returncode == 64, ran.stderr
    assert "https://hooks.slack.com/***" in ran.stderr and "Traceback" not in ran.stderr
    assert "slack-url-canary" not in ran.stdout + ran.stderr
