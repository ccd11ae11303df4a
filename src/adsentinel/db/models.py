"""SQLAlchemy 2 models. The schema itself is created by the Alembic migrations in ``migrations/``.

Conventions: surrogate integer keys; the ad platform's own ids are kept as strings
(``platform_id``); every timestamp is timezone-aware UTC; money is a float in the account's currency.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for bulk statements (``Model.__table__`` is typed as
    any FROM clause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class EntityLevel(str, enum.Enum):
    """Level of an entity in the Meta Ads hierarchy, from the top down."""

    campaign = "campaign"
    adset = "adset"
    ad = "ad"


class AnomalyStatus(str, enum.Enum):
    """Life cycle of an anomaly; ``retracted`` means restated data made it normal again."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"
    false_positive = "false_positive"
    expected = "expected"
    retracted = "retracted"


class Severity(str, enum.Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class TrainingStatus(str, enum.Enum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class AdAccount(Base):
    """An advertiser's ad account (its id is the Celery tasks' ``config_id``).

    ``credentials_ref`` names where the access token lives (for example ``env:META_TOKEN``);
    the token itself is never stored here in plain text.
    """

    __tablename__ = "ad_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    platform_account_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    credentials_ref: Mapped[str | None] = mapped_column(String(200))
    needs_attention: Mapped[str | None] = mapped_column(Text)
    #: the kind of the sync failure that set ``needs_attention`` (adsentinel.sync.error_kinds);
    #: None for a person's mark
    needs_attention_kind: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Comma-separated Meta action types counted as this account's "results" (leads);
    # None means the ``result_action_types`` setting.
    result_action_types: Mapped[str | None] = mapped_column(String(400))
    # Below this daily spend nothing of the account alerts; None means no floor.
    min_alert_spend: Mapped[float | None] = mapped_column(Float)
    # Language of the account's alerts and report (en, pt_BR); None means the ``locale`` setting.
    locale: Mapped[str | None] = mapped_column(String(16))

    entities: Mapped[list[Entity]] = relationship(back_populates="account")

    def __repr__(self) -> str:
        return f"AdAccount(id={self.id!r}, name={self.name!r})"


class Entity(Base):
    """A campaign, ad set or ad, with a link to its parent one level up."""

    __tablename__ = "entities"
    __table_args__ = (
        UniqueConstraint("account_id", "level", "platform_id", name="uq_entities_account_level_pid"),
        Index("ix_entities_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    platform_id: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(32), default="ACTIVE")
    first_day: Mapped[date | None] = mapped_column(Date)
    last_day: Mapped[date | None] = mapped_column(Date)
    # Start of the last detection run that judged this entity: rows updated after it are new or
    # restated and are judged by the next run; unchanged rows are not judged again.
    judged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An ad set's attribution setting as the Meta sync last read it (e.g. 7d_click_1d_view):
    # what its results (leads) are counted with in Ads Manager; None for other levels and CSV.
    attribution_setting: Mapped[str | None] = mapped_column(String(64))
    # When the last detection that judged this entity refused its stored model (damaged,
    # tampered with, foreign); None once a detection reads a model again or finds none.
    model_refused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    account: Mapped[AdAccount] = relationship(back_populates="entities")
    parent: Mapped[Entity | None] = relationship(remote_side="Entity.id")

    def __repr__(self) -> str:
        return f"Entity(id={self.id!r}, level={self.level!r}, platform_id={self.platform_id!r})"


class DailyInsight(Base):
    """One entity's delivery on one day. Re-importing the day restates it (upsert).

    ``is_complete`` is false for today's partial numbers (``as_of`` tells how far the day had
    got); ``updated_at`` lets detection find restated days.
    """

    __tablename__ = "daily_insights"
    __table_args__ = (
        UniqueConstraint("entity_id", "day", name="uq_daily_insights_entity_day"),
        Index("ix_daily_insights_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    spend: Mapped[float] = mapped_column(Float, default=0.0)
    impressions: Mapped[int] = mapped_column(BigInteger, default=0)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    leads: Mapped[int] = mapped_column(BigInteger, default=0)
    reach: Mapped[int] = mapped_column(BigInteger, default=0)
    conversions: Mapped[int | None] = mapped_column(BigInteger)
    revenue: Mapped[float | None] = mapped_column(Float)
    is_complete: Mapped[bool] = mapped_column(Boolean, default=True)
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Anomaly(Base):
    """A detected anomaly, one row per (entity, day, metric); re-detection updates it in place.

    ``score`` is on the common 0-100 scale (higher = worse) whichever detector spoke.
    ``incident_id`` links a child's anomaly to the anomaly that represents the whole incident
    (for example the campaign when it and its ads moved together).
    """

    __tablename__ = "anomalies"
    __table_args__ = (
        UniqueConstraint("entity_id", "day", "metric", name="uq_anomalies_entity_day_metric"),
        Index("ix_anomalies_account_day", "account_id", "day"),
        Index("ix_anomalies_status_account_severity", "status", "account_id", "severity"),
        # the API's list order (newest day first, worst first): a page without a sort
        Index("ix_anomalies_day_score", "day", "score", "id"),
        Index("ix_anomalies_incident", "incident_id"),
        Index("ix_anomalies_status_impact", "status", "impact_amount"),  # money at stake first
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(32))
    detectors: Mapped[str] = mapped_column(String(200))
    actual: Mapped[float] = mapped_column(Float)
    expected: Mapped[float] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    drivers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_partial_day: Mapped[bool] = mapped_column(Boolean, default=False)
    # money at stake in the account's currency (adsentinel.detect.impact), the first day of the
    # run of consecutive anomalous days it ends, and that run's length; None before 0007
    impact_amount: Mapped[float | None] = mapped_column(Float)
    started: Mapped[date | None] = mapped_column(Date)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("anomalies.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=AnomalyStatus.open.value)
    status_by: Mapped[str | None] = mapped_column(String(200))
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingRun(Base):
    """One training of an account's per-entity models: when, how it ended, what it produced.

    ``counts`` holds ``{level: {"trained": n, "skipped": n, "failed": n}}``;
    ``skip_reasons`` counts why entities were skipped (``{"insufficient_data": n}``).
    """

    __tablename__ = "training_runs"
    __table_args__ = (Index("ix_training_runs_account_started", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=TrainingStatus.running.value)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    skip_reasons: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    """One pull of an account from the Meta Marketing API: the window asked for and how it ended."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_account_started", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=TrainingStatus.running.value)
    since: Mapped[date | None] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: a failed run's kind of failure, from Meta's error code (adsentinel.sync.error_kinds)
    error_kind: Mapped[str | None] = mapped_column(String(40))


class AccountSettingChange(Base):
    """A change of an ad account's currency or timezone, noticed by the Meta sync.

    ``changed_on`` is the first day, in the account's (new) timezone, known to be in the new
    setting: amounts or days before it do not compare with those after, so detection and
    training read the account's history from it on.
    """

    __tablename__ = "account_setting_changes"
    __table_args__ = (Index("ix_account_setting_changes_account_day", "account_id", "changed_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    setting: Mapped[str] = mapped_column(String(16))  # currency or timezone
    old_value: Mapped[str] = mapped_column(String(64))
    new_value: Mapped[str] = mapped_column(String(64))
    changed_on: Mapped[date] = mapped_column(Date)
    noticed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """An API token. Only its SHA-256 is stored; ``account_ids`` None means every account."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    account_ids: Mapped[list[int] | None] = mapped_column(JSON)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: dashboard sessions remember the generation they were opened in; logout increments it
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AlertChannel(Base):
    """Where an account's alerts go: ``kind`` is slack, webhook or email; ``target`` the URL or
    address; ``secret_ref`` (``env:VAR``) names the HMAC key of a generic webhook."""

    __tablename__ = "alert_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    secret_ref: Mapped[str | None] = mapped_column(String(200))
    min_severity: Mapped[str] = mapped_column(String(16), default=Severity.medium.value)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    # messages about critical incidents go out even in the quiet window
    critical_bypasses_quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertOutbox(Base):
    """A message to deliver, written in the same transaction as what caused it.

    ``idempotency_key`` is unique and sent with the message, so a receiver can drop a repeat
    after a crash between sending and recording.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"))
    anomaly_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("anomalies.id", ondelete="SET NULL"),
    )
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MuteRule(Base):
    """Silences alerts of an entity (and everything under it), or of the whole account when
    ``entity_id`` is None, until ``until`` (inclusive; None means until removed)."""

    __tablename__ = "mute_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="CASCADE"))
    until: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CalendarDay(Base):
    """A day an account expects to be unusual (holiday, promotion)."""

    __tablename__ = "calendar_days"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_calendar_days_account_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200))
