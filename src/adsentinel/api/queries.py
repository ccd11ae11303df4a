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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from adsentinel.alerts.feedback_service import give_status
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
from adsentinel.detect import impact
from adsentinel.detect.statistical import pooled_days
from adsentinel.errors import AdsentinelError, ModelStoreError, NotFoundError
from adsentinel.jsonable import finite_or
from adsentinel.model_store.store import ModelStore
from adsentinel.service.anomaly_record import LEVELS, AnomalyPlace, anomaly_run
from adsentinel.timezones import as_utc

log = logging.getLogger(__name__)

SEVERITY_ORDER = ("critical", "high", "medium", "low")
#: largest ids of accounts and entities (INTEGER columns) and of anomalies (BIGINT)
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1
#: orders of the anomaly list (see :class:`AnomalyFilters`)
SORTS = ("impact", "severity", "day", "score")
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
Row = TypeVar("Row", AdAccount, Entity, Anomaly)


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
    """The filters and the order of the anomaly list; ``None`` means "any".

    Parameters
    ----------
    account_id, entity_id : int, optional
        Only this account's / this entity's anomalies (404 when the token does not see it).
    level : str, optional
        ``campaign``, ``adset`` or ``ad``: only anomalies of entities of that level.
    metric : str, optional
        ``cpl``, ``spend``, ``multivariate`` ...
    severity : str, optional
        Exactly this severity.
    min_severity : str, optional
        This severity and worse (``medium``: medium, high and critical; lows hidden).
    status : str, optional
        ``open``, ``acknowledged``, ``resolved``, ``false_positive``, ``expected``,
        ``retracted``.
    start, end : date, optional
        Days of the anomalies, both included.
    search : str, optional
        Part of the name (any case) of the anomaly's entity, of its ad set or campaign or of its
        account, or the whole Meta id of any of them (``act_`` optional for the account).
    good_news : bool
        Include good news (CPC, CPL or frequency down, CTR up ...:
        :data:`adsentinel.detect.impact.GOOD_NEWS`), which is never an incident; default
        ``False``: left out.
    sort : str, optional
        One of :data:`SORTS`: ``impact`` (money at stake, then severity, then score),
        ``severity`` (then money, then newest), ``day`` (newest day first, worst first within
        a day), ``score``. Default: ``impact`` when ``status`` is ``open``, else ``day``.
    """

    account_id: int | None = None
    level: str | None = None
    entity_id: int | None = None
    metric: str | None = None
    severity: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None
    search: str | None = None
    min_severity: str | None = None
    good_news: bool = False
    sort: str | None = None

    @property
    def order(self) -> str:
        """The sort in effect (the default resolved)."""
        if self.sort is not None:
            return self.sort
        return "impact" if self.status == AnomalyStatus.open.value else "day"


# --- accounts ---------------------------------------------------------------------------------


def list_accounts(*, session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The accounts the token sees, with their count of open anomalies (good news left out),
    by name."""
    open_counts = dict(session.execute(
        select(Anomaly.account_id, func.count())
        .where(Anomaly.status == AnomalyStatus.open.value, not_good_news(),
               principal.account_filter(Anomaly.account_id))
        .group_by(Anomaly.account_id)).all())
    accounts = session.scalars(select(AdAccount).where(principal.account_filter(AdAccount.id))
                               .order_by(AdAccount.name)).all()
    return [_account_dict(a, open_counts.get(a.id, 0)) for a in accounts]


def get_account(*, session: Session, principal: Principal, account_id: int) -> AdAccount:
    """The account, if it exists and the token sees it."""
    return _visible(session, principal, AdAccount, account_id, largest=INT32_MAX,
                    account_of=lambda account: account.id, what="ad account",
                    hint="list the accounts this token sees with GET /api/v1/accounts")


def account_detail(*, session: Session, principal: Principal, account_id: int) -> dict[str, Any]:
    """One account as :func:`list_accounts` shows it."""
    account = get_account(session=session, principal=principal, account_id=account_id)
    count = session.scalar(select(func.count()).select_from(Anomaly).where(
        Anomaly.account_id == account.id, Anomaly.status == AnomalyStatus.open.value,
        not_good_news())) or 0
    return _account_dict(account, count)


def _account_dict(account: AdAccount, open_anomalies: int) -> dict[str, Any]:
    return {"id": account.id, "name": account.name,
            "platform_account_id": account.platform_account_id, "currency": account.currency,
            "timezone": account.timezone, "is_active": account.is_active,
            "needs_attention": account.needs_attention,
            "needs_attention_kind": account.needs_attention_kind,
            "last_synced_at": as_utc(account.last_synced_at), "open_anomalies": open_anomalies}


# --- entities ---------------------------------------------------------------------------------


def get_entity(*, session: Session, principal: Principal, entity_id: int) -> Entity:
    """The entity, if it exists and belongs to an account the token sees."""
    return _visible(session, principal, Entity, entity_id, largest=INT32_MAX,
                    account_of=lambda entity: entity.account_id, what="entity",
                    hint="find entities with GET /api/v1/accounts/{id}/entities")


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
    """One page of the anomalies matching ``filters``, in ``filters.order``.

    Parameters
    ----------
    session : Session
    principal : Principal
        Only the accounts it sees are read.
    filters : AnomalyFilters
        What to keep and in which order (see its docstring).
    page : int
        1-based; past the last page raises :class:`PageOutOfRange`.
    page_size : int
        Anomalies per page.

    Returns
    -------
    Page
        ``items`` are :class:`~adsentinel.db.models.Anomaly`; ``total`` counts every match.
    """
    return _paged(session, anomaly_query(session=session, principal=principal, filters=filters),
                  page, page_size)


def anomaly_query(*, session: Session, principal: Principal, filters: AnomalyFilters) -> Select:
    """The ordered SELECT of the anomalies matching ``filters`` (every page: the exports read
    it in chunks). Checks the filters: an unknown or unseen account or entity is
    :class:`NotFoundError`, a start after the end, an unknown sort or severity an
    :class:`AdsentinelError`."""
    if filters.start and filters.end and filters.start > filters.end:
        raise AdsentinelError(f"start ({filters.start}) is after end ({filters.end})",
                              hint="swap them, or leave one out")
    if filters.order not in SORTS:
        raise AdsentinelError(f"sort must be one of {', '.join(SORTS)}; got {filters.order!r}")
    for name in ("severity", "min_severity"):
        value = getattr(filters, name)
        if value is not None and value not in _SEVERITY_RANK:
            raise AdsentinelError(f"{name} must be one of {', '.join(SEVERITY_ORDER)}; "
                                  f"got {value!r}")
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
    if filters.min_severity:
        floor = _SEVERITY_RANK[filters.min_severity]
        query = query.where(Anomaly.severity.in_(
            [name for name, rank in _SEVERITY_RANK.items() if rank >= floor]))
    if filters.start:
        query = query.where(Anomaly.day >= filters.start)
    if filters.end:
        query = query.where(Anomaly.day <= filters.end)
    if filters.search and filters.search.strip():
        query = query.where(_search_clause(filters.search.strip()))
    if not filters.good_news:
        query = query.where(not_good_news())
    return query.order_by(*_anomaly_order(filters.order))


def not_good_news() -> Any:
    """The SQL condition "not good news" (:data:`adsentinel.detect.impact.GOOD_NEWS`: CPC or
    CPL down, CTR up ...), which detection stores as low anomalies but is never an incident."""
    return not_(or_(*(and_(Anomaly.metric == metric, Anomaly.direction == way)
                      for metric, way in sorted(impact.GOOD_NEWS))))


def _anomaly_order(sort: str) -> list[Any]:
    money = func.coalesce(Anomaly.impact_amount, -1.0).desc()  # unknown money after 0
    severity = case(_SEVERITY_RANK, value=Anomaly.severity, else_=0).desc()
    newest = Anomaly.day.desc()
    orders: dict[str, list[Any]] = {
        "impact": [money, severity, Anomaly.score.desc(), newest, Anomaly.id.desc()],
        "severity": [severity, money, Anomaly.score.desc(), newest, Anomaly.id.desc()],
        "day": [newest, Anomaly.score.desc(), Anomaly.id.desc()],
        "score": [Anomaly.score.desc(), newest, Anomaly.id.desc()],
    }
    return orders[sort]


def _search_clause(text: str) -> Any:
    """The anomaly's entity, its parent or grandparent, or its account, named like ``text``
    (part of the name, any case) or with ``text`` as its whole Meta id."""
    parent, grandparent = aliased(Entity), aliased(Entity)
    levels = (Entity, parent, grandparent)
    named = select(Entity.id).outerjoin(parent, parent.id == Entity.parent_id).outerjoin(
        grandparent, grandparent.id == parent.parent_id).where(or_(
            *(e.name.icontains(text, autoescape=True) for e in levels),
            *(e.platform_id == text for e in levels)))
    bare = text.removeprefix("act_")
    accounts = select(AdAccount.id).where(or_(
        AdAccount.name.icontains(text, autoescape=True),
        AdAccount.platform_account_id.in_([bare, f"act_{bare}"])))
    return or_(Anomaly.entity_id.in_(named), Anomaly.account_id.in_(accounts))


def get_anomaly(*, session: Session, principal: Principal, anomaly_id: int) -> Anomaly:
    """The anomaly, if it exists and belongs to an account the token sees."""
    return _visible(session, principal, Anomaly, anomaly_id, largest=INT64_MAX,
                    account_of=lambda anomaly: anomaly.account_id, what="anomaly",
                    hint="list anomalies with GET /api/v1/anomalies")


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


def anomaly_dict(anomaly: Anomaly, place: AnomalyPlace | None = None) -> dict[str, Any]:
    """The API fields of an anomaly (non-finite floats become ``None``: JSON has no NaN), with
    its money at stake, run, kind and next step, and, given its ``place``
    (:func:`~adsentinel.service.anomaly_record.anomaly_places`), its level, names and Meta ids.

    An anomaly stored before money at stake was stored gets it computed from its own numbers
    (:func:`adsentinel.detect.impact.money_at_stake`) and a run of its pooled days.
    """
    level = place.entity.level if place is not None else None
    run = anomaly_run(anomaly, started=anomaly_started(anomaly), level=level or "entity")
    return {
        "id": anomaly.id, "account_id": anomaly.account_id, "entity_id": anomaly.entity_id,
        "day": anomaly.day, "metric": anomaly.metric, "detectors": anomaly.detectors,
        "actual": finite_or(anomaly.actual, 0.0), "expected": finite_or(anomaly.expected, 0.0),
        "lower": finite_or(anomaly.lower), "upper": finite_or(anomaly.upper),
        "direction": anomaly.direction, "score": anomaly.score, "severity": anomaly.severity,
        "message": anomaly.message, "drivers": anomaly.drivers,
        "is_partial_day": bool(anomaly.is_partial_day), "incident_id": anomaly.incident_id,
        "status": anomaly.status, "status_by": anomaly.status_by,
        "status_at": as_utc(anomaly.status_at), "created_at": as_utc(anomaly.created_at),
        "updated_at": as_utc(anomaly.updated_at),
        "impact_amount": anomaly_money(anomaly),
        "currency": place.account.currency if place is not None else None,
        "started": run["started"], "duration_days": run["duration_days"], "kind": run["kind"],
        "next_step": run["next_step"],
        "level": level,
        "meta_ids": place.meta_ids() if place is not None else None,
        "names": place.names() if place is not None else None,
    }


def anomaly_money(anomaly: Anomaly) -> float | None:
    """The stored money at stake, or detection's formula on the anomaly's own numbers."""
    if anomaly.impact_amount is not None:
        return finite_or(anomaly.impact_amount)
    return impact.money_at_stake(anomaly.metric, anomaly.direction, finite_or(anomaly.actual, 0.0),
                                 finite_or(anomaly.expected, 0.0), anomaly.drivers)


def anomaly_started(anomaly: Anomaly) -> date:
    """The stored first day of the anomaly's run, or the first of the days its test pooled."""
    if anomaly.started is not None:
        return anomaly.started
    days = max((pooled_days(d) for d in (anomaly.detectors or "").split("+")), default=1)
    return impact.run_start(anomaly.day, (), pooled_days=days)


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
            "id": run.id, "started_at": as_utc(run.started_at),
            "finished_at": as_utc(run.finished_at), "status": run.status, "counts": run.counts,
            "skip_reasons": run.skip_reasons, "duration_seconds": run.duration_seconds,
            "error": run.error},
        "models_count": models,
        "models_total": sum(models.values()),
        "skip_reasons": {str(k): int(v) for k, v in skip_reasons.items()},
        "last_training": datetime.fromisoformat(last_training) if last_training else None,
    }


# --- helpers ----------------------------------------------------------------------------------


def count_of(session: Session, query: Select) -> int:
    """How many rows ``query`` selects."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _paged(session: Session, query: Select, page: int, page_size: int) -> Page:
    total = count_of(session, query)
    pages = max(1, math.ceil(total / page_size))
    if page > pages:
        raise PageOutOfRange(f"page {page} is past the last page ({pages}) of {total} item(s) "
                             f"at {page_size} per page", hint=f"ask for a page from 1 to {pages}")
    items = session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()
    return Page(list(items), page, page_size, total)


def _visible(session: Session, principal: Principal, model: type[Row], row_id: int, *,
             largest: int, account_of: Callable[[Row], int], what: str, hint: str) -> Row:
    """The ``model`` row ``row_id`` if it exists and the token sees its account; otherwise a
    :class:`NotFoundError` that reads exactly as for a row that does not exist."""
    row = session.get(model, row_id) if _is_id(row_id, largest) else None
    if row is None or not principal.sees(account_of(row)):
        raise NotFoundError(f"{what} {row_id} does not exist", hint=hint)
    return row


def _is_id(value: int, largest: int) -> bool:
    """Ids beyond their column's type cannot exist; looking them up would be a database error
    (PostgreSQL refuses to compare an INTEGER column with 2**31)."""
    return 0 < value <= largest
