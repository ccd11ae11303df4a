"""Senders: one message to a Slack incoming webhook, a generic signed JSON webhook or an email.

Each sender either returns (the receiver accepted the message) or raises
:class:`DeliveryError`; the outbox decides about retries. Every request has a timeout, so a
receiver that hangs costs one attempt, not a stuck worker.

Receivers can drop repeats: webhooks get an ``Idempotency-Key`` header (and the key in the body),
emails a ``Message-ID`` made from it plus ``X-Adsentinel-Idempotency-Key``. The generic webhook
body is signed: ``X-Adsentinel-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with the
key named by the channel's ``secret_ref`` (``env:VAR``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adsentinel.alerts.messages import render_email, render_slack, render_webhook
from adsentinel.config import Settings

CHANNEL_KINDS = ("slack", "webhook", "email")
SIGNATURE_HEADER = "X-Adsentinel-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """The receiver did not accept the message (network error, non-2xx status, SMTP refusal)."""


@dataclass(frozen=True)
class ChannelView:
    """The fields of an :class:`~adsentinel.db.models.AlertChannel` a sender needs."""

    id: int
    kind: str
    target: str
    secret_ref: str | None = None


def resolve_secret(secret_ref: str | None) -> bytes:
    """The webhook signing key that ``secret_ref`` (``env:VAR``) names."""
    if not secret_ref or not secret_ref.startswith("env:") or len(secret_ref) <= 4:
        raise DeliveryError(f"secret_ref {secret_ref!r} must be env:VARIABLE_NAME")
    name = secret_ref[4:]
    value = os.environ.get(name)
    if not value:
        raise DeliveryError(f"environment variable {name} (the webhook signing key) is not set")
    return value.encode("utf-8")


def sign(body: bytes, key: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def send_message(channel: ChannelView, payload: Mapping[str, Any], idempotency_key: str,
                 settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Deliver one message; raises :class:`DeliveryError` when it was not accepted."""
    if channel.kind == "slack":
        body = json.dumps(render_slack(payload, idempotency_key)).encode("utf-8")
        _post(channel.target, body, {IDEMPOTENCY_HEADER: idempotency_key}, timeout)
    elif channel.kind == "webhook":
        body = render_webhook(payload, idempotency_key)
        headers = {IDEMPOTENCY_HEADER: idempotency_key,
                   SIGNATURE_HEADER: sign(body, resolve_secret(channel.secret_ref))}
        _post(channel.target, body, headers, timeout)
    elif channel.kind == "email":
        _send_email(channel.target, payload, idempotency_key, settings, timeout)
    else:
        raise DeliveryError(f"unknown channel kind {channel.kind!r}; expected one of "
                            f"{', '.join(CHANNEL_KINDS)}")


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "adsentinel-alerts", **headers}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"POST {url}: HTTP {response.status_code} {response.text[:200]!r}")


def _send_email(recipient: str, payload: Mapping[str, Any], idempotency_key: str,
                settings: Settings, timeout: float) -> None:
    message = render_email(payload, idempotency_key, sender=settings.smtp_from,
                           recipient=recipient)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {settings.smtp_host}:{settings.smtp_port} to {recipient}: "
                            f"{type(exc).__name__}: {exc}") from None
