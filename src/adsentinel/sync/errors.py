"""Errors of the Meta sync, and the scrubbing of access tokens from any text we log or store.

The SDK puts the access token in request URLs (``?access_token=...``), and network errors of
``requests`` quote those URLs: every message that leaves this package goes through
:func:`scrub_secrets` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from adsentinel.errors import AdsentinelError, ConfigError

_SECRET_PARAMS = re.compile(r"(access_token|appsecret_proof|client_secret)(=|%3D|\"?:\s*\"?)"
                            r"[^&\s\"',}]+", re.IGNORECASE)
_MIN_SECRET_LENGTH = 8  # shorter strings would blank out ordinary words


def scrub_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every token parameter and every given secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class MetaApiError(AdsentinelError):
    """The Marketing API refused a request, or kept failing after the retries."""

    exit_code = 69  # EX_UNAVAILABLE

    def __init__(self, message: str, *, hint: str | None = None, code: int | None = None,
                 subcode: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.subcode = subcode


class MetaThrottledError(MetaApiError):
    """Meta's rate limits would have us wait longer than this run may; the next run resumes."""


class MetaJobsTooSlowError(MetaApiError):
    """Meta's report jobs have run longer, in total, than this run may wait for them; the date
    ranges already stored stay and the next run asks again."""


class MetaAuthError(MetaApiError):
    """The access token is expired, invalid or lacks permission: only a person can fix that,
    so the account is marked as needing attention and not retried."""

    exit_code = 77  # EX_NOPERM


class SyncPayloadError(AdsentinelError):
    """A Graph API response does not have the shape or values expected; nothing was written."""

    exit_code = 65  # EX_DATAERR


class CredentialsError(ConfigError):
    """An account's token cannot be found where its ``credentials_ref`` points."""
