"""Fixtures of the alert tests: a local SMTP server, a local HTTP receiver that can fail on
purpose, and a small account with stored anomalies."""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from alert_builders import Shop, build_shop

from adsentinel.db.engine import make_session_factory, open_database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    """One request the HTTP receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class HttpReceiver:
    """A webhook receiver on 127.0.0.1: records every request; the next ``fail_next`` requests
    get HTTP 503."""

    url: str
    #: how a channel names the URL: the variable ALERT_RECEIVER_URL, set for the test
    ref: str = "env:ALERT_RECEIVER_URL"
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.status < 300]


@pytest.fixture
def http_receiver(monkeypatch):
    state = HttpReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                status = 503 if state.fail_next > 0 else 200
                state.fail_next = max(state.fail_next - 1, 0)
                state.requests.append(Received(self.path, dict(self.headers.items()), body,
                                               status))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"busy")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    monkeypatch.setenv(state.ref.removeprefix("env:"), state.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


class _MailHandler:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's naming
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """An aiosmtpd server on a free port; ``.handler.messages`` holds what arrived."""
    handler = _MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def sqlite_factory(settings):
    engine = open_database(settings)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def shop(sqlite_factory) -> Shop:
    """An account "Acme" (BRL) with one campaign > ad set > three ads and complete days."""
    return build_shop(sqlite_factory)
