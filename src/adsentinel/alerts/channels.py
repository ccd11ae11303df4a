"""Senders: one message to a Slack incoming webhook, a generic signed JSON webhook or an email.

Each sender either returns (the receiver accepted the message) or raises
:class:`DeliveryError`; the outbox decides about retries. Every request has a timeout, so a
receiver that hangs costs one attempt, not a stuck worker.

Receivers can drop repeats: webhooks get an ``Idempotency-Key`` header (and the key in the body),
emails a ``Message-ID`` made from it plus ``X-Adsentinel-Idempotency-Key``. The generic webhook
body is signed: ``X-Adsentinel-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with the
key named by the channel's ``secret_ref`` (``env:VAR``).

Slack and webhook URLs are bearer secrets (whoever has one can post to the channel), so a channel
stores only a reference, ``env:VAR``, resolved where the message is sent. A URL never leaves the
senders in clear: :attr:`ChannelView.target` and every error show it masked (:func:`mask_url`;
both in :mod:`adsentinel.alerts.channel_targets`, which the apprise sender shares).
Email goes over verified TLS (STARTTLS or SMTPS with the system's or a given CA), and a login is
refused over a plain connection unless ``smtp_allow_plaintext_login`` says the network is trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from adsentinel.alerts.apprise_channel import send_apprise
from adsentinel.alerts.channel_targets import (
    ChannelView,
    DeliveryError,
    is_secret_ref,
    mask_url,
    resolve_secret_ref,
    scrub_secrets,
)
from adsentinel.alerts.messages import render_email, render_slack, render_webhook
from adsentinel.config import Settings

CHANNEL_KINDS = ("slack", "webhook", "email", "apprise")
SIGNATURE_HEADER = "X-Adsentinel-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT_SECONDS = 10.0


class _MaskRequestUrls(logging.Filter):
    """httpx logs every request with its URL at INFO; a webhook URL is a secret, so the logged
    URL keeps only its scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url(str(a)) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_MaskRequestUrls())


def resolve_secret(secret_ref: str | None) -> bytes:
    """The webhook signing key that ``secret_ref`` (``env:VAR``) names."""
    return resolve_secret_ref(secret_ref, what="the webhook signing key").encode("utf-8")


def resolve_url(channel: ChannelView) -> str:
    """The URL a Slack or webhook channel posts to (its reference resolved)."""
    if not is_secret_ref(channel.stored_target):
        return channel.stored_target  # a channel stored before references existed
    url = resolve_secret_ref(channel.stored_target, what=f"the {channel.kind} URL of channel "
                                                         f"{channel.id}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DeliveryError(f"{channel.stored_target} of channel {channel.id} does not hold an "
                            f"http(s) URL (it starts with {url[:8]!r}...)")
    return url


def sign(body: bytes, key: bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def send_message(channel: ChannelView, payload: Mapping[str, Any], idempotency_key: str,
                 settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Deliver one message; raises :class:`DeliveryError` when it was not accepted."""
    if channel.kind == "slack":
        body = json.dumps(render_slack(payload, idempotency_key)).encode("utf-8")
        _post(resolve_url(channel), body, {IDEMPOTENCY_HEADER: idempotency_key}, timeout)
    elif channel.kind == "webhook":
        body = render_webhook(payload, idempotency_key)
        headers = {IDEMPOTENCY_HEADER: idempotency_key,
                   SIGNATURE_HEADER: sign(body, resolve_secret(channel.secret_ref))}
        _post(resolve_url(channel), body, headers, timeout)
    elif channel.kind == "email":
        _send_email(channel.stored_target, payload, idempotency_key, settings, timeout)
    elif channel.kind == "apprise":  # Teams, Google Chat, Telegram, PagerDuty, ...
        send_apprise(channel, payload, timeout=timeout)
    else:
        raise DeliveryError(f"unknown channel kind {channel.kind!r}; expected one of "
                            f"{', '.join(CHANNEL_KINDS)}")


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "adsentinel-alerts", **headers}
    shown = mask_url(url)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = scrub_secrets(f"{type(exc).__name__}: {exc}", [url])
        raise DeliveryError(f"POST {shown}: {detail}") from None
    if not 200 <= response.status_code < 300:
        answer = scrub_secrets(repr(response.text[:200]), [url])
        raise DeliveryError(f"POST {shown}: HTTP {response.status_code} {answer}")


def _send_email(recipient: str, payload: Mapping[str, Any], idempotency_key: str,
                settings: Settings, timeout: float) -> None:
    where = f"SMTP {settings.smtp_host}:{settings.smtp_port} to {recipient}"
    try:
        message = render_email(payload, idempotency_key, sender=settings.smtp_from,
                               recipient=recipient)
    except ValueError as exc:  # an address with a line break: never a header injection
        raise DeliveryError(f"{where}: the message cannot be built: {exc}") from None
    try:
        with _smtp_connection(settings, timeout) as smtp:
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(f"{where}: the server's certificate is not trusted "
                            f"({getattr(exc, 'verify_message', None) or exc}"
                            "); nothing was sent: fix the certificate, or name its CA in "
                            "ADSENTINEL_SMTP_CA_FILE (CERTIFICATE_VERIFY_FAILED)") from None
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None


def smtp_tls_mode(settings: Settings) -> str:
    """``smtps`` (TLS from the first byte, port 465), ``starttls`` or ``none``; refuses a
    login over a plain connection unless ``smtp_allow_plaintext_login`` is set."""
    if settings.smtp_ssl and settings.smtp_starttls:
        raise DeliveryError("ADSENTINEL_SMTP_SSL and ADSENTINEL_SMTP_STARTTLS are both set; "
                            "choose one (SSL for port 465, STARTTLS for 587)")
    mode = "smtps" if settings.smtp_ssl else "starttls" if settings.smtp_starttls else "none"
    if mode == "none" and settings.smtp_username and not settings.smtp_allow_plaintext_login:
        raise DeliveryError(
            f"refusing to send the SMTP password of {settings.smtp_username!r} to "
            f"{settings.smtp_host}:{settings.smtp_port} over a plain connection: set "
            "ADSENTINEL_SMTP_STARTTLS=true (port 587) or ADSENTINEL_SMTP_SSL=true (port 465), "
            "or ADSENTINEL_SMTP_ALLOW_PLAINTEXT_LOGIN=true on a network you trust")
    return mode


def smtp_tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name verified, against the system's CAs or ``smtp_ca_file``."""
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _smtp_connection(settings: Settings, timeout: float) -> smtplib.SMTP:
    mode = smtp_tls_mode(settings)
    if mode == "smtps":
        return smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                context=smtp_tls_context(settings))
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    if mode == "starttls":
        try:
            smtp.starttls(context=smtp_tls_context(settings))
        except BaseException:
            smtp.close()
            raise
    return smtp
