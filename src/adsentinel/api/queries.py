"""What the API and the dashboard read and change, always through a token's account scope.

Every function takes the session and the :class:`~adsentinel.api.auth.Principal` as keywords and
filters by the accounts the principal sees, so no route can forget the scope. An object of an
account the token does not see raises :class:`~adsentinel.errors.NotFoundError`, exactly like
an object that does not exist.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from adsentinel.api.auth import Principal
from adsentinel.config import Settings
from adsentinel.db.models import (
    AdAccount,
    Anomaly,
    AnomalyStatus,
    Entity,
    TrainingRun,
    utcnow,
)
from adsentinel.errors import AdsentinelError, ModelStoreError, NotFoundError
from adsentinel.models.store import ModelStore
from adsentinel.service.feedback import give_status

log = logging.getLogger(__name__)

SEVERITY_ORDER = ("critical", "high", "medium", "low")
#: largest ids of accounts and entities (INTEGER columns) and of anomalies (BIGINT)
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
LEVELS = ("campaign", "adset", "ad")


class StatusConflict(AdsentinelError):
    """The anomaly's current state does not allow the change asked for (HTTP 409)."""

    exit_code = 65


class PageOutOfRange(AdsentinelError):
    """A page past the last one was asked for (HTTP 404 with the number of pages)."""

    exit_code = 65


@dataclass(frozen=True)
class Page:
    """One page of a list, and where it sits in the whole."""

    items: list[Any]
    page: int
    page_size: int
    total: int


@dataclass(frozen=True)
class AnomalyFilters:
    """The filters of the anomaly list; ``None`` means "any"."""

    account_id: int | None = None
    level: str | None = None
    entity_id: int | None = None
    metric: str | None = None
    severity: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None


# --- accounts ---------------------------------------------------------------------------------


def list_accounts(*, session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The accounts the token sees, with their count of open anomalies, by name."""
    open_counts = dict(session.execute(
        select(Anomaly.account_id, func.count())
        .where(Anomaly.status == AnomalyStatus.open.value,
               principal.account_filter(Anomaly.account_id))
        .group_by(Anomaly.account_id)).all())
    accounts = session.scalars(select(AdAccount).where(principal.account_filter(AdAccount.id))
                               .order_by(AdAccount.name)).all()
    return [_account_dict(a, open_counts.get(a.id, 0)) for a in accounts]


def get_account(*, session: Session, principal: Principal, account_id: int) -> AdAccount:
    """The account, if it exists and the token sees it."""
    account = session.get(AdAccount, account_id) if _is_id(account_id, INT32_MAX) else None
    if account is None or not principal.sees(account.id):
        raise NotFoundError(f"ad account {account_id} does not exist",
                            hint="list the accounts this token sees with GET /api/v1/accounts")
    return account


def account_detail(*, session: Session, principal: Principal, account_id: int) -> dict[str, Any]:
    """One account as :func:`list_accounts` shows it."""
    account = get_account(session=session, principal=principal, account_id=account_id)
    count = session.scalar(select(func.count()).select_from(Anomaly).where(
        Anomaly.account_id == account.id, Anomaly.status == AnomalyStatus.open.value)) or 0
    return _account_dict(account, count)


def _account_dict(account: AdAccount, open_anomalies: int) -> dict[str, Any]:
    return {"id": account.id, "name": account.name,
            "platform_account_id": account.platform_account_id, "currency": account.currency,
            "timezone": account.timezone, "is_active": account.is_active,
            "needs_attention": account.needs_attention,
            "last_synced_at": _aware(account.last_synced_at), "open_anomalies": open_anomalies}


# --- entities ---------------------------------------------------------------------------------


def get_entity(*, session: Session, principal: Principal, entity_id: int) -> Entity:
    """The entity, if it exists and belongs to an account the token sees."""
    entity = session.get(Entity, entity_id) if _is_id(entity_id, INT32_MAX) else None
    if entity is None or not principal.sees(entity.account_id):
        raise NotFoundError(f"entity {entity_id} does not exist",
                            hint="find entities with GET /api/v1/accounts/{id}/entities")
    return entity


def entity_page(*, session: Session, principal: Principal, account_id: int, level: str | None,
                status: str | None, page: int, page_size: int) -> Page:
    """The account's entities (filtered by level and delivery status), campaigns first."""
    get_account(session=session, principal=principal, account_id=account_id)
    query = select(Entity).where(Entity.account_id == account_id)
    if level:
        query = query.where(Entity.level == level)
    if status:
        query = query.where(func.upper(Entity.status) == status.upper())
    ordered = query.order_by(case({lv: i for i, lv in enumerate(LEVELS)}, value=Entity.level),
                             Entity.name, Entity.id)
    return _paged(session, ordered, page, page_size)


def entity_tree(*, session: Session, principal: Principal, account_id: int, level: str | None,
                status: str | None) -> list[dict[str, Any]]:
    """The account's campaigns, each with its ad sets, each with its ads.

    ``level`` cuts the tree at that depth (``campaign``: campaigns only). ``status`` keeps the
    entities with that status and the ancestors of any of them (so the path to a matching ad
    stays visible).
    """
    get_account(session=session, principal=principal, account_id=account_id)
    depth = LEVELS.index(level) + 1 if level else len(LEVELS)
    entities = session.scalars(select(Entity).where(
        Entity.account_id == account_id, Entity.level.in_(LEVELS[:depth]))
        .order_by(Entity.name, Entity.id)).all()
    nodes = {e.id: {**entity_dict(e), "children": []} for e in entities}
    keep = set(nodes)
    if status:
        keep = set()
        by_id = {e.id: e for e in entities}
        for entity in entities:
            if entity.status.upper() == status.upper():
                node: Entity | None = entity
                while node is not None and node.id not in keep:
                    keep.add(node.id)
                    node = by_id.get(node.parent_id) if node.parent_id else None
    roots = []
    for entity in entities:
        if entity.id not in keep:
            continue
        parent = nodes.get(entity.parent_id) if entity.parent_id else None
        if parent is not None and entity.parent_id in keep:
            parent["children"].append(nodes[entity.id])
        elif entity.level == "campaign" or entity.parent_id not in nodes:
            roots.append(nodes[entity.id])
    return roots


def entity_detail(*, session: Session, principal: Principal, entity_id: int) -> dict[str, Any]:
    """The entity with the path down to it and its children."""
    entity = get_entity(session=session, principal=principal, entity_id=entity_id)
    return {**entity_dict(entity), "path": [entity_dict(e) for e in entity_path(session, entity)],
            "children": [entity_dict(c) for c in children_of(session, entity)]}


def entity_path(session: Session, entity: Entity) -> list[Entity]:
    """Ancestors from the campaign down, then ``entity`` itself."""
    path = [entity]
    while path[-1].parent_id is not None:
        parent = session.get(Entity, path[-1].parent_id)
        if parent is None:
            break
        path.append(parent)
    return list(reversed(path))


def children_of(session: Session, entity: Entity) -> list[Entity]:
    """The entities one level below ``entity``, by name."""
    return list(session.scalars(select(Entity).where(Entity.parent_id == entity.id)
                                .order_by(Entity.name, Entity.id)))


def entity_dict(entity: Entity) -> dict[str, Any]:
    """The API fields of an entity."""
    return {"id": entity.id, "account_id": entity.account_id, "level": entity.level,
            "platform_id": entity.platform_id, "parent_id": entity.parent_id,
            "name": entity.name, "status": entity.status, "first_day": entity.first_day,
            "last_day": entity.last_day}


def open_counts_by_entity(session: Session, entity_ids: list[int]) -> dict[int, int]:
    """Open anomalies per entity, for the entities given."""
    if not entity_ids:
        return {}
    return dict(session.execute(
        select(Anomaly.entity_id, func.count())
        .where(Anomaly.entity_id.in_(entity_ids), Anomaly.status == AnomalyStatus.open.value)
        .group_by(Anomaly.entity_id)).all())


# --- anomalies --------------------------------------------------------------------------------


def anomaly_page(*, session: Session, principal: Principal, filters: AnomalyFilters, page: int,
                 page_size: int) -> Page:
    """Anomalies matching ``filters``, newest day first, worst first within a day."""
    if filters.start and filters.end and filters.start > filters.end:
        raise AdsentinelError(f"start ({filters.start}) is after end ({filters.end})",
                              hint="swap them, or leave one out")
    if filters.account_id is not None:
        get_account(session=session, principal=principal, account_id=filters.account_id)
    if filters.entity_id is not None:
        get_entity(session=session, principal=principal, entity_id=filters.entity_id)
    query = select(Anomaly).where(principal.account_filter(Anomaly.account_id))
    if filters.account_id is not None:
        query = query.where(Anomaly.account_id == filters.account_id)
    if filters.entity_id is not None:
        query = query.where(Anomaly.entity_id == filters.entity_id)
    if filters.level:
        query = query.where(Anomaly.entity_id.in_(select(Entity.id).where(
            Entity.level == filters.level)))
    for column, value in ((Anomaly.metric, filters.metric), (Anomaly.severity, filters.severity),
                          (Anomaly.status, filters.status)):
        if value:
            query = query.where(column == value)
    if filters.start:
        query = query.where(Anomaly.day >= filters.start)
    if filters.end:
        query = query.where(Anomaly.day <= filters.end)
    return _paged(session, query.order_by(Anomaly.day.desc(), Anomaly.score.desc(),
                                          Anomaly.id.desc()), page, page_size)


def get_anomaly(*, session: Session, principal: Principal, anomaly_id: int) -> Anomaly:
    """The anomaly, if it exists and belongs to an account the token sees."""
    anomaly = session.get(Anomaly, anomaly_id) if _is_id(anomaly_id, INT64_MAX) else None
    if anomaly is None or not principal.sees(anomaly.account_id):
        raise NotFoundError(f"anomaly {anomaly_id} does not exist",
                            hint="list anomalies with GET /api/v1/anomalies")
    return anomaly


def set_anomaly_status(*, session: Session, principal: Principal, anomaly_id: int, status: str,
                       by: str | None = None, now: datetime | None = None) -> Anomaly:
    """Give an anomaly (and the anomalies attached to its incident) a user's status, recording
    who (``by`` or the token's name) and when.

    A retracted anomaly (restated data made it normal) cannot be changed: there is nothing left
    to acknowledge, and detection owns that state. The caller commits.
    """
    allowed = [s.value for s in AnomalyStatus if s is not AnomalyStatus.retracted]
    if status not in allowed:
        raise AdsentinelError(f"status must be one of {', '.join(allowed)}; got {status!r}")
    anomaly = get_anomaly(session=session, principal=principal, anomaly_id=anomaly_id)
    if anomaly.status == AnomalyStatus.retracted.value:
        raise StatusConflict(
            f"anomaly {anomaly_id} was retracted by detection (its restated day is normal "
            "again) and cannot be changed",
            hint="nothing to do: it no longer counts as an anomaly")
    now = now or utcnow()
    log.info("anomaly %s (%s on %s): %s -> %s by %s", anomaly.id, anomaly.metric, anomaly.day,
             anomaly.status, status, by or principal.name)
    give_status(session, anomaly, status, by=(by or principal.name)[:200], now=now)
    session.flush()
    return anomaly


def anomaly_dict(anomaly: Anomaly) -> dict[str, Any]:
    """The API fields of an anomaly (non-finite floats become ``None``: JSON has no NaN)."""
    return {
        "id": anomaly.id, "account_id": anomaly.account_id, "entity_id": anomaly.entity_id,
        "day": anomaly.day, "metric": anomaly.metric, "detectors": anomaly.detectors,
        "actual": _finite(anomaly.actual, 0.0), "expected": _finite(anomaly.expected, 0.0),
        "lower": _finite(anomaly.lower), "upper": _finite(anomaly.upper),
        "direction": anomaly.direction, "score": anomaly.score, "severity": anomaly.severity,
        "message": anomaly.message, "drivers": anomaly.drivers,
        "is_partial_day": bool(anomaly.is_partial_day), "incident_id": anomaly.incident_id,
        "status": anomaly.status, "status_by": anomaly.status_by,
        "status_at": _aware(anomaly.status_at), "created_at": _aware(anomaly.created_at),
        "updated_at": _aware(anomaly.updated_at),
    }


def anomalies_of_entity(*, session: Session, entity_id: int, start: date,
                        end: date) -> list[Anomaly]:
    """The entity's anomalies in ``[start, end]`` (retracted ones too: the status says so)."""
    return list(session.scalars(select(Anomaly).where(
        Anomaly.entity_id == entity_id, Anomaly.day.between(start, end))
        .order_by(Anomaly.day.desc(), Anomaly.score.desc())))


@dataclass(frozen=True)
class OverviewRow:
    """One open anomaly of the overview, with where it is and how many open anomalies of the
    entities below it are grouped under it (the same incident)."""

    anomaly: Anomaly
    account: str
    entity: Entity
    related: int


def open_overview(*, session: Session, principal: Principal, account_id: int | None = None,
                  severity: str | None = None, limit: int = 200
                  ) -> tuple[list[OverviewRow], dict[str, Counter[str]]]:
    """Open incidents, newest day first and worst first within a day, and their counts per
    account and severity (over all of them, not only the ``limit`` shown).

    An open anomaly linked to an open incident of its campaign or ad set (``incident_id``) is
    counted as that incident's ``related``, not listed on its own; one whose incident was
    closed (acknowledged, false positive ...) is listed, so nothing open is ever hidden.
    """
    incident = aliased(Anomaly)
    is_open = Anomaly.status == AnomalyStatus.open.value
    listed = or_(Anomaly.incident_id.is_(None), incident.status != AnomalyStatus.open.value)
    scope = principal.account_filter(Anomaly.account_id)
    query = (select(Anomaly, AdAccount.name, Entity)
             .join(AdAccount, AdAccount.id == Anomaly.account_id)
             .join(Entity, Entity.id == Anomaly.entity_id)
             .outerjoin(incident, incident.id == Anomaly.incident_id)
             .where(is_open, listed, scope))
    if account_id is not None:
        query = query.where(Anomaly.account_id == account_id)
    if severity:
        query = query.where(Anomaly.severity == severity)
    rows = session.execute(query.order_by(Anomaly.day.desc(), Anomaly.score.desc(),
                                          Anomaly.id.desc()).limit(limit)).all()
    related = dict(session.execute(
        select(Anomaly.incident_id, func.count())
        .where(is_open, Anomaly.incident_id.in_([a.id for a, _, _ in rows]))
        .group_by(Anomaly.incident_id)).all()) if rows else {}
    counts: dict[str, Counter[str]] = {}
    for name, level, n in session.execute(
            select(AdAccount.name, Anomaly.severity, func.count())
            .join(AdAccount, AdAccount.id == Anomaly.account_id)
            .outerjoin(incident, incident.id == Anomaly.incident_id)
            .where(is_open, listed, scope)
            .group_by(AdAccount.name, Anomaly.severity)).all():
        counts.setdefault(name, Counter())[level] = n
    return [OverviewRow(a, name, e, related.get(a.id, 0)) for a, name, e in rows], counts


# --- training ---------------------------------------------------------------------------------


def training_status(*, session: Session, principal: Principal, settings: Settings,
                    account_id: int) -> dict[str, Any]:
    """The account's last training run and the models it has in the store.

    ``models_count`` and ``last_training`` come from the store's ``metadata.json`` of the
    account (written after each whole-account training); an unreadable store gives zeros.
    """
    get_account(session=session, principal=principal, account_id=account_id)
    run = session.scalar(select(TrainingRun).where(TrainingRun.account_id == account_id)
                         .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc()).limit(1))
    try:
        metadata = ModelStore.from_settings(settings).read_account_metadata(account_id) or {}
    except (ModelStoreError, OSError, ValueError):
        metadata = {}
    models = {level: int((metadata.get("models_count") or {}).get(level, 0)) for level in LEVELS}
    skip_reasons = (run.skip_reasons if run is not None and run.skip_reasons is not None
                    else metadata.get("skip_reasons")) or {}
    last_training = metadata.get("last_training")
    return {
        "account_id": account_id,
        "last_run": None if run is None else {
            "id": run.id, "started_at": _aware(run.started_at),
            "finished_at": _aware(run.finished_at), "status": run.status, "counts": run.counts,
            "skip_reasons": run.skip_reasons, "duration_seconds": run.duration_seconds,
            "error": run.error},
        "models_count": models,
        "models_total": sum(models.values()),
        "skip_reasons": {str(k): int(v) for k, v in skip_reasons.items()},
        "last_training": datetime.fromisoformat(last_training) if last_training else None,
    }


# --- helpers ----------------------------------------------------------------------------------


def _paged(session: Session, query: Select, page: int, page_size: int) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, math.ceil(total / page_size))
    if page > pages:
        raise PageOutOfRange(f"page {page} is past the last page ({pages}) of {total} item(s) "
                             f"at {page_size} per page", hint=f"ask for a page from 1 to {pages}")
    items = session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()
    return Page(list(items), page, page_size, total)


def _is_id(value: int, largest: int) -> bool:
    """Ids beyond their column's type cannot exist; looking them up would be a database error
    (PostgreSQL refuses to compare an INTEGER column with 2**31)."""
    return 0 < value <= largest


def _finite(value: float | None, default: float | None = None) -> float | None:
    if value is None:
        return default
    return float(value) if math.isfinite(value) else default


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
