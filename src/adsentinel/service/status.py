"""Status at a glance: per account, how fresh the data is, how the last sync, training and
detection went, what the alert outbox holds, and what needs a person's attention.

One read of a handful of set-based queries (no per-account loop), so that ``adsentinel status``,
``GET /api/v1/status`` and the Prometheus scrape (:mod:`adsentinel.api.routes_metrics`) cost the
same small amount whatever the number of accounts. What needs attention is decided by small
named rules (:data:`ATTENTION_RULES`), applied in order, each one sentence in the reader's
language when a request asked for one, else the account's (``ad_accounts.locale``;
``default_locale`` for an account without one), from the ``messages`` catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, overload

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.models import (
    AdAccount,
    AlertChannel,
    AlertOutbox,
    Anomaly,
    AnomalyStatus,
    DailyInsight,
    Entity,
    SyncRun,
    TrainingRun,
    TrainingStatus,
)
from adsentinel.i18n import DEFAULT_LOCALE, N_, Language, language, supported_locale
from adsentinel.sync.account_changes import SettingChange, setting_changes
from adsentinel.sync.error_kinds import attention_sentence, error_sentence
from adsentinel.timezones import as_utc

#: beyond these ages a job that should run on a schedule is reported as late
SYNC_LATE = timedelta(hours=3)
DETECTION_LATE = timedelta(hours=3)
TRAINING_LATE = timedelta(hours=36)
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class RunOutcome:
    """One sync or training run: when, how it ended, how long it took, what it did."""

    started_at: datetime
    finished_at: datetime | None
    status: str
    duration_seconds: float | None
    counts: dict[str, Any] | None
    error: str | None
    #: a failed run's kind of failure (:mod:`adsentinel.sync.error_kinds`); None for training
    error_kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
                "status": self.status, "duration_seconds": self.duration_seconds,
                "counts": self.counts, "error": self.error, "error_kind": self.error_kind}


@dataclass
class AccountStatus:
    """Everything ``adsentinel status`` says about one account."""

    account_id: int
    name: str
    is_active: bool
    syncs_from_meta: bool
    needs_attention: str | None
    #: the kind of sync failure that set ``needs_attention`` (None: a person's mark)
    needs_attention_kind: str | None = None
    last_complete_day: date | None = None
    last_partial_update: datetime | None = None
    last_sync: RunOutcome | None = None
    last_successful_sync: RunOutcome | None = None
    last_training: RunOutcome | None = None
    last_successful_training: RunOutcome | None = None
    last_detection_at: datetime | None = None
    open_anomalies: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    attention: list[str] = field(default_factory=list)
    #: the language ``attention`` is told in (the account's)
    locale: str = DEFAULT_LOCALE
    #: entities whose stored model the last detection covering them refused, and when last
    models_refused: int = 0
    models_refused_at: datetime | None = None
    #: currency and timezone changes, oldest first; history compares from the last one on
    setting_changes: list[SettingChange] = field(default_factory=list)

    @property
    def language(self) -> Language:
        """The messages and formats of the account's language."""
        return language(supported_locale(self.locale) or DEFAULT_LOCALE)

    @property
    def graph_api_usage_percent(self) -> dict[str, float]:
        """The highest share of each of Meta's rate-limit budgets during the latest sync."""
        run = self.last_sync
        usage = (run.counts or {}).get("api_usage_percent") if run else None
        return dict(usage) if isinstance(usage, dict) else {}

    @property
    def models(self) -> dict[str, int]:
        """Models trained, skipped and failed by the last successful training (all levels)."""
        totals = {"trained": 0, "skipped": 0, "failed": 0}
        run = self.last_successful_training
        for per_level in ((run.counts or {}).values() if run else ()):
            for key in totals:
                totals[key] += int((per_level or {}).get(key, 0))
        return totals

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the API's answer)."""
        return {
            "account_id": self.account_id, "name": self.name, "is_active": self.is_active,
            "syncs_from_meta": self.syncs_from_meta, "needs_attention": self.needs_attention,
            "last_complete_day": _iso(self.last_complete_day),
            "last_partial_update": _iso(self.last_partial_update),
            "last_sync": _outcome(self.last_sync),
            "last_successful_sync": _outcome(self.last_successful_sync),
            "last_training": _outcome(self.last_training),
            "last_successful_training": _outcome(self.last_successful_training),
            "last_detection_at": _iso(self.last_detection_at),
            "models": self.models,
            "models_refused": self.models_refused,
            "models_refused_at": _iso(self.models_refused_at),
            "graph_api_usage_percent": self.graph_api_usage_percent,
            "setting_changes": [change.as_dict() for change in self.setting_changes],
            "open_anomalies": self.open_anomalies, "alerts": self.alerts,
            "attention": self.attention,
        }


def account_statuses(*, session_factory: sessionmaker[Session],
                     account_filter: Callable[[Any], ColumnElement[bool]] | None = None,
                     now: datetime | None = None, with_freshness: bool = True,
                     default_locale: str | None = None,
                     reader_locale: str | None = None) -> list[AccountStatus]:
    """The status of every account ``account_filter`` keeps (a WHERE clause built on an
    account-id column, as :meth:`adsentinel.api.auth.Principal.account_filter`), by name.

    ``with_freshness`` reads the last complete day and partial update from ``daily_insights``
    (the three latest days only); the metrics scrape leaves it out. The attention lines are in
    ``reader_locale`` when a reader asked for a language (a request's ``Accept-Language``),
    else in the account's own language, else in ``default_locale`` (the ``LOCALE`` setting).
    """
    keep = account_filter or (lambda _column: true())
    now = now or datetime.now(UTC)
    with session_factory() as session:
        statuses = {a.id: AccountStatus(a.id, a.name, a.is_active,
                                        bool(a.platform_account_id and a.credentials_ref),
                                        a.needs_attention, a.needs_attention_kind,
                                        locale=(reader_locale or a.locale or default_locale
                                                or DEFAULT_LOCALE))
                    for a in session.scalars(select(AdAccount).where(keep(AdAccount.id))
                                             .order_by(AdAccount.name))}
        if not statuses:
            return []
        _read_runs(session, SyncRun, keep, statuses, "sync")
        _read_runs(session, TrainingRun, keep, statuses, "training")
        for account_id, judged in session.execute(
                select(Entity.account_id, func.max(Entity.judged_at))
                .where(keep(Entity.account_id)).group_by(Entity.account_id)):
            statuses[account_id].last_detection_at = as_utc(judged)
        _read_anomalies(session, keep, statuses)
        _read_alerts(session, keep, statuses)
        _read_refused_models(session, keep, statuses)
        for account_id, changes in setting_changes(session, statuses).items():
            statuses[account_id].setting_changes = changes
        if with_freshness:
            _read_freshness(session, keep, statuses)
    for status in statuses.values():
        status.attention = [message for rule in ATTENTION_RULES
                            if (message := rule(status, now)) is not None]
    return list(statuses.values())


# --- reading ----------------------------------------------------------------------------------


def _read_runs(session: Session, table, keep, statuses: dict[int, AccountStatus],
               kind: str) -> None:
    """The latest run and the latest successful run of each account: the newest start per
    account (the ``(account_id, started_at)`` index), then those rows (the last id wins a tie),
    so that a scrape costs the same after a year of hourly runs as after a day."""
    for successful_only in (False, True):
        condition = keep(table.account_id)
        if successful_only:
            condition = and_(condition, table.status == TrainingStatus.succeeded.value)
        newest = (select(table.account_id, func.max(table.started_at).label("started"))
                  .where(condition).group_by(table.account_id).subquery())
        latest = (select(table).join(newest, and_(table.account_id == newest.c.account_id,
                                                  table.started_at == newest.c.started))
                  .where(condition).order_by(table.id))
        name = f"last_successful_{kind}" if successful_only else f"last_{kind}"
        for run in session.scalars(latest):
            setattr(statuses[run.account_id], name, RunOutcome(
                started_at=as_utc(run.started_at), finished_at=as_utc(run.finished_at),
                status=run.status, duration_seconds=_duration(run), counts=run.counts,
                error=run.error, error_kind=getattr(run, "error_kind", None)))


def _duration(run) -> float | None:
    if getattr(run, "duration_seconds", None) is not None:
        return float(run.duration_seconds)
    if run.finished_at is None:
        return None
    return round((as_utc(run.finished_at) - as_utc(run.started_at)).total_seconds(), 3)


def _read_anomalies(session: Session, keep, statuses: dict[int, AccountStatus]) -> None:
    for account_id, severity, count in session.execute(
            select(Anomaly.account_id, Anomaly.severity, func.count())
            .where(keep(Anomaly.account_id), Anomaly.status == AnomalyStatus.open.value)
            .group_by(Anomaly.account_id, Anomaly.severity)):
        statuses[account_id].open_anomalies[severity] = count


def _read_refused_models(session: Session, keep, statuses: dict[int, AccountStatus]) -> None:
    for account_id, count, last in session.execute(
            select(Entity.account_id, func.count(), func.max(Entity.model_refused_at))
            .where(keep(Entity.account_id), Entity.model_refused_at.is_not(None))
            .group_by(Entity.account_id)):
        statuses[account_id].models_refused = count
        statuses[account_id].models_refused_at = as_utc(last)


def _read_alerts(session: Session, keep, statuses: dict[int, AccountStatus]) -> None:
    """Outbox rows per account: pending (never tried), retrying (tried, due again), sent,
    failed (gave up after ``ALERT_MAX_ATTEMPTS``)."""
    state = case((and_(AlertOutbox.status == "pending", AlertOutbox.attempts > 0), "retrying"),
                 else_=AlertOutbox.status)
    for status in statuses.values():
        status.alerts = {"pending": 0, "retrying": 0, "sent": 0, "failed": 0}
    for account_id, name, count in session.execute(
            select(AlertChannel.account_id, state, func.count())
            .join(AlertChannel, AlertChannel.id == AlertOutbox.channel_id)
            .where(keep(AlertChannel.account_id))
            .group_by(AlertChannel.account_id, state)):
        statuses[account_id].alerts[name] = statuses[account_id].alerts.get(name, 0) + count


def _read_freshness(session: Session, keep, statuses: dict[int, AccountStatus]) -> None:
    """The last complete day and the last partial update of each account. One query reads the
    last week of the whole table (an index range on ``day``); an account with nothing in that
    week (stale) gets a query of its own."""
    top = session.scalar(select(func.max(DailyInsight.day)))
    if top is None:
        return
    complete = func.max(case((DailyInsight.is_complete.is_(True), DailyInsight.day)))
    partial = func.max(case((DailyInsight.is_complete.is_(False),
                             func.coalesce(DailyInsight.as_of, DailyInsight.updated_at))))

    def read(condition) -> None:
        for account_id, last_complete, last_partial in session.execute(
                select(Entity.account_id, complete, partial)
                .join(Entity, Entity.id == DailyInsight.entity_id)
                .where(condition).group_by(Entity.account_id)):
            statuses[account_id].last_complete_day = _as_date(last_complete)
            statuses[account_id].last_partial_update = as_utc(last_partial)

    read(and_(keep(Entity.account_id), DailyInsight.day >= _as_date(top) - timedelta(days=7)))
    for status in statuses.values():
        if status.last_complete_day is None and status.last_partial_update is None:
            read(Entity.account_id == status.account_id)


# --- what needs attention ---------------------------------------------------------------------


def _flagged(status: AccountStatus, _now: datetime) -> str | None:
    if not status.needs_attention:
        return None
    lang = status.language
    return lang.gettext(N_("marked: %(mark)s"), mark=attention_sentence(
        lang, status.needs_attention_kind, status.needs_attention))


def _last_sync_failed(status: AccountStatus, _now: datetime) -> str | None:
    run = status.last_sync
    if run is None or run.status != TrainingStatus.failed.value:
        return None
    lang = status.language
    if run.error_kind is None:  # a run from before kinds were stored: its text, as written
        return lang.gettext(N_("the last sync failed: %(error)s"),
                            error=_first_line(lang, run.error))
    detail = run.error.splitlines()[0][:200] if run.error else None
    return lang.gettext(N_("the last sync failed: %(error)s"),
                        error=error_sentence(lang, run.error_kind, detail))


def _sync_late(status: AccountStatus, now: datetime) -> str | None:
    if not (status.syncs_from_meta and status.is_active):
        return None
    last, lang = status.last_successful_sync, status.language
    if last is None:
        return lang.gettext(N_("never synced from Meta: run `adsentinel sync`"))
    if now - (last.finished_at or last.started_at) > SYNC_LATE:
        return lang.gettext(N_("no successful sync for %(age)s"),
                            age=_age(now, last.finished_at or last.started_at, lang))
    return None


def _last_training_failed(status: AccountStatus, _now: datetime) -> str | None:
    run = status.last_training
    if run is None or run.status != TrainingStatus.failed.value:
        return None
    return status.language.gettext(N_("the last training failed: %(error)s"),
                                   error=_first_line(status.language, run.error))


def _training_late(status: AccountStatus, now: datetime) -> str | None:
    if not status.is_active:
        return None
    last, lang = status.last_successful_training, status.language
    if last is None:
        return lang.gettext(N_("never trained: run `adsentinel train` (statistical detection "
                               "only until then)"))
    if now - last.started_at > TRAINING_LATE:
        return lang.gettext(N_("no successful training for %(age)s"),
                            age=_age(now, last.started_at, lang))
    return None


def _detection_late(status: AccountStatus, now: datetime) -> str | None:
    if not status.is_active:
        return None
    lang = status.language
    if status.last_detection_at is None:
        return lang.gettext(N_("never detected: run `adsentinel detect`"))
    if now - status.last_detection_at > DETECTION_LATE:
        return lang.gettext(N_("no detection for %(age)s"),
                            age=_age(now, status.last_detection_at, lang))
    return None


def _models_refused(status: AccountStatus, _now: datetime) -> str | None:
    if not status.models_refused:
        return None
    return status.language.gettext(
        N_("%(count)s model file(s) refused by the last detection (damaged, tampered with or "
           "trained on other features): statistical detection only for them until their "
           "campaigns are retrained (queued; or run `adsentinel train`)"),
        count=status.models_refused)


def _alerts_failed(status: AccountStatus, _now: datetime) -> str | None:
    failed = status.alerts.get("failed", 0)
    return (status.language.gettext(
        N_("%(count)s alert(s) failed for good: see `adsentinel alerts outbox`"), count=failed)
            if failed else None)


def _critical_open(status: AccountStatus, _now: datetime) -> str | None:
    critical = status.open_anomalies.get("critical", 0)
    return (status.language.gettext(N_("%(count)s critical anomaly(ies) open"), count=critical)
            if critical else None)


#: applied in order; each returns one sentence, or None when all is well
ATTENTION_RULES: tuple[Callable[[AccountStatus, datetime], str | None], ...] = (
    _flagged, _last_sync_failed, _sync_late, _last_training_failed, _training_late,
    _detection_late, _models_refused, _alerts_failed, _critical_open,
)


# --- small helpers ----------------------------------------------------------------------------




@overload
def _as_date(day: date | str) -> date: ...
@overload
def _as_date(day: date | str | None) -> date | None: ...
def _as_date(day: date | str | None) -> date | None:
    if day is None or isinstance(day, date):
        return day
    return date.fromisoformat(str(day)[:10])


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _outcome(run: RunOutcome | None) -> dict[str, Any] | None:
    return None if run is None else run.as_dict()


def _age(now: datetime, then: datetime, lang: Language) -> str:
    hours = (now - then).total_seconds() / 3600
    if hours < 48:
        return lang.gettext(N_("%(hours)s h"), hours=f"{hours:.0f}")
    return lang.gettext(N_("%(days)s days"), days=f"{hours / 24:.0f}")


def _first_line(lang: Language, error: str | None) -> str:
    """A run's error, its first line up to 200 characters (the catalog's words for its exact
    text, as sync's errors may have)."""
    if not error:
        return lang.gettext(N_("no error recorded"))
    return lang.gettext(error.splitlines()[0][:200])


def needing_attention(statuses: Iterable[AccountStatus]) -> list[AccountStatus]:
    """The accounts with at least one attention message."""
    return [status for status in statuses if status.attention]
