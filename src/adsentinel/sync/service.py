"""Syncing an ad account from the Meta Marketing API into the database. Adding the accounts that
sync, each with its token's variable, is :mod:`adsentinel.accounts.service`'s job.

One sync of one account:

1. read the account, its campaigns, ad sets and ads, and the ad-level daily insights of the
   window (the last ``sync_window_days`` days up to today, so that Meta's restatements replace
   old numbers; the first sync of an account reaches back ``isolation_forest_history_days`` so
   that the models have history to learn from);
2. validate every object (:mod:`adsentinel.sync.payloads`); a malformed one fails the sync;
3. pull and store the insights **one date range at a time, newest first** (yesterday and
   today, then a week at a time going back; ``--since`` at most Meta's 37 months), each range
   in its own transaction, so that a pull failing half-way leaves the freshest days stored.
   The first range's transaction also writes the account's currency and timezone (a change is
   recorded with its day, :mod:`adsentinel.sync.account_changes`, from which detection and
   training read the history) and the structure (names, statuses, parents); each range's
   transaction, the attribution setting of the ad sets it read first. Ad days go through the CSV
   importer's own upsert, which re-aggregates ad set and campaign days and moves ``updated_at``
   only on days whose numbers changed, so detection re-judges exactly the restated days; ad
   set and campaign reach is then set to Meta's own figure at their level. Insights include
   deleted and archived ads (Meta leaves them out unless asked), so deleting an ad does not
   rewrite history: a stored ad day Meta does not report is kept (``ad_days_unreported``); a
   day changes only when Meta reports other numbers for it, zero included. Conversions and
   revenue (the result types' ``actions`` / ``action_values``) never replace a stored value
   with nothing. Today's row is partial (``is_complete`` false, ``as_of`` the pull time).

Every sync leaves a ``sync_runs`` row. An expired or invalid token (code 190), a missing
permission, a retired Graph API version (2635) or a missing ``appsecret_proof`` marks the account
``needs_attention`` and it is skipped until ``adsentinel accounts add`` or ``adsentinel accounts
enable`` clears the mark; other accounts are not affected. Such a mark, or
``sync_alert_after_failures`` failed runs in a row, sends one "sync broken" message to each of
the account's alert channels (:mod:`adsentinel.sync.health`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.alerts import outbox
from adsentinel.alerts.messages import subject_of
from adsentinel.config import Settings
from adsentinel.db.models import (
    AdAccount,
    AlertChannel,
    DailyInsight,
    Entity,
    SyncRun,
    TrainingStatus,
    table_of,
)
from adsentinel.errors import AdsentinelError, ConfigError, InputFileError, NotFoundError
from adsentinel.ingest.csv_import import upsert_ad_insight_rows
from adsentinel.ingest.csv_rows import InsightRow
from adsentinel.sync.account_changes import apply_account_settings
from adsentinel.sync.error_kinds import meta_error_kind
from adsentinel.sync.errors import (
    CredentialsError,
    MetaApiError,
    MetaAuthError,
    MetaJobsTooSlowError,
    SyncPayloadError,
    scrub_secrets,
)
from adsentinel.sync.health import SYNC_BROKEN, RunOutcome, SyncHealth, broken_payload, sync_health
from adsentinel.sync.meta_client import ClientOptions, MetaAccountClient, Progress
from adsentinel.sync.payloads import (
    ADSET_REACH_FIELDS,
    PARENT_REACH_FIELDS,
    StructureRecord,
    parse_account,
    parse_ad,
    parse_adset,
    parse_campaign,
    parse_insight,
    parse_parent_reach,
    parse_result_action_types,
)
from adsentinel.timezones import zone_or_utc

log = logging.getLogger(__name__)

#: (platform account id, token, options, progress callback) -> client; tests point it elsewhere
ClientFactory = Callable[[str, str, ClientOptions, Progress | None], MetaAccountClient]

#: an account's credentials_ref names the environment variable of its token: ``env:VAR``
CREDENTIALS_ENV_PREFIX = "env:"
_HEALTH_RUNS = 200  # runs read to find a failure streak; a longer one shows as this long
_STRUCTURE_BATCH = 1_000  # rows per INSERT: 6 parameters each stays far below SQLite's limit


@dataclass
class SyncSummary:
    """What one account's sync did. ``status`` is succeeded, failed, needs_attention or skipped."""

    account_id: int
    account_name: str
    status: str
    reason: str | None = None
    since: date | None = None
    until: date | None = None
    campaigns: int = 0
    adsets: int = 0
    ads: int = 0
    insight_rows: int = 0
    days_new: int = 0
    days_restated: int = 0
    ad_days_restated: int = 0
    ad_days_zeroed: int = 0
    ad_days_unreported: int = 0
    ranges_stored: int = 0
    notes: list[str] = field(default_factory=list)
    attribution_settings: dict[str, int] = field(default_factory=dict)  # setting -> ad sets
    #: the highest share of each of Meta's rate-limit budgets seen during the run (0-100+)
    api_usage_percent: dict[str, float] = field(default_factory=dict)
    api_calls: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0
    duration_seconds: float = 0.0
    error_exit_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (task results, the sync_runs counts)."""
        result = dict(self.__dict__)
        result["since"] = self.since.isoformat() if self.since else None
        result["until"] = self.until.isoformat() if self.until else None
        return result


# --- credentials, and which accounts can sync -------------------------------------------------


def resolve_token(credentials_ref: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The access token that ``credentials_ref`` (``env:VAR``) points to."""
    environ = os.environ if environ is None else environ
    if not credentials_ref.startswith(CREDENTIALS_ENV_PREFIX):
        raise CredentialsError(f"credentials reference {credentials_ref!r} is not understood",
                               hint="run `adsentinel accounts add --token-env VAR` again")
    name = credentials_ref[len(CREDENTIALS_ENV_PREFIX):]
    token = environ.get(name, "").strip()
    if not token:
        raise CredentialsError(f"the environment variable {name} that holds the Meta access "
                               "token is not set in this process",
                               hint=f"export {name}=... where adsentinel runs (workers included)")
    return token


#: Meta's ``account_status`` codes (Marketing API reference, Ad Account)
ACCOUNT_STATUSES = {1: "ACTIVE", 2: "DISABLED", 3: "UNSETTLED", 7: "PENDING_RISK_REVIEW",
                    8: "PENDING_SETTLEMENT", 9: "IN_GRACE_PERIOD", 100: "PENDING_CLOSURE",
                    101: "CLOSED", 201: "ANY_ACTIVE", 202: "ANY_CLOSED"}


def syncable_account_ids(*, session_factory: sessionmaker[Session]) -> list[int]:
    """Active accounts with a Meta id and a token reference, not waiting for attention."""
    with session_factory() as session:
        return list(session.scalars(select(AdAccount.id).where(
            AdAccount.is_active.is_(True), AdAccount.needs_attention.is_(None),
            AdAccount.platform_account_id.is_not(None), AdAccount.credentials_ref.is_not(None))
            .order_by(AdAccount.id)))


def is_syncable(*, session_factory: sessionmaker[Session], account_id: int) -> bool:
    """Whether the account has what a sync needs (CSV-only accounts do not)."""
    with session_factory() as session:
        account = session.get(AdAccount, account_id)
        return bool(account and account.platform_account_id and account.credentials_ref)


# --- the sync ---------------------------------------------------------------------------------


def client_options(settings: Settings, *,
                   environ: Mapping[str, str] | None = None) -> ClientOptions:
    """The client's patience, politeness and address, from the settings; the app secret (for
    ``appsecret_proof``) from the environment variable ``meta_app_secret_env`` names."""
    return ClientOptions(slowdown_percent=settings.sync_usage_slowdown_percent,
                         poll_timeout_seconds=float(settings.sync_async_poll_timeout),
                         graph_url=settings.meta_graph_url, api_version=settings.meta_api_version,
                         connect_timeout=settings.sync_connect_timeout,
                         read_timeout=settings.sync_read_timeout,
                         app_secret=_app_secret(settings, environ))


def _app_secret(settings: Settings, environ: Mapping[str, str] | None) -> str | None:
    name = settings.meta_app_secret_env
    if not name:
        return None
    secret = (os.environ if environ is None else environ).get(name, "").strip()
    if not secret:
        raise CredentialsError(
            f"ADSENTINEL_META_APP_SECRET_ENV names {name}, which is not set in this process",
            hint=f"export {name}=<your Meta app's secret> where adsentinel runs, or unset "
                 "ADSENTINEL_META_APP_SECRET_ENV if the app does not require appsecret_proof")
    return secret


def default_client_factory(platform_account_id: str, token: str, options: ClientOptions,
                           on_progress: Progress | None = None) -> MetaAccountClient:
    """A client on the real Graph API."""
    return MetaAccountClient(platform_account_id, token, options=options,
                             on_progress=on_progress)


def sync_account(*, session_factory: sessionmaker[Session], settings: Settings, account_id: int,
                 since: date | None = None, client_factory: ClientFactory | None = None,
                 environ: Mapping[str, str] | None = None, now: datetime | None = None,
                 on_progress: Progress | None = None,
                 job_wait_allowance: float | None = None) -> SyncSummary:
    """Pull one account from Meta and store it in one transaction; see the module docstring.

    ``job_wait_allowance``: seconds this run may wait for report jobs in total (``None``: each
    job up to ``SYNC_ASYNC_POLL_TIMEOUT``, however many there are).

    Returns a summary whatever Meta did (failed, needs_attention and skipped included); only
    database errors propagate, so that a task can retry them.
    """
    started = time.monotonic()
    with session_factory() as session:
        account = session.get(AdAccount, account_id)
        if account is None:
            raise NotFoundError(f"no ad account with id {account_id}")
        summary = SyncSummary(account_id=account.id, account_name=account.name, status="skipped")
        skip = _why_not_synced(account)
        credentials_ref, platform_id = account.credentials_ref, account.platform_account_id
    if skip:
        summary.reason = skip
        log.info("account %r: sync skipped (%s)", summary.account_name, skip)
        return summary

    assert credentials_ref is not None and platform_id is not None  # else _why_not_synced skips
    run_id = _start_run(session_factory, account_id)
    token: str | None = None
    client: MetaAccountClient | None = None
    try:
        token = resolve_token(credentials_ref, environ=environ)
        options = replace(client_options(settings, environ=environ),
                          job_wait_allowance_seconds=job_wait_allowance)
        client = (client_factory or default_client_factory)(platform_id, token, options,
                                                            on_progress)
        _pull_and_store(client, session_factory=session_factory, settings=settings,
                        account_id=account_id, since=since, now=now, summary=summary)
        _copy_call_stats(client, summary)
        _finish_succeeded(session_factory, run_id, account_id, summary,
                          now or datetime.now(UTC))
        summary.status = "succeeded"
    except MetaAuthError as exc:
        _copy_call_stats(client, summary)
        message = scrub_secrets(str(exc.message), [token])
        _finish_failed(session_factory, run_id, account_id, summary, message,
                       failure_kind(exc), attention=_attention_text(exc, credentials_ref),
                       settings=settings)
        summary.status, summary.error_exit_code = "needs_attention", exc.exit_code
        summary.reason = message
        log.error("account %r needs attention: %s", summary.account_name, message)
    except AdsentinelError as exc:  # Meta refused, malformed payload, missing token, settings
        _copy_call_stats(client, summary)
        message = scrub_secrets(str(exc), [token])
        _finish_failed(session_factory, run_id, account_id, summary, message,
                       failure_kind(exc), settings=settings)
        summary.status, summary.reason, summary.error_exit_code = "failed", message, exc.exit_code
        log.error("account %r: sync failed (%d date range(s) stored before): %s",
                  summary.account_name, summary.ranges_stored, message)
    except BaseException as exc:
        try:
            _finish_failed(session_factory, run_id, account_id, summary,
                           scrub_secrets(f"{type(exc).__name__}: {exc}", [token]),
                           failure_kind(exc), settings=settings)
        except Exception:  # the database may be what failed; report the cause
            log.exception("account %r: could not record the failed sync", summary.account_name)
        raise
    finally:
        _copy_call_stats(client, summary)
        summary.duration_seconds = round(time.monotonic() - started, 3)
    if summary.status == "succeeded":
        _log_synced(summary)
    return summary


def _log_synced(summary: SyncSummary) -> None:
    log.info("account %r synced %s..%s: %d ad-day rows, %d restated day(s), %.1f s",
             summary.account_name, summary.since, summary.until, summary.insight_rows,
             summary.days_restated, summary.duration_seconds)


def _pull_and_store(client: MetaAccountClient, *, session_factory: sessionmaker[Session],
                    settings: Settings, account_id: int, since: date | None,
                    now: datetime | None, summary: SyncSummary) -> None:
    """The account's structure, then its insights range by range, each range stored in its
    own transaction as it arrives."""
    pulled = _pull_structure(client, session_factory=session_factory, settings=settings,
                             account_id=account_id, since=since, now=now, summary=summary)
    for first, last in date_ranges(pulled.since, pulled.until):
        insights = client.insights(
            first, last, expected_rows=max(pulled.ads, 1) * ((last - first).days + 1),
            convert=lambda row: parse_insight(row, result_action_types=pulled.types),
            campaign_ids=pulled.campaign_ids)
        parent_reach, attribution = _parent_reach(client, pulled, first, last)
        _store_range(session_factory, account_id=account_id, pulled=pulled,
                     insights=insights, parent_reach=parent_reach, attribution=attribution,
                     first=first, last=last, summary=summary, now=now or datetime.now(UTC))
    summary.attribution_settings = dict(Counter(pulled.attribution.values()))


def _copy_call_stats(client: MetaAccountClient | None, summary: SyncSummary) -> None:
    if client is None:
        return
    summary.api_calls = client.stats.calls
    summary.throttled = client.stats.throttled
    summary.waited_seconds = round(client.stats.waited_seconds, 1)
    summary.api_usage_percent = {budget: round(percent, 1) for budget, percent
                                 in sorted(client.stats.usage_by_budget.items())}


def _why_not_synced(account: AdAccount) -> str | None:
    if not account.platform_account_id or not account.credentials_ref:
        return "no Meta credentials (data comes from CSV imports)"
    if not account.is_active:
        return "disabled"
    if account.needs_attention:
        return f"needs attention: {account.needs_attention}"
    return None


def failure_kind(exc: BaseException) -> str:
    """The stored kind of a failed sync (:mod:`adsentinel.sync.error_kinds`): from Meta's error
    code and subcode when Meta answered, else from what failed."""
    if isinstance(exc, MetaJobsTooSlowError):
        return "report_jobs_slow"
    if isinstance(exc, MetaApiError):
        return meta_error_kind(exc.code, exc.subcode, exc.message)
    if isinstance(exc, SyncPayloadError):
        return "bad_response"
    if isinstance(exc, CredentialsError):
        return "token_missing"
    return "other"


def _attention_text(exc: MetaAuthError, credentials_ref: str | None) -> str:
    """What broke and what a person does about it, in one line."""
    variable = (credentials_ref or "")[len(CREDENTIALS_ENV_PREFIX):] or "the token variable"
    if exc.code in (102, 190):
        what = "Meta access token expired or invalid"
    elif exc.code == 2635:
        return f"Graph API version retired (code 2635): {exc.hint}"
    elif "appsecret_proof" in exc.message:
        return f"Meta app requires appsecret_proof (code {exc.code}): {exc.hint}"
    else:
        what = "Meta access token lacks permission on this account"
    return (f"{what} (code {exc.code}): create a new token with ads_read, "
            f"set {variable}, then run `adsentinel accounts enable` (or `accounts add`)")


#: Meta keeps insights for 37 months
RETENTION_MONTHS = 37
#: days of the first (freshest) range, then of each range going back
FIRST_RANGE_DAYS, RANGE_DAYS = 2, 7


def date_ranges(since: date, until: date) -> list[tuple[date, date]]:
    """``since``..``until`` cut into ranges, newest first: the last ``FIRST_RANGE_DAYS`` days,
    then ``RANGE_DAYS`` at a time going back."""
    ranges: list[tuple[date, date]] = []
    last, size = until, FIRST_RANGE_DAYS
    while last >= since:
        first = max(since, last - timedelta(days=size - 1))
        ranges.append((first, last))
        last, size = first - timedelta(days=1), RANGE_DAYS
    return ranges


def earliest_insights_day(today: date) -> date:
    """The first day Meta still has insights for: ``RETENTION_MONTHS`` months before today."""
    month_index = today.year * 12 + today.month - 1 - RETENTION_MONTHS
    year, month = divmod(month_index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(today.day, (following - timedelta(days=1)).day))


@dataclass
class _Pulled:
    """The account and its structure as read from Meta, validated; the window to pull."""

    currency: str
    timezone: str
    since: date
    until: date
    structure: list[StructureRecord]
    types: tuple[str, ...]
    ads: int
    adsets: int = 0
    campaigns: int = 0
    structure_stored: bool = False
    attribution: dict[str, str] = field(default_factory=dict)  # ad set id -> its setting

    @property
    def campaign_ids(self) -> tuple[str, ...]:
        """The listed campaigns (a failing report job of one day is split by them)."""
        return tuple(r.platform_id for r in self.structure if r.level == "campaign")


def _pull_structure(client: MetaAccountClient, *, session_factory: sessionmaker[Session],
                    settings: Settings, account_id: int, since: date | None,
                    now: datetime | None, summary: SyncSummary) -> _Pulled:
    """The account node and every campaign, ad set and ad; the window (clamped to Meta's
    retention, with a note saying so)."""
    info = parse_account(client.account())
    if info.platform_account_id != client.platform_account_id:
        raise SyncPayloadError(f"Meta answered for {info.platform_account_id} when asked for "
                               f"{client.platform_account_id}")
    try:
        zone = ZoneInfo(info.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SyncPayloadError(f"Meta returned a malformed ad account: field 'timezone_name' is "
                               f"{info.timezone!r}, expected an IANA timezone") from None
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    with session_factory() as session:
        account = session.get_one(AdAccount, account_id)
        types = parse_result_action_types(account.result_action_types
                                          or settings.result_action_types)
        has_history = session.execute(select(func.count()).select_from(Entity).where(
            Entity.account_id == account_id)).scalar_one() > 0
    if since is None:
        days = settings.sync_window_days if has_history else max(
            settings.sync_window_days, settings.isolation_forest_history_days)
        since = today - timedelta(days=days - 1)
    if since > today:
        raise ConfigError(f"--since {since} is after today ({today}) in the account's timezone "
                          f"{info.timezone}")
    if info.account_status not in (None, 1, 201):  # 1 ACTIVE, 201 ANY_ACTIVE
        status = ACCOUNT_STATUSES.get(info.account_status, str(info.account_status))
        summary.notes.append(f"Meta reports the ad account as {status}: it delivers nothing "
                             "until that is resolved in Ads Manager")
        log.warning("account %r: %s", summary.account_name, summary.notes[-1])
    earliest = earliest_insights_day(today)
    if since < earliest:
        summary.notes.append(f"--since {since} is older than Meta keeps insights "
                             f"({RETENTION_MONTHS} months): pulled from {earliest} instead")
        log.warning("account %r: %s", summary.account_name, summary.notes[-1])
        since = earliest
    campaigns = [parse_campaign(c) for c in client.campaigns()]
    adsets = [parse_adset(s) for s in client.adsets()]
    ads = [parse_ad(a) for a in client.ads()]
    return _Pulled(currency=info.currency, timezone=info.timezone, since=since, until=today,
                   structure=campaigns + adsets + ads, types=types, ads=len(ads),
                   adsets=len(adsets), campaigns=len(campaigns))


def _parent_reach(client: MetaAccountClient, pulled: _Pulled, first: date, last: date
                  ) -> tuple[dict[tuple[str, str, date], int], dict[str, str]]:
    """Each ad set's and campaign's own daily reach, from insights at their level (the sum of
    their ads' reach counts a person reached by two ads twice), and the attribution setting of
    each ad set this run has not read yet (ranges come newest first, so the newest day's
    setting is the one kept; also recorded on ``pulled``)."""
    days = (last - first).days + 1
    found: dict[tuple[str, str, date], int] = {}
    newest: dict[str, tuple[date, str]] = {}
    for level, count, fields in (("adset", pulled.adsets, ADSET_REACH_FIELDS),
                                 ("campaign", pulled.campaigns, PARENT_REACH_FIELDS)):
        rows = client.insights(first, last, level=level, fields=fields,
                               expected_rows=max(count, 1) * days,
                               campaign_ids=pulled.campaign_ids,
                               convert=partial(parse_parent_reach, level=level))
        for platform_id, day, reach, attribution in rows:
            found[(level, platform_id, day)] = reach
            if attribution and platform_id not in pulled.attribution and (
                    platform_id not in newest or newest[platform_id][0] <= day):
                newest[platform_id] = (day, attribution)
    settings_read = {platform_id: setting for platform_id, (_, setting) in newest.items()}
    pulled.attribution.update(settings_read)
    return found, settings_read


def _store_attribution(session: Session, account_id: int, attribution: dict[str, str]) -> None:
    """Each ad set's attribution setting as read (``entities.attribution_setting``)."""
    if not attribution:
        return
    table = table_of(Entity)
    session.connection().execute(
        table.update().where(table.c.account_id == account_id, table.c.level == "adset",
                             table.c.platform_id == bindparam("b_platform_id"))
        .values(attribution_setting=bindparam("b_setting")),
        [{"b_platform_id": pid, "b_setting": setting} for pid, setting in attribution.items()])


def _unlisted_in_insights(structure: list[StructureRecord],
                          insights: list[InsightRow]) -> list[StructureRecord]:
    """Entities that delivered in the window but that Meta's lists left out (archived or
    deleted since): status UNKNOWN, names and parents from the insights rows."""
    listed = {(r.level, r.platform_id) for r in structure}
    unlisted: list[StructureRecord] = []
    for row in insights:
        for record in (
                StructureRecord("campaign", row.campaign_id, row.campaign_name, "UNKNOWN", None),
                StructureRecord("adset", row.adset_id, row.adset_name, "UNKNOWN",
                                row.campaign_id),
                StructureRecord("ad", row.ad_id, row.ad_name, "UNKNOWN", row.adset_id,
                                row.campaign_id)):
            if (record.level, record.platform_id) not in listed:
                listed.add((record.level, record.platform_id))
                unlisted.append(record)
    return unlisted


def _start_run(session_factory: sessionmaker[Session], account_id: int) -> int:
    with session_factory() as session, session.begin():
        run = SyncRun(account_id=account_id, status=TrainingStatus.running.value)
        session.add(run)
        session.flush()
        return run.id


def _finish_failed(session_factory: sessionmaker[Session], run_id: int, account_id: int,
                   summary: SyncSummary, message: str, kind: str,
                   attention: str | None = None, *, settings: Settings) -> None:
    """Record the failed run with its kind of failure (and the account's attention mark of the
    same kind) and, in the same transaction, tell the account's alert channels once when the
    sync is now broken (see :mod:`adsentinel.sync.health`)."""
    with session_factory() as session, session.begin():
        run = session.get_one(SyncRun, run_id)
        run.status = TrainingStatus.failed.value
        run.finished_at = datetime.now(UTC)
        if summary.since is not None:  # a failed run keeps what it managed to store
            run.since, run.until = summary.since, summary.until
        run.counts = {name: getattr(summary, name) for name in _RUN_COUNTS}
        run.error, run.error_kind = message, kind
        account = session.get_one(AdAccount, account_id)
        if attention is not None:
            account.needs_attention, account.needs_attention_kind = attention, kind
        session.flush()
        health = stored_sync_health(session, account, settings)
        if health.broken:
            queued = _queue_broken_message(session, account, health, settings)
            if queued:
                log.warning("account %r: sync broken since %s; %d alert channel(s) told",
                            account.name, health.since, queued)


def stored_sync_health(session: Session, account: AdAccount, settings: Settings) -> SyncHealth:
    """Whether the account's sync is broken, judged on its last stored runs and its mark."""
    runs = session.execute(
        select(SyncRun.id, SyncRun.status, SyncRun.started_at, SyncRun.error,
               SyncRun.error_kind)
        .where(SyncRun.account_id == account.id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(_HEALTH_RUNS)).all()
    return sync_health([RunOutcome(*run) for run in runs],
                       needs_attention=account.needs_attention,
                       alert_after=settings.sync_alert_after_failures)


def _queue_broken_message(session: Session, account: AdAccount, health: SyncHealth,
                          settings: Settings) -> int:
    """One "sync broken" message per active alert channel and failure streak."""
    payload = broken_payload(account_id=account.id, account_name=account.name,
                             currency=account.currency, health=health,
                             needs_attention=account.needs_attention,
                             needs_attention_kind=account.needs_attention_kind,
                             url=settings.public_url.rstrip("/") + "/",
                             locale=account.locale or settings.locale)
    channels = session.scalars(select(AlertChannel.id).where(
        AlertChannel.account_id == account.id, AlertChannel.is_active.is_(True))).all()
    now = datetime.now(UTC)
    messages = [outbox.NewMessage(
        channel_id=channel_id, anomaly_id=None, kind=SYNC_BROKEN,
        idempotency_key=hashlib.sha256(
            f"{channel_id}|{SYNC_BROKEN}|{health.first_failed_run_id}".encode()).hexdigest(),
        subject=subject_of(payload), payload=payload, next_attempt_at=now)
        for channel_id in channels]
    return outbox.enqueue(session, messages, now)


def _store_range(session_factory: sessionmaker[Session], *, account_id: int, pulled: _Pulled,
                 insights: list[InsightRow], parent_reach: dict[tuple[str, str, date], int],
                 attribution: dict[str, str], first: date, last: date, summary: SyncSummary,
                 now: datetime) -> None:
    """Write one date range in one transaction: the account and the structure with the first
    range, the entities only the insights name, the ad days (parents re-aggregated), then the
    parents' own reach and the ad sets' attribution settings."""
    source = f"Meta insights of account {account_id}"
    unlisted = _unlisted_in_insights(pulled.structure, insights)
    with session_factory() as session, session.begin():
        account = session.get_one(AdAccount, account_id)
        if not pulled.structure_stored:
            for change in apply_account_settings(session, account, currency=pulled.currency,
                                                 timezone=pulled.timezone, now=now):
                summary.notes.append(
                    f"the account's {change.setting} changed from {change.old_value} to "
                    f"{change.new_value}: its days before {change.changed_on} are kept but no "
                    "longer compared (detection and training start there)")
            session.flush()  # the importer reads the timezone (what "today" is) with plain SQL
        counts = _upsert_structure(session, account_id, unlisted + (
            [] if pulled.structure_stored else pulled.structure))
        existing = _stored_ad_days(session, account_id, first, last)
        parents_before = _stored_parent_days(session, account_id, first, last)
        written = _rows_to_write(insights, pulled.until, existing)
        if written.rows:
            try:
                upserted = upsert_ad_insight_rows(session.connection(), written.rows,
                                                  account_id=account_id, source=source, now=now)
            except InputFileError as exc:
                raise SyncPayloadError(
                    f"Meta's insights of {first}..{last} contradict each other or what is "
                    "stored: " + "; ".join(str(p) for p in exc.problems),
                    hint="nothing of this date range was written") from None
            summary.days_new += upserted.days_new
        _apply_parent_reach(session, account_id, parent_reach, parents_before)
        _store_attribution(session, account_id, attribution)
        if not pulled.structure_stored:
            summary.campaigns, summary.adsets, summary.ads = (counts["campaign"],
                                                               counts["adset"], counts["ad"])
        summary.insight_rows += len(insights)
        summary.days_restated += len(written.restated_days)
        summary.ad_days_restated += written.ad_days_restated
        summary.ad_days_zeroed += written.ad_days_zeroed
        summary.ad_days_unreported += written.ad_days_unreported
        summary.ranges_stored += 1
        summary.since, summary.until = first, pulled.until  # what is stored so far
        account.last_synced_at = now
    pulled.structure_stored = True


_PARENT_COLUMNS = ("spend", "impressions", "clicks", "leads", "reach", "conversions", "revenue",
                   "is_complete", "as_of")


def _stored_parent_days(session: Session, account_id: int, first: date,
                        last: date) -> dict[tuple[int, date], tuple[tuple, datetime]]:
    """Ad set and campaign days of the range as stored: (numbers, updated_at)."""
    columns = [getattr(DailyInsight, name) for name in _PARENT_COLUMNS]
    rows = session.execute(
        select(DailyInsight.entity_id, DailyInsight.day, DailyInsight.updated_at, *columns)
        .join(Entity, Entity.id == DailyInsight.entity_id)
        .where(Entity.account_id == account_id, Entity.level.in_(("adset", "campaign")),
               DailyInsight.day >= first, DailyInsight.day <= last)).all()
    return {(r[0], r[1]): (tuple(r[3:]), r[2]) for r in rows}


def _apply_parent_reach(session: Session, account_id: int,
                        parent_reach: dict[tuple[str, str, date], int],
                        before: dict[tuple[int, date], tuple[tuple, datetime]]) -> None:
    """Set the parents' reach to what Meta reports for them. The importer has just written the
    sum of their ads' reach: a day whose numbers end up as they were stored keeps its
    ``updated_at``, so that it is not judged again as if restated."""
    if not parent_reach:
        return
    ids = {level: _entity_ids(session, account_id, level) for level in ("adset", "campaign")}
    updates: list[dict[str, Any]] = [
        {"b_entity": ids[level][pid], "b_day": day, "b_reach": reach}
        for (level, pid, day), reach in parent_reach.items() if pid in ids[level]]
    table = table_of(DailyInsight)
    conn = session.connection()
    if updates:
        conn.execute(table.update().where(table.c.entity_id == bindparam("b_entity"),
                                          table.c.day == bindparam("b_day"))
                     .values(reach=bindparam("b_reach")), updates)
    keys = {(u["b_entity"], u["b_day"]) for u in updates}
    after = _stored_parent_days_by_keys(session, keys)
    unchanged = [{"b_entity": key[0], "b_day": key[1], "b_updated": before[key][1]}
                 for key, numbers in after.items()
                 if key in before and numbers == before[key][0]]
    if unchanged:  # untyped parameters: the timestamp goes back exactly as the importer wrote it
        conn.execute(text("UPDATE daily_insights SET updated_at = :b_updated "
                          "WHERE entity_id = :b_entity AND day = :b_day"), unchanged)


def _stored_parent_days_by_keys(session: Session,
                                keys: set[tuple[int, date]]) -> dict[tuple[int, date], tuple]:
    if not keys:
        return {}
    columns = [getattr(DailyInsight, name) for name in _PARENT_COLUMNS]
    days = {day for _, day in keys}
    rows = session.execute(select(DailyInsight.entity_id, DailyInsight.day, *columns).where(
        DailyInsight.entity_id.in_({entity for entity, _ in keys}),
        DailyInsight.day >= min(days), DailyInsight.day <= max(days))).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if (r[0], r[1]) in keys}


def _finish_succeeded(session_factory: sessionmaker[Session], run_id: int, account_id: int,
                      summary: SyncSummary, now: datetime) -> None:
    with session_factory() as session, session.begin():
        run = session.get_one(SyncRun, run_id)
        run.status = TrainingStatus.succeeded.value
        run.since, run.until = summary.since, summary.until
        run.finished_at = datetime.now(UTC)
        run.counts = {name: getattr(summary, name) for name in _RUN_COUNTS}
        if summary.notes:
            run.counts["notes"] = list(summary.notes)


_RUN_COUNTS = ("campaigns", "adsets", "ads", "insight_rows", "days_new", "days_restated",
               "ad_days_restated", "ad_days_zeroed", "ad_days_unreported", "ranges_stored",
               "api_calls", "throttled", "waited_seconds", "attribution_settings",
               "api_usage_percent")


def _upsert_structure(session: Session, account_id: int,
                      records: list[StructureRecord]) -> dict[str, int]:
    """Campaigns, then ad sets, then ads: name, status and parent as Meta says.

    The CSV importer's entity upsert knows neither statuses nor entities without delivery, so the
    structure is written here; the ad days then go through the importer. A parent Meta did not
    list (an archived ad set whose ad still spent in the window) is created with status UNKNOWN,
    under its campaign when the ad names it, so that the campaign's days still add it up.
    """
    conn = session.connection()
    insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    counts = {"campaign": 0, "adset": 0, "ad": 0}
    ids: dict[str, dict[str, int]] = {}
    for level, parent_level in (("campaign", None), ("adset", "campaign"), ("ad", "adset")):
        level_records = [r for r in records if r.level == level]
        counts[level] = len(level_records)
        if parent_level is not None:
            _create_unlisted_parents(session, conn, insert, account_id, ids, level_records,
                                     parent_level)
        rows = [{"account_id": account_id, "level": level, "platform_id": r.platform_id,
                 "parent_id": _parent_entity_id(ids, parent_level, r),
                 "name": r.name, "status": r.status} for r in level_records]
        _insert_entities(conn, insert, rows, update_status=True)
        ids[level] = _entity_ids(session, account_id, level)
    return counts


def _parent_entity_id(ids: dict[str, dict[str, int]], parent_level: str | None,
                      record: StructureRecord) -> int | None:
    if parent_level is None:
        return None
    assert record.parent_platform_id is not None  # ad sets and ads always name theirs (payloads)
    return ids[parent_level][record.parent_platform_id]


def _create_unlisted_parents(session: Session, conn, insert, account_id: int,
                             ids: dict[str, dict[str, int]], records: list[StructureRecord],
                             parent_level: str) -> None:
    unlisted = {r.parent_platform_id: r for r in records
                if r.parent_platform_id is not None and r.parent_platform_id not in ids[parent_level]}
    if not unlisted:
        return
    if parent_level == "adset":  # their campaigns first, so the ad sets hang under them
        campaigns = sorted({r.campaign_platform_id for r in unlisted.values()
                            if r.campaign_platform_id} - set(ids["campaign"]))
        _insert_entities(conn, insert, [_placeholder(account_id, "campaign", pid, None)
                                        for pid in campaigns], update_status=False)
        ids["campaign"] = _entity_ids(session, account_id, "campaign")
    rows = [_placeholder(account_id, parent_level, pid,
                         ids["campaign"].get(r.campaign_platform_id or "")
                         if parent_level == "adset" else None)
            for pid, r in sorted(unlisted.items())]
    _insert_entities(conn, insert, rows, update_status=False)
    ids[parent_level] = _entity_ids(session, account_id, parent_level)
    log.info("account %s: %d %s(s) not listed by Meta created as UNKNOWN", account_id,
             len(rows), parent_level)


def _placeholder(account_id: int, level: str, platform_id: str,
                 parent_id: int | None) -> dict[str, Any]:
    return {"account_id": account_id, "level": level, "platform_id": platform_id,
            "parent_id": parent_id, "name": None, "status": "UNKNOWN"}


def _insert_entities(conn, insert, rows: list[dict[str, Any]], *, update_status: bool) -> None:
    """Upsert entity rows; a known entity keeps its name and parent unless new ones are given,
    and its status unless ``update_status``."""
    table = Entity.__table__
    for start in range(0, len(rows), _STRUCTURE_BATCH):
        statement = insert(table).values(rows[start:start + _STRUCTURE_BATCH])
        excluded = statement.excluded
        updates = {"name": func.coalesce(excluded.name, table.c.name),
                   "parent_id": func.coalesce(excluded.parent_id, table.c.parent_id)}
        if update_status:
            updates["status"] = excluded.status
        conn.execute(statement.on_conflict_do_update(
            index_elements=["account_id", "level", "platform_id"], set_=updates))


def _entity_ids(session: Session, account_id: int, level: str) -> dict[str, int]:
    return dict(session.execute(select(Entity.platform_id, Entity.id).where(
        Entity.account_id == account_id, Entity.level == level)).all())


@dataclass(frozen=True)
class _StoredAdDay:
    numbers: tuple[float, int, int, int, int]
    conversions: int | None
    revenue: float | None


def _stored_ad_days(session: Session, account_id: int, since: date,
                    until: date) -> dict[tuple[str, date], _StoredAdDay]:
    rows = session.execute(
        select(Entity.platform_id, DailyInsight.day,
               DailyInsight.spend, DailyInsight.impressions, DailyInsight.clicks,
               DailyInsight.leads, DailyInsight.reach, DailyInsight.conversions,
               DailyInsight.revenue)
        .join(DailyInsight, DailyInsight.entity_id == Entity.id)
        .where(Entity.account_id == account_id, Entity.level == "ad",
               DailyInsight.day >= since, DailyInsight.day <= until)).all()
    return {(r[0], r[1]): _StoredAdDay((r[2], r[3], r[4], r[5], r[6]), r[7], r[8]) for r in rows}


@dataclass
class _RowsToWrite:
    """The importer's rows, and what they change in what is stored."""

    rows: list[InsightRow]
    restated_days: set[date]
    ad_days_restated: int
    ad_days_zeroed: int
    ad_days_unreported: int


def _rows_to_write(insights: list[InsightRow], until: date,
                   existing: dict[tuple[str, date], _StoredAdDay]) -> _RowsToWrite:
    """What Meta reported, with stored conversions and revenue kept where Meta sent none.

    Stored ad days that Meta did not report are left alone (only counted): Meta reports every
    ad that delivered, deleted and archived ones included, so a missing row is no evidence
    that the day's numbers are gone. Complete days whose numbers changed are restated.
    """
    result = _RowsToWrite([], set(), 0, 0, 0)
    seen: set[tuple[str, date]] = set()
    for record in insights:
        key = (record.ad_id, record.day)
        seen.add(key)
        before = existing.get(key)
        numbers = (record.spend, record.impressions, record.clicks, record.leads, record.reach)
        if before is not None and before.numbers != numbers and record.day < until:
            result.restated_days.add(record.day)
            result.ad_days_restated += 1
            if not any(numbers):
                result.ad_days_zeroed += 1
        result.rows.append(_insight_row(len(result.rows) + 1, record, before))
    result.ad_days_unreported = sum(1 for key, before in existing.items()
                                    if key not in seen and any(before.numbers))
    return result


def _insight_row(line: int, record: InsightRow, before: _StoredAdDay | None) -> InsightRow:
    conversions, revenue = record.conversions, record.revenue
    if before is not None:  # never overwrite a stored value with nothing
        conversions = before.conversions if conversions is None else conversions
        revenue = before.revenue if revenue is None else revenue
    return replace(record, line=line, conversions=conversions, revenue=revenue)


def sync_before_detection(*, session_factory: sessionmaker[Session], settings: Settings,
                          account_id: int, client_factory: ClientFactory | None = None,
                          environ: Mapping[str, str] | None = None,
                          now: datetime | None = None) -> dict[str, Any] | None:
    """The hourly job's first step: sync the account if it can be synced (``None`` otherwise).

    The first run of each local day pulls the whole ``sync_window_days`` window (restatements);
    the other hourly runs pull yesterday and today only (today's growing numbers, yesterday's
    final ones), which keeps a large account's hourly sync small.
    A failed sync is reported in the result and detection still runs on what is stored.
    Report jobs are waited for at most half of ``task_soft_time_limit`` in all, so that the
    run stops cleanly (ranges stored kept) and detection still runs within the task's limit.
    """
    if not is_syncable(session_factory=session_factory, account_id=account_id):
        return None
    now = now or datetime.now(UTC)
    summary = sync_account(session_factory=session_factory, settings=settings,
                           account_id=account_id, client_factory=client_factory,
                           since=_hourly_since(session_factory, settings, account_id, now),
                           environ=environ, now=now,
                           job_wait_allowance=hourly_job_wait_allowance(settings))
    return summary.as_dict()


def hourly_job_wait_allowance(settings: Settings) -> float:
    """Seconds the scheduled sync waits for report jobs in all: a job may take up to
    ``sync_async_poll_timeout`` (Meta: up to an hour), but within half the task's soft limit."""
    return float(min(settings.sync_async_poll_timeout, settings.task_soft_time_limit // 2))


def _hourly_since(session_factory: sessionmaker[Session], settings: Settings, account_id: int,
                  now: datetime) -> date | None:
    """Yesterday in the account's timezone when a full-window sync already covered today;
    ``None`` (the full window) for the first sync of each local day."""
    with session_factory() as session:
        account = session.get_one(AdAccount, account_id)
        runs = session.execute(
            select(SyncRun.since, SyncRun.until)
            .where(SyncRun.account_id == account_id, SyncRun.status == "succeeded",
                   SyncRun.since.is_not(None), SyncRun.until.is_not(None))
            .order_by(SyncRun.id.desc()).limit(100)).all()
    today = now.astimezone(zone_or_utc(account.timezone)).date()
    full_today = any(since is not None and until is not None and until >= today
                     and (until - since).days + 1 >= settings.sync_window_days
                     for since, until in runs)  # (the query takes no run without both)
    return today - timedelta(days=1) if full_today else None


__all__ = [
    "ClientFactory",
    "SyncSummary",
    "client_options",
    "default_client_factory",
    "is_syncable",
    "resolve_token",
    "sync_account",
    "sync_before_detection",
    "syncable_account_ids",
]
