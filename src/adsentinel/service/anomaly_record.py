"""What the API and the command line show of a stored anomaly beyond its own columns: where it
is (account, campaign > ad set > entity, names and Meta ids) and its run (kind, first day,
length, next step).

The API's fields (:func:`adsentinel.api.queries.anomaly_dict`) and ``adsentinel detect``'s
rows (:func:`adsentinel.cli.detect_commands.anomaly_rows`) are two contracts with their own
names and formats; both take these facts from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adsentinel.db.models import AdAccount, Anomaly, Entity
from adsentinel.detect import impact

LEVELS = ("campaign", "adset", "ad")


@dataclass(frozen=True)
class AnomalyPlace:
    """Where an anomaly is: its account and the path down to its entity, names and Meta ids."""

    account: AdAccount
    path: list[Entity]

    @property
    def entity(self) -> Entity:
        """The anomaly's own entity (the last of the path)."""
        return self.path[-1]

    def meta_ids(self) -> dict[str, str | None]:
        """Platform ids of the account, campaign, ad set and ad (``None`` above the entity's
        level, e.g. the ad of a campaign's anomaly)."""
        ids: dict[str, str | None] = {"account": self.account.platform_account_id,
                                      **{level: None for level in LEVELS}}
        for entity in self.path:
            ids[entity.level] = entity.platform_id
        return ids

    def names(self) -> dict[str, str | None]:
        """Names of the account, campaign, ad set and ad, as :meth:`meta_ids`."""
        names: dict[str, str | None] = {"account": self.account.name,
                                        **{level: None for level in LEVELS}}
        for entity in self.path:
            names[entity.level] = entity.name
        return names

    def path_text(self) -> str:
        """``campaign > ad set > ad``, each by its name, else its platform id."""
        return " > ".join(entity.name or entity.platform_id for entity in self.path)


def anomaly_places(session: Session, anomalies: list[Anomaly]) -> dict[int, AnomalyPlace]:
    """Where each anomaly is (account, campaign > ad set > entity), by anomaly id, in at most
    four queries whatever the number of anomalies (a page or an export chunk)."""
    known = {e.id: e for e in _entities(session, {a.entity_id for a in anomalies})}
    for _ in range(2):  # ad -> ad set -> campaign
        missing = {e.parent_id for e in known.values()
                   if e.parent_id is not None and e.parent_id not in known}
        known.update({e.id: e for e in _entities(session, missing)})
    account_ids = sorted({a.account_id for a in anomalies})
    accounts = {a.id: a for a in session.scalars(
        select(AdAccount).where(AdAccount.id.in_(account_ids)))} if account_ids else {}
    places = {}
    for anomaly in anomalies:
        entity = known.get(anomaly.entity_id)
        if entity is None or anomaly.account_id not in accounts:
            continue
        path = [entity]
        while path[-1].parent_id is not None and path[-1].parent_id in known:
            path.append(known[path[-1].parent_id])
        places[anomaly.id] = AnomalyPlace(accounts[anomaly.account_id], list(reversed(path)))
    return places


def _entities(session: Session, ids: set[int]) -> list[Entity]:
    ordered = sorted(ids)
    found: list[Entity] = []
    for start in range(0, len(ordered), 10_000):  # SQLite's bound-parameter limit
        found.extend(session.scalars(select(Entity).where(
            Entity.id.in_(ordered[start:start + 10_000]))))
    return found


def anomaly_run(anomaly: Anomaly, *, started: date, level: str) -> dict[str, Any]:
    """The anomaly's ``kind``, and its run from ``started`` to its day: ``started``,
    ``duration_days`` and the ``next_step`` for an entity of ``level`` (the run start is the
    caller's: the stored one, or the caller's own rule for anomalies stored without it)."""
    kind = impact.anomaly_kind(anomaly.metric, anomaly.direction, anomaly.drivers)
    return {"kind": kind, "started": started,
            "duration_days": impact.duration_days(started, anomaly.day),
            "next_step": impact.next_step(kind, level=level, since=started)}
