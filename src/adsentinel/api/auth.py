"""Who is calling, and what they may see and change.

* The JSON API takes ``Authorization: Bearer ads_...``; no token, an unknown or a revoked one is
  401. The dashboard logs in with the same token and keeps only the token's id and its session
  generation in a signed, HttpOnly, SameSite=Lax session cookie; every request re-reads the
  token, so revoking it ends the dashboard session too, and logging out moves the token's
  generation on, so a copy of the cookie stops working at once (not 12 hours later).
* A token limited to some accounts sees nothing of the others: their objects answer 404 (as if
  they did not exist, so ids of other customers cannot be probed) and lists leave them out.
* A read-only token may read everything it sees, but changing an anomaly's status or enqueuing a
  job is 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, true

from adsentinel.api.throttle import record_failed_authentication, refuse_throttled_client
from adsentinel.config import Settings
from adsentinel.errors import ConfigError
from adsentinel.keyfile import UnsafeKeyFileError, read_or_create_hex_key
from adsentinel.service.tokens import TokenInfo, authenticate_token, end_sessions, token_by_id

SESSION_KEY_FILE = ".session-key"
_bearer = HTTPBearer(auto_error=False, description="An API token: `adsentinel tokens create`.")


@dataclass(frozen=True)
class Principal:
    """The token a request is made with, and what it allows."""

    token_id: int
    name: str
    account_ids: frozenset[int] | None  # None: every account
    read_only: bool

    @classmethod
    def of(cls, token: TokenInfo) -> Principal:
        """The principal of a verified token."""
        ids = None if token.account_ids is None else frozenset(token.account_ids)
        return cls(token.id, token.name, ids, token.read_only)

    def sees(self, account_id: int) -> bool:
        """True when this token may see ``account_id``."""
        return self.account_ids is None or account_id in self.account_ids

    def account_filter(self, column) -> ColumnElement[bool]:
        """A WHERE clause keeping the rows of accounts this token sees (``column``: account id)."""
        if self.account_ids is None:
            return true()
        return column.in_(sorted(self.account_ids))


class LoginRequired(Exception):
    """A dashboard page was asked for without a session: go to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def api_principal(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
                  ) -> Principal:
    """The caller of a JSON route; 401 without a valid token, 429 after too many bad ones
    (:mod:`adsentinel.api.throttle`)."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing API token: send 'Authorization: Bearer <token>' (create one "
                            "with `adsentinel tokens create --name NAME`)", headers=challenge)
    refuse_throttled_client(request)  # 429 after too many bad tokens from this address
    token = authenticate_token(session_factory=request.app.state.session_factory,
                               secret=credentials.credentials)
    if token is None:
        record_failed_authentication(request)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "invalid or revoked API token", headers=challenge)
    return Principal.of(token)


def writer(principal: Principal = Depends(api_principal)) -> Principal:
    """The caller of a route that changes something; 403 for a read-only token."""
    if principal.read_only:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"the token {principal.name!r} is read-only; use a token created "
                            "without --read-only to change anomalies or enqueue jobs")
    return principal


def start_session(request: Request, token: TokenInfo) -> None:
    """Log the dashboard in with ``token``: a fresh session (no fixation of a pre-login cookie)
    holding the token's id, its session generation and a new CSRF token."""
    request.session.clear()
    request.session.update(token_id=token.id, generation=token.session_generation,
                           csrf=new_csrf_token())


def end_session(request: Request) -> None:
    """Log out: end this session on the server (every copy of its cookie) and clear it."""
    token_id, generation = request.session.get("token_id"), request.session.get("generation")
    if isinstance(token_id, int) and isinstance(generation, int):
        end_sessions(session_factory=request.app.state.session_factory, token_id=token_id,
                     generation=generation)
    request.session.clear()


def session_principal(request: Request) -> Principal | None:
    """The dashboard user of this request (from the session cookie), or ``None`` when there is
    none, its token was revoked, or the session was logged out (another generation)."""
    token_id, generation = request.session.get("token_id"), request.session.get("generation")
    if not isinstance(token_id, int):
        return None
    token = token_by_id(session_factory=request.app.state.session_factory, token_id=token_id)
    if token is None or generation != token.session_generation:  # revoked, or logged out
        request.session.clear()
        return None
    return Principal.of(token)


def new_csrf_token() -> str:
    """A random token for the dashboard's forms (one per session)."""
    return secrets.token_urlsafe(32)


def csrf_matches(request: Request, submitted: str | None) -> bool:
    """True when ``submitted`` is this session's CSRF token (constant-time comparison)."""
    expected = request.session.get("csrf")
    return bool(expected) and bool(submitted) and secrets.compare_digest(str(expected),
                                                                         str(submitted))


def session_secret(settings: Settings) -> str:
    """The key signing session cookies: the configured one, or one created once on disk.

    Without ``ADSENTINEL_SESSION_SECRET``, a random 256-bit key is written once to
    ``<data_dir>/.session-key`` with mode 0600 (atomically, so processes starting together agree)
    and read back afterwards; sessions then survive restarts of the same machine.
    """
    if settings.session_secret is not None:
        value = settings.session_secret.get_secret_value()
        if len(value) < 16:
            raise ConfigError(f"session_secret is too short ({len(value)} characters); use at "
                              "least 16",
                              hint="set ADSENTINEL_SESSION_SECRET to a long random string")
        return value
    path = Path(settings.data_dir) / SESSION_KEY_FILE
    try:
        text = read_or_create_hex_key(path)
    except UnsafeKeyFileError as exc:
        raise ConfigError(f"the session key is refused: {exc}",
                          hint="anyone who reads it can forge dashboard sessions") from None
    except OSError as exc:
        raise ConfigError(f"cannot create the session key {path}: {exc.strerror or exc}",
                          hint="make the data folder writable or set "
                               "ADSENTINEL_SESSION_SECRET") from None
    return _checked_session_key(path, text)


def _checked_session_key(path: Path, text: str) -> str:
    if len(text) < 32:
        raise ConfigError(f"the session key {path} is malformed (expected 64 hex characters)",
                          hint="delete it (dashboard users will log in again) or set "
                               "ADSENTINEL_SESSION_SECRET")
    return text
