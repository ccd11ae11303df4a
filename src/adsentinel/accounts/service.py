"""Ad accounts' service: finding the accounts a command is about (one rule for every command),
setting an account's language, and administering the accounts that sync from Meta: adding one
with the name of its token's variable (the token proved first), listing them with how their
last sync went, enabling and disabling, and discovering the ad accounts a token can read.

Pulling an account is :mod:`adsentinel.sync.service`'s job."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.config import Settings
from adsentinel.db.models import AdAccount, SyncRun
from adsentinel.errors import ConfigError, NotFoundError
from adsentinel.sync import service as sync_service
from adsentinel.sync.account_changes import apply_account_settings, setting_changes
from adsentinel.sync.errors import CredentialsError
from adsentinel.sync.payloads import AccountInfo, parse_account, parse_result_action_types

log = logging.getLogger(__name__)

_ACCOUNT_ID = re.compile(r"^act_[0-9]{1,30}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class AccountRef:
    """The few fields of an account that commands print or pass on."""

    id: int
    name: str
    currency: str


def find_account(session: Session, wanted: str) -> AdAccount:
    """The account ``wanted`` names: its name, its Meta id with or without ``act_``, or its
    numeric id (a name that matches exactly wins). The one rule every command resolves an
    account by; raises :class:`NotFoundError` when there is none."""
    bare = wanted.removeprefix("act_")
    match = [AdAccount.name == wanted, AdAccount.platform_account_id == wanted]
    if bare.isdigit():
        match += [AdAccount.platform_account_id == bare,
                  AdAccount.platform_account_id == f"act_{bare}"]
    if wanted.isdigit():
        match.append(AdAccount.id == int(wanted))
    found = session.scalars(select(AdAccount).where(or_(*match)).order_by(AdAccount.id)).all()
    if not found:
        raise NotFoundError(f"no ad account named or numbered {wanted!r}",
                            hint="pass an account's name, Meta id or numeric id; "
                                 "`adsentinel accounts list` shows them")
    exact = [a for a in found if a.name == wanted]
    return exact[0] if exact else found[0]


def select_accounts(*, session_factory: sessionmaker[Session],
                    wanted: str | None) -> list[AccountRef]:
    """Every active account (``wanted`` is ``None``), or the one :func:`find_account` finds.
    Raises :class:`NotFoundError` when there is none."""
    with session_factory() as session:
        if wanted is not None:
            account = find_account(session, wanted)
            return [AccountRef(account.id, account.name, account.currency)]
        rows = session.execute(
            select(AdAccount.id, AdAccount.name, AdAccount.currency)
            .where(AdAccount.is_active.is_(True)).order_by(AdAccount.id)).all()
    if not rows:
        raise NotFoundError("there is no active ad account",
                            hint="import insights first with `adsentinel import`")
    return [AccountRef(r.id, r.name, r.currency) for r in rows]


def set_account_locale(*, session_factory: sessionmaker[Session], wanted: str,
                       locale: str | None) -> AccountRef:
    """Set the language of an account's alerts and report (``None``: back to the ``locale``
    setting); ``locale`` is any spelling :func:`adsentinel.i18n.parse_locale` takes. Raises
    :class:`NotFoundError` for an unknown account, ``ValueError`` for an unknown language."""
    from adsentinel.i18n import parse_locale

    stored = parse_locale(locale) if locale is not None else None
    with session_factory() as session, session.begin():
        account = find_account(session, wanted)
        account.locale = stored
        return AccountRef(account.id, account.name, account.currency)


# --- accounts that sync from Meta ---------------------------------------------------------------


@dataclass(frozen=True)
class AccountListing:
    """One row of ``adsentinel accounts list``; the token is named, never shown."""

    id: int
    name: str
    platform_account_id: str | None
    token_env: str | None
    is_active: bool
    result_action_types: str
    last_synced_at: datetime | None
    needs_attention: str | None
    last_sync_status: str | None
    broken_since: datetime | None = None
    failed_in_a_row: int = 0
    currency: str | None = None
    timezone: str | None = None
    #: currency and timezone changes, oldest first ("currency EUR -> BRL from 2026-11-25")
    setting_changes: tuple[str, ...] = ()
    #: the kind of sync failure that set ``needs_attention`` (None: a person's mark)
    needs_attention_kind: str | None = None


def normalise_account_id(value: str) -> str:
    """``act_123`` (a bare ``123`` is accepted); raises :class:`ConfigError` otherwise."""
    candidate = value.strip()
    if candidate.isdigit():
        candidate = f"act_{candidate}"
    if not _ACCOUNT_ID.match(candidate):
        raise ConfigError(f"{value!r} is not a Meta ad account id",
                          hint="use the id from Ads Manager, like act_1234567890")
    return candidate


def add_meta_account(*, session_factory: sessionmaker[Session], platform_account_id: str,
                     token_env: str, name: str | None = None,
                     result_action_types: str | None = None) -> AccountListing:
    """Create the account, or attach the token reference to the one with that id (an account
    imported from CSV keeps its history). Clears ``needs_attention`` and re-activates it."""
    platform_account_id = normalise_account_id(platform_account_id)
    check_token_env_name(token_env)
    if result_action_types is not None:
        result_action_types = ",".join(parse_result_action_types(result_action_types))
    with session_factory() as session, session.begin():
        account = session.scalars(select(AdAccount).where(
            AdAccount.platform_account_id == platform_account_id)).one_or_none()
        wanted_name = name or (account.name if account else platform_account_id)
        clash = session.scalars(select(AdAccount).where(AdAccount.name == wanted_name)).first()
        if clash is not None and (account is None or clash.id != account.id):
            raise ConfigError(f"another account is already named {wanted_name!r}",
                              hint="choose another --name")
        if account is None:
            account = AdAccount(name=wanted_name, platform_account_id=platform_account_id,
                                currency="USD", timezone="UTC")
            session.add(account)
        account.name = wanted_name
        account.credentials_ref = f"{sync_service.CREDENTIALS_ENV_PREFIX}{token_env}"
        account.is_active = True
        account.needs_attention = account.needs_attention_kind = None
        if result_action_types is not None:
            account.result_action_types = result_action_types
        session.flush()
        log.info("account %r (%s) syncs with the token in $%s", account.name,
                 platform_account_id, token_env)
        return _listing(session, account, default_types="")


def check_token_env_name(token_env: str) -> None:
    """Refuse a token passed where its variable's NAME belongs, or a name that is not one."""
    if _looks_like_a_token(token_env):
        raise ConfigError("--token-env looks like an access token itself; it was not stored",
                          hint="put the token in an environment variable and pass its NAME, "
                               "e.g. --token-env META_TOKEN")
    if not _ENV_NAME.match(token_env):
        raise ConfigError(f"{token_env!r} is not an environment variable name",
                          hint="pass the variable's NAME, e.g. --token-env META_TOKEN, never "
                               "the token itself")


def token_from_env(token_env: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The token in ``token_env``; a missing variable is refused with the line to run."""
    check_token_env_name(token_env)
    token = (os.environ if environ is None else environ).get(token_env, "").strip()
    if not token:
        raise CredentialsError(
            f"{token_env} is not set in this shell, so the token cannot be proved; nothing "
            "was stored",
            hint=f"run  export {token_env}='EAA...'  (the system user's access token, with "
                 "ads_read) and run this command again; set it too wherever `adsentinel sync`, "
                 "`run` or the workers run")
    return token


def probe_meta_account(*, settings: Settings, platform_account_id: str, token_env: str,
                       environ: Mapping[str, str] | None = None,
                       client_factory: sync_service.ClientFactory | None = None) -> AccountInfo:
    """Read the ad account once with the token in ``token_env``: proves the token before
    anything is stored. Raises :class:`CredentialsError` (variable not set),
    :class:`MetaAuthError` (token refused) or :class:`MetaApiError`."""
    platform_account_id = normalise_account_id(platform_account_id)
    token = token_from_env(token_env, environ=environ)
    client = (client_factory or sync_service.default_client_factory)(
        platform_account_id, token, sync_service.client_options(settings, environ=environ), None)
    return parse_account(client.account())


@dataclass(frozen=True)
class DiscoveredAccount:
    """An ad account the token can read, as ``accounts discover`` lists it."""

    info: AccountInfo
    status: str
    added_as: str | None  # the adsentinel account already syncing it, if any


def discover_meta_accounts(*, session_factory: sessionmaker[Session], settings: Settings,
                           token_env: str, business_id: str | None = None,
                           environ: Mapping[str, str] | None = None,
                           client_factory: sync_service.ClientFactory | None = None
                           ) -> list[DiscoveredAccount]:
    """The ad accounts the token in ``token_env`` can read (``me/adaccounts``, or a business's
    owned and client ad accounts), with whether adsentinel already syncs each."""
    if business_id is not None and not business_id.isdigit():
        raise ConfigError(f"--business {business_id!r} is not a Meta business id",
                          hint="use the numeric id from Business Settings > Business info")
    token = token_from_env(token_env, environ=environ)
    client = (client_factory or sync_service.default_client_factory)(
        "me", token, sync_service.client_options(settings, environ=environ), None)
    infos = sorted((parse_account(item) for item in client.readable_ad_accounts(business_id)),
                   key=lambda info: ((info.name or "").lower(), info.platform_account_id))
    with session_factory() as session:
        known = dict(session.execute(select(AdAccount.platform_account_id, AdAccount.name).where(
            AdAccount.credentials_ref.is_not(None))).all())
    statuses = sync_service.ACCOUNT_STATUSES
    return [DiscoveredAccount(info, statuses.get(info.account_status or 0,
                                                 str(info.account_status)),
                              known.get(info.platform_account_id)) for info in infos]


def record_account_facts(*, session_factory: sessionmaker[Session], account_id: int,
                         info: AccountInfo, now: datetime | None = None) -> None:
    """Store the currency and timezone Meta gave (they decide money formats and "today"); a
    change on an account synced before is recorded (:mod:`adsentinel.sync.account_changes`)."""
    with session_factory() as session, session.begin():
        account = session.get_one(AdAccount, account_id)
        apply_account_settings(session, account, currency=info.currency, timezone=info.timezone,
                               now=now or datetime.now(UTC))


def _looks_like_a_token(value: str) -> bool:
    """Meta user and system-user tokens start with EAA and run to 100+ characters."""
    return (value.startswith("EAA") and len(value) >= 32) or len(value) > 100


def set_account_active(*, session_factory: sessionmaker[Session], wanted: str,
                       active: bool) -> AccountListing:
    """Disable (no sync, no detection) or enable an account; enabling clears needs_attention."""
    with session_factory() as session, session.begin():
        account = find_account(session, wanted)
        account.is_active = active
        if active:
            account.needs_attention = account.needs_attention_kind = None
        return _listing(session, account, default_types="")


def list_accounts(*, session_factory: sessionmaker[Session],
                  settings: Settings) -> list[AccountListing]:
    """Every account with how it syncs and how its last sync went."""
    with session_factory() as session:
        accounts = session.scalars(select(AdAccount).order_by(AdAccount.id)).all()
        return [_listing(session, a, default_types=settings.result_action_types,
                         settings=settings) for a in accounts]


def _listing(session: Session, account: AdAccount, *, default_types: str,
             settings: Settings | None = None) -> AccountListing:
    last_status = session.scalar(select(SyncRun.status).where(SyncRun.account_id == account.id)
                                 .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1))
    health = (sync_service.stored_sync_health(session, account, settings)
              if settings is not None else None)
    changes = setting_changes(session, [account.id])[account.id]
    ref = account.credentials_ref
    return AccountListing(
        id=account.id, name=account.name, platform_account_id=account.platform_account_id,
        token_env=(ref[len(sync_service.CREDENTIALS_ENV_PREFIX):]
                   if ref and ref.startswith(sync_service.CREDENTIALS_ENV_PREFIX) else ref),
        is_active=account.is_active,
        result_action_types=account.result_action_types or default_types,
        last_synced_at=account.last_synced_at, needs_attention=account.needs_attention,
        needs_attention_kind=account.needs_attention_kind, last_sync_status=last_status,
        broken_since=health.since if health and health.broken else None,
        failed_in_a_row=health.failed_in_a_row if health else 0,
        currency=account.currency, timezone=account.timezone,
        setting_changes=tuple(change.describe() for change in changes))
