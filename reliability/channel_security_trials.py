"""Security trials of the alert channels: TLS to SMTP servers, and hostile names in messages.

**TLS** (``aiosmtpd`` servers on 127.0.0.1 with certificates made here by ``openssl``): every
combination of STARTTLS or SMTPS (TLS from the first byte, as on port 465) with a self-signed
certificate the client does not trust, a certificate for another host name whose CA is trusted,
and a trusted certificate for 127.0.0.1; plus a plain server asked for a login. Each trial sends
one test message with ``channels.send_message`` and counts what the server received: a password
reaching an untrusted or wrongly named server, or a plain one, is a failure.

**Names** (``--names``, seeded): account, entity and metric texts drawn from fragments that are
Slack markup (``<!channel>``, ``<!here>``, ``<@U1>``, ``<https://x|y>``, ``&``), email header
injections (CR, LF, ``Bcc:``), other control characters (NUL, ESC, DEL, C1, U+2028) and plain
text. For each, an incident payload with every text field set to a hostile name is rendered:

* Slack: every mrkdwn text (notification, body, footer) must hold no ``<``, ``>`` or ``&`` that
  Slack would act on, and the name must come back unchanged when Slack's three entities are
  decoded (shown as written);
* email: the message is sent to a local SMTP server and must arrive, with exactly the headers
  adsentinel sets and a Subject on one line.

    .venv/bin/python reliability/channel_security_trials.py [--names 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import email
import logging
import random
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from adsentinel.alerts.channels import ChannelView, DeliveryError, send_message
from adsentinel.alerts.messages import MessageContext, check_payload, render_slack
from adsentinel.config import load_settings

FRAGMENTS = ["<!channel>", "<!here>", "<!everyone>", "<@U024BE7LH>", "<#C024BE7LR>",
             "<https://evil.test/login|fix tracking now>", "<mailto:x@evil.test|support>", "&",
             "&amp;", "&lt;!channel&gt;", "<", ">", "\r\n", "\n", "\r", "Bcc: thief@evil.test",
             "\r\nBcc: thief@evil.test\r\n", "\x00", "\x1b[31m", "\x7f", "\x85", "\u2028",
             "\t", "*bold*", "`code`", "Black Friday", "Women 25-34", "Vídeo 3", "ação", " "]
SLACK_ACTIONABLE = re.compile(r"[<>]|&(?!amp;|lt;|gt;)")
EXPECTED_HEADERS = {"Subject", "From", "To", "Message-ID", "X-Adsentinel-Idempotency-Key",
                    "Content-Type", "Content-Transfer-Encoding", "MIME-Version"}
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def certificate(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName={san}"], check=True, capture_output=True)
    return cert, key


@dataclass
class Mailbox:
    logins: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ARG002
        self.logins.append(auth_data.password)
        return AuthResult(success=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


def smtp_server(mailbox: Mailbox, mode: str, cert: tuple[Path, Path] | None) -> Controller:
    options: dict = {"auth_require_tls": False}
    if cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert)
        options = ({"tls_context": context, "require_starttls": True, "auth_require_tls": True}
                   if mode == "starttls" else {"ssl_context": context, "auth_require_tls": False})
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=mailbox.authenticate, **options)
    controller.start()
    return controller


def tls_trials(folder: Path) -> list[tuple[str, str, int, int, int]]:
    """Rows (mode, server certificate, refused, accepted, passwords received)."""
    trusted = certificate(folder, "localhost", "DNS:localhost,IP:127.0.0.1")
    untrusted = certificate(folder, "untrusted", "DNS:localhost,IP:127.0.0.1")
    other_name = certificate(folder, "other", "DNS:other.test")
    bundle = folder / "ca.pem"
    bundle.write_bytes(trusted[0].read_bytes() + other_name[0].read_bytes())
    base = load_settings(data_dir=folder / "data", smtp_host="127.0.0.1",
                         smtp_username="alerts", smtp_password=SecretStr("pw"),
                         smtp_ca_file=bundle)
    cases = [(mode, label, cert) for mode in ("starttls", "smtps")
             for label, cert in (("self-signed, not trusted", untrusted),
                                 ("trusted CA, another host name", other_name),
                                 ("trusted CA, 127.0.0.1", trusted))]
    cases.append(("none (plain)", "no TLS, a login asked for", None))
    rows = []
    for mode, label, cert in cases:
        mailbox = Mailbox()
        controller = smtp_server(mailbox, mode, cert)
        settings = base.model_copy(update={"smtp_port": controller.port,
                                           "smtp_starttls": mode == "starttls",
                                           "smtp_ssl": mode == "smtps"})
        refused = accepted = 0
        try:
            send_message(ChannelView(1, "email", "ops@acme.test"), _message("Acme"), "k" * 64,
                         settings, timeout=5)
            accepted += 1
        except DeliveryError:
            refused += 1
        finally:
            controller.stop()
        rows.append((mode, label, refused, accepted, len(mailbox.logins)))
    return rows


def _message(name: str) -> dict:
    return check_payload(MessageContext(1, name, "BRL", {}, {}, "http://127.0.0.1:8000"), 1)


def hostile_name(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 6)))


def incident_payload(name: str) -> dict:
    figures = {"entity_id": 7, "entity_level": "campaign", "entity_path": f"{name} > {name}",
               "url": "http://127.0.0.1:8000/entities/7?a=1&b=2", "metric": "cpl",
               "metric_label": "CPL", "direction": "up", "day": "2026-11-19", "actual": 45.1,
               "expected": 14.2, "actual_text": "R$ 45.10", "expected_text": "R$ 14.20",
               "ratio_text": "3.2x", "severity": "high", "score": 80.0, "anomaly_id": 1,
               "start_day": "2026-11-18", "latest_day": "2026-11-19", "duration_days": 2,
               "message": name, "calendar": name, "partial_day": False}
    return {"kind": "opened", "account": {"id": 1, "name": name, "currency": "BRL"},
            "incident": figures, "children": [dict(figures, entity_path=name)],
            "children_total": 1, "also": [dict(figures, metric_label=name)], "reason": name,
            "sent_for": "2026-11-20"}


def name_trials(names: int, seed: int, folder: Path) -> dict[str, int]:
    rng = random.Random(seed)
    counts = dict(names=0, slack_actionable=0, slack_not_as_written=0, emails_sent=0,
                  emails_arrived=0, extra_headers=0, broken_subjects=0, delivery_errors=0)
    mailbox = Mailbox()
    controller = smtp_server(mailbox, "none", None)
    settings = load_settings(data_dir=folder / "data", smtp_host="127.0.0.1",
                             smtp_port=controller.port)
    try:
        for number in range(names):
            name = hostile_name(rng)
            payload = incident_payload(name)
            counts["names"] += 1
            slack = render_slack(payload, "k" * 64)
            texts = [slack["text"], slack["blocks"][1]["text"]["text"],
                     slack["blocks"][2]["elements"][0]["text"]]
            if any(SLACK_ACTIONABLE.search(text) for text in texts):
                counts["slack_actionable"] += 1
            shown = texts[1].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            if CONTROL.sub(" ", name)[:50] not in shown:
                counts["slack_not_as_written"] += 1
            counts["emails_sent"] += 1
            try:
                send_message(ChannelView(1, "email", "ops@acme.test"), payload,
                             f"{number:064d}", settings, timeout=5)
            except Exception:  # noqa: BLE001 - the delivery loop would retry, then drop it
                counts["delivery_errors"] += 1
        for raw in mailbox.messages:
            mail = email.message_from_bytes(raw)
            counts["emails_arrived"] += 1
            if set(mail.keys()) - EXPECTED_HEADERS:
                counts["extra_headers"] += 1
            if "\n" in mail["Subject"] or "\r" in mail["Subject"]:
                counts["broken_subjects"] += 1
    finally:
        controller.stop()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # the servers' own complaints
    with tempfile.TemporaryDirectory(prefix="adsentinel-channels-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        print("| SMTP mode | server certificate | refused | accepted | passwords received |")
        print("| --- | --- | --- | --- | --- |")
        tls = tls_trials(folder)
        for row in tls:
            print("| " + " | ".join(str(v) for v in row) + " |")
        names = name_trials(args.names, args.seed, folder)
        print()
        print(" ".join(f"{k}={v}" for k, v in names.items()))
        leaked = sum(row[4] for row in tls if row[1] != "trusted CA, 127.0.0.1")
        failures = leaked + names["slack_actionable"] + names["slack_not_as_written"] + \
            names["extra_headers"] + names["broken_subjects"] + names["delivery_errors"] + \
            (names["emails_sent"] - names["emails_arrived"])
        print(f"BENCH channel_security tls_cases={len(tls)} passwords_leaked={leaked} "
              f"names={names['names']} failures={failures} "
              f"seconds={time.perf_counter() - started:.1f}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
