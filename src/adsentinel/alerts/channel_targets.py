"""A channel as a sender sees it, and the secrets behind its target.

Slack and webhook URLs (and apprise URLs) are bearer secrets, so a channel stores only a
reference, ``env:VAR``, resolved where the message is sent; :func:`mask_url` shows such a URL as
its scheme and host only, and :func:`scrub_secrets` masks the secrets wherever a text (an error,
a log line) would quote them. Shared by every sender (:mod:`adsentinel.alerts.channels`,
:mod:`adsentinel.alerts.apprise_channel`) and by what stores and lists channels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import urlsplit

SECRET_REF_PREFIX = "env:"
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class DeliveryError(Exception):
    """The receiver did not accept the message (network error, non-2xx status, SMTP refusal)."""


@dataclass(frozen=True)
class ChannelView:
    """The fields of an :class:`~adsentinel.db.models.AlertChannel` a sender needs.

    ``stored_target`` is the column as stored: an email address, an ``env:VAR`` reference, or
    (channels added before references) a URL in clear. :attr:`target` is what may be shown.
    """

    id: int
    kind: str
    stored_target: str
    secret_ref: str | None = None

    @property
    def target(self) -> str:
        """The target as logs and messages may show it (a URL in clear is masked)."""
        return shown_target(self.stored_target)


def is_secret_ref(value: str | None) -> TypeGuard[str]:
    """True for a well-formed ``env:VARIABLE_NAME``."""
    return value is not None and value.startswith(SECRET_REF_PREFIX) \
        and _VARIABLE_NAME.fullmatch(value[len(SECRET_REF_PREFIX):]) is not None


def resolve_secret_ref(ref: str | None, *, what: str) -> str:
    """The value of the environment variable that ``ref`` (``env:VAR``) names; ``what`` says
    in the error what the variable should hold."""
    if not is_secret_ref(ref):
        raise DeliveryError(f"{what}: {ref!r} must be env:VARIABLE_NAME")
    name = ref[len(SECRET_REF_PREFIX):]
    value = os.environ.get(name)
    if not value:
        raise DeliveryError(f"environment variable {name} ({what}) is not set where alerts "
                            "are delivered")
    return value


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/***``: scheme and host only; path, query and any user or
    password (where webhook URLs keep their secret) are hidden."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    return f"{parts.scheme}://{host}{port}/***" if parts.scheme and host else "***"


def shown_target(stored_target: str) -> str:
    """A channel's target as it may be shown: references and email addresses as they are, a
    URL masked."""
    if is_secret_ref(stored_target) or "://" not in stored_target:
        return stored_target
    return mask_url(stored_target)


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (URLs) replaced by its masked form."""
    for secret in sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, mask_url(secret))
    return text


def channel_secrets(channel: ChannelView) -> list[str]:
    """The secret values behind a channel that must never be shown (its URL, its key)."""
    found = [] if is_secret_ref(channel.stored_target) or channel.kind == "email" \
        else [channel.stored_target]
    for ref in (channel.stored_target, channel.secret_ref):
        if is_secret_ref(ref) and os.environ.get(ref[len(SECRET_REF_PREFIX):]):
            found.append(os.environ[ref[len(SECRET_REF_PREFIX):]])
    return found
