"""Pydantic models of the API's requests and responses (they are the OpenAPI schema)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adsentinel.db.models import AnomalyStatus, EntityLevel, Severity


class SettableStatus(str, Enum):
    """Statuses a user may give an anomaly (``open`` re-opens it; ``retracted`` is detection's)."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"
    false_positive = "false_positive"
    expected = "expected"


AnomalyStatusFilter = AnomalyStatus  # every status an anomaly can have, for filtering


LevelFilter = EntityLevel
SeverityFilter = Severity


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer other than 422: one sentence saying what was wrong and what to do."""

    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    version: str


class AccountOut(BaseModel):
    id: int
    name: str
    platform_account_id: str | None
    currency: str
    timezone: str
    is_active: bool
    needs_attention: str | None
    needs_attention_kind: str | None = Field(
        default=None, description="The kind of sync failure that set needs_attention "
        "(token_expired, permission, version_retired, appsecret_required ...); null for a "
        "person's mark.")
    last_synced_at: datetime | None
    open_anomalies: int = Field(description="Open anomalies of the account, every day (good "
                                "news left out: it is never an incident).")


class EntityOut(BaseModel):
    id: int
    account_id: int
    level: EntityLevel
    platform_id: str
    parent_id: int | None
    name: str | None
    status: str
    first_day: date | None
    last_day: date | None


class EntityNode(EntityOut):
    """An entity with the entities one level below it (campaign > ad set > ad)."""

    children: list[EntityNode] = Field(default_factory=list)


class EntityPage(BaseModel):
    items: list[EntityOut]
    page: int
    page_size: int
    total: int


class EntityDetailOut(EntityOut):
    path: list[EntityOut] = Field(description="Ancestors from the campaign down, then itself.")
    children: list[EntityOut]


class MetaIdsOut(BaseModel):
    account: str | None
    campaign: str | None
    adset: str | None
    ad: str | None


class AnomalyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    account_id: int
    entity_id: int
    day: date
    metric: str
    detectors: str
    actual: float
    expected: float
    lower: float | None
    upper: float | None
    direction: str
    score: float
    severity: Severity
    message: str
    drivers: dict[str, Any] | None
    is_partial_day: bool
    incident_id: int | None
    status: AnomalyStatusFilter
    status_by: str | None
    status_at: datetime | None
    created_at: datetime
    updated_at: datetime
    impact_amount: float | None = Field(
        description="Money at stake in the account's currency (formula per kind in the README: "
        "spend above expected, spend that bought nothing during a tracking break, cost above "
        "normal x results, expected spend not delivered); null for kinds without one.")
    currency: str | None = Field(description="The account's currency (ISO code).")
    started: date = Field(description="First day of the run of consecutive anomalous days of "
                          "this entity, metric and direction that ends on `day`.")
    duration_days: int = Field(description="Days from `started` to `day`, both counted.")
    kind: str = Field(description="tracking_break, spend_spike, delivery_collapse, cost_rise, "
                      "ctr_drop, conversion_drop, lead_drop, saturation, unusual_combination "
                      "or good_news.")
    next_step: str = Field(description="What to check first, for this kind.")
    level: EntityLevel | None = Field(description="The entity's level.")
    meta_ids: MetaIdsOut | None = Field(description="Meta (platform) ids of the account and of "
                                        "the campaign, ad set and ad down to the entity.")
    names: MetaIdsOut | None = Field(description="Their names, as `meta_ids`.")


class AnomalySort(str, Enum):
    """Orders of the anomaly list."""

    impact = "impact"
    severity = "severity"
    day = "day"
    score = "score"


class ExportFormat(str, Enum):
    """Formats of the anomaly list besides JSON."""

    json = "json"
    csv = "csv"
    xlsx = "xlsx"


class AnomalyPage(BaseModel):
    items: list[AnomalyOut]
    page: int
    page_size: int
    total: int


class AnomalyStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SettableStatus
    by: str | None = Field(default=None, min_length=1, max_length=200,
                           pattern=r"^[^\x00-\x1f\x7f]+$",
                           description="Who decided (no control characters); default: the "
                           "token's name.")


class MetricPointOut(BaseModel):
    actual: float | None
    expected: float | None
    lower: float | None
    upper: float | None


class DayOut(BaseModel):
    day: date
    metrics: dict[str, MetricPointOut]


class EntitySeriesOut(BaseModel):
    entity: EntityOut
    start: date
    end: date
    days: list[DayOut]
    anomalies: list[AnomalyOut]


class TrainingRunOut(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any] | None
    skip_reasons: dict[str, Any] | None
    duration_seconds: float | None
    error: str | None


class TrainingStatusOut(BaseModel):
    account_id: int
    last_run: TrainingRunOut | None
    models_count: dict[str, int] = Field(
        description="Stored models per level (campaign, adset, ad).")
    models_total: int
    skip_reasons: dict[str, int] = Field(description="Why entities got no model at the last run.")
    last_training: datetime | None


class EnqueuedOut(BaseModel):
    task_id: str
    kind: Literal["training", "detection"]
    account_id: int
    dispatcher: str = Field(description="'celery' or 'in-process'.")


class TaskOut(BaseModel):
    task_id: str
    state: str = Field(description="queued, running, succeeded, failed, or Celery's own state.")
    result: dict[str, Any] | None = None
    error: str | None = None
