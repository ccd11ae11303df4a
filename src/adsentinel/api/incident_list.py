"""The dashboard's list of incidents: filtered, worst first, one page at a time.

"Worst first" means the money at stake first, then the severity, then the score: a media buyer
reads the top of the list and knows where money is leaking. Each row carries what the card
needs: where (account and path), since when the incident runs, the money at stake in the
account's currency, and its kind (which says the next step).

Money at stake, the run's first day and the kind are detection's (:mod:`adsentinel.detect.impact`,
stored with each anomaly as ``impact_amount``, ``started``, ``duration_days``). An anomaly
stored before those columns existed has them computed here from its own numbers for its card,
and sorts as if its money were 0 until detection judges its day again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from adsentinel.api.auth import Principal
from adsentinel.api.queries import get_account
from adsentinel.db.models import AdAccount, Anomaly, AnomalyStatus, Entity
from adsentinel.detect import impact
from adsentinel.detect.statistical import pooled_days
from adsentinel.errors import AdsentinelError

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SORTS = ("money", "severity", "newest")
#: statuses the list can be filtered to; ``any`` shows every status
STATUS_CHOICES = (*(s.value for s in AnomalyStatus), "any")
PAGE_SIZE = 50


@dataclass(frozen=True)
class IncidentFilters:
    """What the list shows. ``min_severity`` keeps that severity and worse; ``severity`` keeps
    exactly one; ``search`` matches an entity's, its parents' or the account's name (part of
    it, any case) or Meta id (whole)."""

    account_id: int | None = None
    start: date | None = None
    end: date | None = None
    level: str | None = None
    metric: str | None = None
    status: str = "open"
    min_severity: str = "medium"
    severity: str | None = None
    search: str | None = None
    sort: str = "money"


@dataclass(frozen=True)
class IncidentRow:
    """One card of the list."""

    anomaly: Anomaly
    account: AdAccount
    entity: Entity
    path: list[Entity]
    related: int

    @property
    def money_at_stake(self) -> float | None:
        """Money at stake in the account's currency; ``None`` for kinds without a formula."""
        return anomaly_money(self.anomaly)

    @property
    def kind(self) -> str:
        """The incident's kind (:data:`adsentinel.detect.impact.KINDS`)."""
        return anomaly_kind(self.anomaly)

    @property
    def started(self) -> date:
        """First day of the run of anomalous days this anomaly ends."""
        return anomaly_started(self.anomaly)

    @property
    def duration_days(self) -> int:
        """Days from :attr:`started` to the anomaly's day, both counted."""
        return impact.duration_days(self.started, self.anomaly.day)


@dataclass(frozen=True)
class IncidentPage:
    """One page of the list, where it sits, and the money at stake over all matching rows
    (per currency, each entity-day counted once)."""

    rows: list[IncidentRow]
    page: int
    pages: int
    total: int
    money_by_currency: dict[str, float]


def anomaly_money(anomaly: Anomaly) -> float | None:
    """The stored money at stake, or detection's formula on the anomaly's own numbers."""
    if anomaly.impact_amount is not None:
        return anomaly.impact_amount
    return impact.money_at_stake(anomaly.metric, anomaly.direction, anomaly.actual,
                                 anomaly.expected, anomaly.drivers)


def anomaly_kind(anomaly: Anomaly) -> str:
    """The anomaly's kind, which decides its next step."""
    return impact.anomaly_kind(anomaly.metric, anomaly.direction, anomaly.drivers)


def anomaly_started(anomaly: Anomaly) -> date:
    """The stored first day of the run, or at least the days its test pooled."""
    if anomaly.started is not None:
        return anomaly.started
    days = max((pooled_days(d) for d in (anomaly.detectors or "").split("+")), default=1)
    return anomaly.day - timedelta(days=days - 1)


def incident_page(*, session: Session, principal: Principal, filters: IncidentFilters,
                  page: int = 1, page_size: int = PAGE_SIZE) -> IncidentPage:
    """The page ``page`` of the anomalies matching ``filters``, sorted as ``filters.sort``.

    With ``status="open"`` an anomaly attached to an open incident of its campaign or ad set
    counts as that incident's ``related`` instead of being listed (shown again once the incident
    is closed, so nothing open is ever hidden).
    """
    if filters.start and filters.end and filters.start > filters.end:
        raise AdsentinelError(f"the start date ({filters.start}) is after the end date "
                              f"({filters.end})", hint="swap them, or leave one out")
    if filters.account_id is not None:
        get_account(session=session, principal=principal, account_id=filters.account_id)
    query = _matching(principal, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / page_size))
    if page > pages:
        raise AdsentinelError(f"page {page} is past the last page ({pages}) of {total} "
                              "incident(s)", hint=f"ask for a page from 1 to {pages}")
    shown = session.execute(query.order_by(*_order(filters.sort))
                            .offset((page - 1) * page_size).limit(page_size)).all()
    related = (_related_counts(session, [a.id for a, _, _ in shown])
               if filters.status == "open" else {})
    parents = _ancestors(session, [e for _, _, e in shown])
    rows = [IncidentRow(anomaly, account, entity, parents(entity), related.get(anomaly.id, 0))
            for anomaly, account, entity in shown]
    return IncidentPage(rows, page, pages, total, _money_by_currency(session, query))


def _order(sort: str) -> list:
    money = func.coalesce(Anomaly.impact_amount, 0.0).desc()
    severity = case(SEVERITY_RANK, value=Anomaly.severity, else_=0).desc()
    if sort == "money":
        return [money, severity, Anomaly.score.desc(), Anomaly.day.desc(), Anomaly.id.desc()]
    if sort == "severity":
        return [severity, Anomaly.score.desc(), money, Anomaly.day.desc(), Anomaly.id.desc()]
    return [Anomaly.day.desc(), severity, Anomaly.score.desc(), Anomaly.id.desc()]


def _money_by_currency(session: Session, query) -> dict[str, float]:
    """Money at stake of every matching anomaly, each entity-day once (its largest amount),
    summed per account currency (:func:`adsentinel.detect.impact.total_at_stake`'s rule)."""
    matching = query.with_only_columns(
        Anomaly.entity_id, Anomaly.day, AdAccount.currency.label("currency"),
        func.coalesce(Anomaly.impact_amount, 0.0).label("amount")).subquery()
    per_day = (select(matching.c.currency, func.max(matching.c.amount).label("amount"))
               .group_by(matching.c.entity_id, matching.c.day, matching.c.currency).subquery())
    return {currency: round(float(amount or 0.0), 2) for currency, amount in session.execute(
        select(per_day.c.currency, func.sum(per_day.c.amount)).group_by(per_day.c.currency))}


def _matching(principal: Principal, filters: IncidentFilters):
    query = (select(Anomaly, AdAccount, Entity)
             .join(AdAccount, AdAccount.id == Anomaly.account_id)
             .join(Entity, Entity.id == Anomaly.entity_id)
             .where(principal.account_filter(Anomaly.account_id),
                    *_conditions(Anomaly, Entity, filters)))
    if filters.status == "open":
        # grouped under its open incident only when that incident is itself on the list
        incident, incident_entity = aliased(Anomaly), aliased(Entity)
        query = (query.outerjoin(incident, incident.id == Anomaly.incident_id)
                 .outerjoin(incident_entity, incident_entity.id == incident.entity_id)
                 .where(Anomaly.status == AnomalyStatus.open.value,
                        or_(Anomaly.incident_id.is_(None), not_(and_(
                            incident.status == AnomalyStatus.open.value,
                            *_conditions(incident, incident_entity, filters))))))
    elif filters.status != "any":
        query = query.where(Anomaly.status == filters.status)
    if filters.account_id is not None:
        query = query.where(Anomaly.account_id == filters.account_id)
    if filters.search:
        query = query.where(_search_clause(filters.search))
    return query


def _conditions(anomaly, entity, filters: IncidentFilters) -> list:
    """The filters on one anomaly's own fields (severity, level, metric, days)."""
    if filters.severity:
        conditions = [anomaly.severity == filters.severity]
    else:
        floor = SEVERITY_RANK[filters.min_severity]
        conditions = [anomaly.severity.in_(
            [s for s, rank in SEVERITY_RANK.items() if rank >= floor])]
    if filters.level is not None:
        conditions.append(entity.level == filters.level)
    if filters.metric is not None:
        conditions.append(anomaly.metric == filters.metric)
    if filters.start:
        conditions.append(anomaly.day >= filters.start)
    if filters.end:
        conditions.append(anomaly.day <= filters.end)
    return conditions


def _search_clause(text: str):
    """The entity, its parent, its grandparent or the account named like ``text`` or with
    ``text`` as Meta id (``act_`` prefix optional for the account)."""
    parent, grandparent = aliased(Entity), aliased(Entity)
    pattern = f"%{text.lower()}%"
    ids = select(Entity.id).outerjoin(parent, parent.id == Entity.parent_id).outerjoin(
        grandparent, grandparent.id == parent.parent_id).where(or_(
            *(func.lower(e.name).like(pattern) for e in (Entity, parent, grandparent)),
            *(e.platform_id == text for e in (Entity, parent, grandparent))))
    bare = text.removeprefix("act_")
    return or_(Anomaly.entity_id.in_(ids), func.lower(AdAccount.name).like(pattern),
               AdAccount.platform_account_id.in_([bare, f"act_{bare}"]))


def _related_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(session.execute(
        select(Anomaly.incident_id, func.count())
        .where(Anomaly.status == AnomalyStatus.open.value, Anomaly.incident_id.in_(ids))
        .group_by(Anomaly.incident_id)).all())


def _ancestors(session: Session, entities: list[Entity]):
    """A function giving an entity's path from its campaign (two queries for a whole page)."""
    known = {e.id: e for e in entities}
    for _ in range(2):
        missing = {e.parent_id for e in known.values() if e.parent_id and e.parent_id not in known}
        if missing:
            known.update({e.id: e for e in session.scalars(
                select(Entity).where(Entity.id.in_(missing)))})

    def path(entity: Entity) -> list[Entity]:
        chain = [entity]
        while chain[-1].parent_id is not None and chain[-1].parent_id in known:
            chain.append(known[chain[-1].parent_id])
        return list(reversed(chain))

    return path


__all__ = ["IncidentFilters", "IncidentPage", "IncidentRow", "PAGE_SIZE", "SEVERITY_RANK",
           "SORTS", "STATUS_CHOICES", "anomaly_kind", "anomaly_money", "anomaly_started",
           "incident_page"]
