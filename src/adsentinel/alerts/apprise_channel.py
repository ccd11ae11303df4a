"""The ``apprise`` channel kind: one alert to any service apprise knows (Microsoft Teams,
Google Chat, Telegram, PagerDuty, Discord, Mattermost, ntfy, ...), through its URL scheme
(``msteams://...``, ``tgram://...``, ``pagerduty://...``; see apprise's documentation).

Apprise URLs hold the service's tokens, so a channel stores only ``env:VAR`` and the URL is read
where the alert is sent, like a Slack or webhook URL; errors show it masked. The message is the
alert's subject as the title and its plain-text body. Apprise services know nothing of
idempotency keys: a receiver may, rarely, get an alert twice (after a crash between sending and
recording), which the signed webhook avoids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adsentinel.alerts.channel_targets import (
    ChannelView,
    DeliveryError,
    is_secret_ref,
    mask_url,
    resolve_secret_ref,
    scrub_secrets,
)
from adsentinel.alerts.messages import render_text, subject_of


def apprise_url(channel: ChannelView) -> str:
    """The apprise URL the channel's ``env:VAR`` names (a URL stored in clear as it is)."""
    if not is_secret_ref(channel.stored_target):
        return channel.stored_target
    return resolve_secret_ref(channel.stored_target,
                              what=f"the apprise URL of channel {channel.id}")


def with_timeouts(url: str, timeout: float) -> str:
    """``url`` with apprise's connect and read timeouts (``cto``, ``rto``) unless it sets them."""
    if "cto=" in url or "rto=" in url:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}cto={min(timeout, 4.0):g}&rto={timeout:g}"


def send_apprise(channel: ChannelView, payload: Mapping[str, Any], *, timeout: float) -> None:
    """Send the alert through apprise; raises :class:`DeliveryError` when the URL is not one
    apprise understands or the service did not accept the message."""
    import apprise

    url = apprise_url(channel)
    shown = mask_url(url)
    notifier = apprise.Apprise()
    if not notifier.add(with_timeouts(url, timeout)):
        raise DeliveryError(f"apprise does not understand the URL {shown} of channel "
                            f"{channel.id}; see apprise's list of services for its form")
    body = render_text(payload).split("\n", 2)[-1].strip()  # the subject is the title
    try:
        accepted = notifier.notify(title=subject_of(payload), body=body,
                                   body_format=apprise.NotifyFormat.TEXT)
    except Exception as exc:  # noqa: BLE001 - a plugin's own failure is a failed delivery
        raise DeliveryError(scrub_secrets(f"apprise {shown}: {type(exc).__name__}: {exc}",
                                          [url])) from None
    if not accepted:
        raise DeliveryError(f"apprise {shown}: the service did not accept the message "
                            "(apprise's log line above says why)")
