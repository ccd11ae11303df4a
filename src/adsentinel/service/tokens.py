"""API tokens: create (shown once), list, revoke, and verify.

A token is ``ads_`` followed by 43 URL-safe random characters (256 bits). Only its SHA-256 (hex)
is stored, with the first characters (``prefix``) kept in clear so a user can tell tokens apart in
``adsentinel tokens list`` without the database ever holding a usable secret. A plain SHA-256 is
enough here (no slow password hash): the secret has 256 bits of entropy, nothing to brute-force.

A token may be limited to some accounts (``account_ids``; ``None`` = every account) and may be
read-only. Revoking sets ``revoked_at``; a revoked token never authenticates again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, ApiToken, utcnow
from adsentinel.errors import AdsentinelError, NotFoundError
from adsentinel.timezones import as_utc

TOKEN_PREFIX = "ads_"
_SHOWN_CHARS = 12  # "ads_" + 8 random characters: enough to recognise, useless to attack
#: anything shaped like a token (its alphabet is URL-safe, so a URL holds it as is); 16 characters
#: after the prefix leave words such as ``ads_read`` alone
_TOKEN_IN_TEXT = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{16,}")
#: ``last_used_at`` is written at most this often per token, so reads do not all become writes
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a stored token (never the secret)."""

    id: int
    name: str
    prefix: str
    account_ids: tuple[int, ...] | None
    read_only: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    #: dashboard sessions opened with another generation have ended (see :func:`end_sessions`)
    session_generation: int = 0

    @classmethod
    def of(cls, token: ApiToken) -> TokenInfo:
        """The displayable fields of ``token``."""
        return cls(token.id, token.name, token.prefix,
                   None if token.account_ids is None else tuple(sorted(token.account_ids)),
                   bool(token.read_only), as_utc(token.created_at), as_utc(token.last_used_at),
                   as_utc(token.revoked_at), int(token.session_generation or 0))


@dataclass(frozen=True)
class CreatedToken:
    """A new token: its stored description and the secret, shown exactly once."""

    info: TokenInfo
    secret: str


def hash_token(secret: str) -> str:
    """SHA-256 hex digest of ``secret``, the only form in which tokens are stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def scrub_api_tokens(text: str) -> str:
    """``text`` with every API token in it replaced by ``ads_***``.

    For what leaves the server about a request: a token pasted into a URL or a parameter by
    mistake would otherwise be written to the access log or echoed in an error.
    """
    return _TOKEN_IN_TEXT.sub(TOKEN_PREFIX + "***", text)


def new_token_secret() -> str:
    """A fresh token: ``ads_`` + 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(*, session_factory: sessionmaker[Session], name: str,
                 accounts: list[str] | None = None, read_only: bool = False) -> CreatedToken:
    """Create a token named ``name``; ``accounts`` (names, platform ids or numeric ids) limits it.

    Raises :class:`AdsentinelError` when the name is empty or taken, and :class:`NotFoundError`
    when an account does not exist. Nothing is written on error.
    """
    name = name.strip()
    if not name:
        raise AdsentinelError("a token needs a name", hint="pass --name, e.g. --name grafana")
    if len(name) > 200:
        raise AdsentinelError(f"token name is {len(name)} characters long; at most 200")
    account_ids = None
    if accounts is not None:
        wanted = [a.strip() for a in accounts if a.strip()]
        if not wanted:
            raise AdsentinelError("--accounts was given without any account",
                                  hint="pass e.g. --accounts 'Acme BR,act_123' or omit it")
        with session_factory() as session:
            account_ids = sorted({_unambiguous_account(session, a) for a in wanted})
    secret = new_token_secret()
    with session_scope(session_factory) as session:
        if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise AdsentinelError(f"a token named {name!r} already exists",
                                  hint="choose another --name, or revoke the old one first "
                                       "(`adsentinel tokens revoke NAME`)")
        token = ApiToken(name=name, token_hash=hash_token(secret), prefix=secret[:_SHOWN_CHARS],
                         account_ids=account_ids, read_only=read_only, created_at=utcnow())
        session.add(token)
        session.flush()
        info = TokenInfo.of(token)
    return CreatedToken(info, secret)


def _unambiguous_account(session: Session, ref: str) -> int:
    """The id of the one account ``ref`` names (name, platform id or numeric id).

    A token's scope must not depend on a guess: when ``ref`` is both an account's id and
    another account's name or platform id (an account named "2" beside account 2), it is
    refused, naming both. Raises :class:`NotFoundError` when no account matches.
    """
    match = [AdAccount.name == ref, AdAccount.platform_account_id == ref]
    if ref.isdigit() and len(ref) < 10:
        match.append(AdAccount.id == int(ref))
    found = session.execute(select(AdAccount.id, AdAccount.name, AdAccount.platform_account_id)
                            .where(or_(*match)).order_by(AdAccount.id)).all()
    if not found:
        raise NotFoundError(f"no ad account named or numbered {ref!r}",
                            hint="pass an account's name, platform id or numeric id")
    if len(found) > 1:
        described = "; ".join(f"id {row.id} (name {row.name!r}, platform id "
                              f"{row.platform_account_id!r})" for row in found)
        raise AdsentinelError(f"--accounts {ref!r} is ambiguous: it matches {described}",
                              hint="pass a name or platform id that only the account you mean "
                                   "has (see `adsentinel accounts`)")
    return found[0].id


def list_tokens(*, session_factory: sessionmaker[Session],
                include_revoked: bool = False) -> list[TokenInfo]:
    """Every token (the revoked ones too when asked), oldest first."""
    with session_factory() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [TokenInfo.of(t) for t in session.scalars(query)]


def revoke_token(*, session_factory: sessionmaker[Session], name_or_prefix: str) -> TokenInfo:
    """Revoke the token with this name (or this displayed prefix); returns it.

    Revoking an already revoked token is not an error (the result is the same); an unknown
    name is :class:`NotFoundError`.
    """
    with session_scope(session_factory) as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == name_or_prefix))
        if token is None and name_or_prefix.startswith(TOKEN_PREFIX):
            matches = session.scalars(select(ApiToken).where(
                ApiToken.prefix == name_or_prefix[:_SHOWN_CHARS])).all()
            token = matches[0] if len(matches) == 1 else None
        if token is None:
            raise NotFoundError(f"no API token named {name_or_prefix!r}",
                                hint="see the names with `adsentinel tokens list`")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        session.flush()
        return TokenInfo.of(token)


def authenticate_token(*, session_factory: sessionmaker[Session], secret: str,
                       now: datetime | None = None) -> TokenInfo | None:
    """The live token whose secret is ``secret``, or ``None``; records when it was last used."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = now or utcnow()
    with session_factory() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
        if token is None or token.revoked_at is not None:
            return None
        info = TokenInfo.of(token)
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_RESOLUTION:
            session.execute(update(ApiToken).where(ApiToken.id == token.id)
                            .values(last_used_at=now))
            session.commit()
    return info


def token_by_id(*, session_factory: sessionmaker[Session], token_id: int) -> TokenInfo | None:
    """The live (not revoked) token with this id, or ``None`` (a dashboard session's token)."""
    with session_factory() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.revoked_at is not None:
            return None
        return TokenInfo.of(token)


def end_sessions(*, session_factory: sessionmaker[Session], token_id: int,
                 generation: int) -> None:
    """End every dashboard session opened with ``token_id`` in ``generation`` (logout).

    The token's generation moves on, so a copy of a logged-out cookie no longer authenticates;
    a session of an older generation has already ended, and nothing changes then.
    """
    with session_scope(session_factory) as session:
        session.execute(update(ApiToken).where(ApiToken.id == token_id,
                                               ApiToken.session_generation == generation)
                        .values(session_generation=ApiToken.session_generation + 1))


def account_names(*, session_factory: sessionmaker[Session], ids: tuple[int, ...]) -> list[str]:
    """Names of the accounts ``ids`` (for listing what a token may see)."""
    with session_factory() as session:
        return list(session.scalars(select(AdAccount.name).where(AdAccount.id.in_(ids))
                                    .order_by(AdAccount.name)))




__all__ = [
    "CreatedToken",
    "TokenInfo",
    "authenticate_token",
    "create_token",
    "end_sessions",
    "hash_token",
    "list_tokens",
    "revoke_token",
    "scrub_api_tokens",
    "token_by_id",
]
