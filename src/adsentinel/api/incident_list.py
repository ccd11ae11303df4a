"""The dashboard's list of incidents: filtered, worst first, one page at a time.

The filters and the order are the API's (:func:`adsentinel.api.queries.anomaly_query`: money at
stake first, then severity, then score; good news left out). On top of them the list groups: an
open anomaly attached to an open incident of its campaign or ad set that is itself on the list
is counted as that incident's ``related`` instead of being listed twice (once the incident is
closed, or filtered out, the anomaly is listed again: nothing open is ever hidden).

Each row carries what its card needs: where (account and path), since when the incident runs,
its money at stake in the account's currency and its kind, which says the next step
(:mod:`adsentinel.detect.impact`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Select, exists, func, inspect, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.util import ClauseAdapter

from adsentinel.api import queries
from adsentinel.api.auth import Principal
from adsentinel.db.models import AdAccount, Anomaly, AnomalyStatus, Entity
from adsentinel.detect import impact
from adsentinel.errors import AdsentinelError
from adsentinel.service.anomaly_record import anomaly_places

#: the list's orders, as the dashboard names them, and the API's sort each one is
SORTS = {"money": "impact", "severity": "severity", "newest": "day"}
#: statuses the list can be filtered to; ``any`` shows every status
STATUS_CHOICES = (*(s.value for s in AnomalyStatus), "any")
PAGE_SIZE = 50


@dataclass(frozen=True)
class IncidentRow:
    """One card of the list."""

    anomaly: Anomaly
    account: AdAccount
    path: list[Entity]
    related: int

    @property
    def entity(self) -> Entity:
        """The anomaly's own entity."""
        return self.path[-1]

    @property
    def money_at_stake(self) -> float | None:
        """Money at stake in the account's currency; ``None`` for kinds without a formula."""
        return queries.anomaly_money(self.anomaly)

    @property
    def kind(self) -> str:
        """The incident's kind (:data:`adsentinel.detect.impact.KINDS`)."""
        return anomaly_kind(self.anomaly)

    @property
    def started(self) -> date:
        """First day of the run of anomalous days this anomaly ends."""
        return queries.anomaly_started(self.anomaly)

    @property
    def duration_days(self) -> int:
        """Days from :attr:`started` to the anomaly's day, both counted."""
        return impact.duration_days(self.started, self.anomaly.day)


@dataclass(frozen=True)
class IncidentPage:
    """One page of the list, where it sits, and the money at stake over all its rows (per
    currency, each entity-day counted once)."""

    rows: list[IncidentRow]
    page: int
    pages: int
    total: int
    money_by_currency: dict[str, float]


def anomaly_kind(anomaly: Anomaly) -> str:
    """The anomaly's kind, which decides its next step."""
    return impact.anomaly_kind(anomaly.metric, anomaly.direction, anomaly.drivers)


def dashboard_filters(filters: queries.AnomalyFilters) -> queries.AnomalyFilters:
    """The API's filters as the list applies them (``status="any"`` is no status filter)."""
    return replace(filters, status=None) if filters.status == "any" else filters


def incident_page(*, session: Session, principal: Principal, filters: queries.AnomalyFilters,
                  page: int = 1, page_size: int = PAGE_SIZE) -> IncidentPage:
    """The page ``page`` of the incidents matching ``filters`` (see the module docstring)."""
    query = incident_query(session=session, principal=principal, filters=filters)
    total = queries.count_of(session, query)
    pages = max(1, math.ceil(total / page_size))
    if page > pages:
        raise AdsentinelError(f"page {page} is past the last page ({pages}) of {total} "
                              "incident(s)", hint=f"ask for a page from 1 to {pages}")
    shown = list(session.scalars(query.offset((page - 1) * page_size).limit(page_size)))
    places = anomaly_places(session, shown)
    related = _related_counts(session, [a.id for a in shown]) if filters.status == "open" else {}
    rows = [IncidentRow(a, places[a.id].account, places[a.id].path, related.get(a.id, 0))
            for a in shown if a.id in places]
    return IncidentPage(rows, page, pages, total, _money_by_currency(session, query))


def incident_query(*, session: Session, principal: Principal,
                   filters: queries.AnomalyFilters) -> Select:
    """The ordered SELECT of the list's anomalies: the API's query, grouped when it lists the
    open ones."""
    query = queries.anomaly_query(session=session, principal=principal,
                                  filters=dashboard_filters(filters))
    if filters.status != AnomalyStatus.open.value or query.whereclause is None:
        return query
    # the incident passes the same filters: the list's WHERE, said of the incident's row (a
    # correlated NOT EXISTS on its primary key; NOT IN the whole list cost twice the list)
    incident = aliased(Anomaly)
    on_the_list = ClauseAdapter(inspect(incident).selectable).traverse(query.whereclause)
    return query.where(or_(Anomaly.incident_id.is_(None), ~exists().where(
        incident.id == Anomaly.incident_id, on_the_list)))


def _money_by_currency(session: Session, query: Select) -> dict[str, float]:
    """Money at stake of every row of ``query``, each entity-day once (its largest amount:
    :func:`adsentinel.detect.impact.total_at_stake`'s rule), summed per account currency."""
    rows = query.with_only_columns(
        Anomaly.entity_id, Anomaly.day, Anomaly.account_id,
        func.coalesce(Anomaly.impact_amount, 0.0).label("amount")).order_by(None).subquery()
    per_day = (select(rows.c.account_id, func.max(rows.c.amount).label("amount"))
               .group_by(rows.c.entity_id, rows.c.day, rows.c.account_id).subquery())
    return {currency: round(float(amount or 0.0), 2) for currency, amount in session.execute(
        select(AdAccount.currency, func.sum(per_day.c.amount))
        .join(per_day, per_day.c.account_id == AdAccount.id).group_by(AdAccount.currency))}


def _related_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(Anomaly.incident_id, func.count())
        .where(Anomaly.status == AnomalyStatus.open.value, Anomaly.incident_id.in_(ids))
        .group_by(Anomaly.incident_id)).all()
    return {incident: count for incident, count in rows if incident is not None}  # (in ids)


__all__ = [
    "PAGE_SIZE",
    "SORTS",
    "STATUS_CHOICES",
    "IncidentPage",
    "IncidentRow",
    "anomaly_kind",
    "dashboard_filters",
    "incident_page",
    "incident_query",
]
