"""Which accounts and entities a job covers: every active account, a whole account, or some
campaigns with everything below them.

Large accounts are split into chunks of whole campaigns so that several workers share them while
a campaign and its ad sets and ads are always judged together. Training, detection, alert
planning and the schedulers (Celery, the embedded scheduler, the API's in-process jobs) all cut
their work here, so every mode covers the same entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adsentinel.db.models import AdAccount, Entity


def campaign_of(entity_id: int, parents: Mapping[int, int | None]) -> int:
    """The campaign at the top of ``entity_id``'s branch (itself for a campaign)."""
    parent = parents.get(entity_id)
    while parent is not None:
        entity_id, parent = parent, parents.get(parent)
    return entity_id


def entities_in_campaigns(parents: Mapping[int, int | None],
                          campaign_ids: Iterable[int]) -> set[int]:
    """Ids of the given campaigns and of every ad set and ad below them.

    ``parents`` maps every entity id of the account to its parent's id (``None`` for campaigns).
    """
    wanted = set(campaign_ids)
    return {entity for entity in parents if campaign_of(entity, parents) in wanted}


def entities_under_campaigns(session: Session, account_id: int,
                             campaign_ids: Iterable[int]) -> set[int]:
    """:func:`entities_in_campaigns` read level by level down from the campaigns (one query per
    level, by the parent index) rather than from the whole account's tree: a chunk of a large
    account reads its own entities only."""
    found: set[int] = set()
    frontier = sorted(set(campaign_ids))
    is_top = True
    while frontier:
        below: list[int] = []
        for start in range(0, len(frontier), 10_000):  # SQLite's bound-parameter limit
            part = frontier[start:start + 10_000]
            column = Entity.id if is_top else Entity.parent_id
            below += session.scalars(select(Entity.id).where(
                Entity.account_id == account_id, column.in_(part)))
        frontier = sorted(set(below) - found)
        found.update(frontier)
        is_top = False
    return found


def entity_parents(session: Session, account_id: int) -> dict[int, int | None]:
    """Every entity id of the account -> its parent's id (``None`` for campaigns)."""
    return dict(session.execute(select(Entity.id, Entity.parent_id).where(
        Entity.account_id == account_id)).all())


def active_account_ids(*, session_factory: sessionmaker[Session]) -> list[int]:
    """Ids of the active accounts that do not need attention, in id order."""
    with session_factory() as session:
        return list(session.scalars(
            select(AdAccount.id).where(AdAccount.is_active.is_(True),
                                       AdAccount.needs_attention.is_(None))
            .order_by(AdAccount.id)))


def campaign_chunks(*, session_factory: sessionmaker[Session], account_id: int,
                    max_entities: int) -> list[list[int] | None]:
    """Split an account into groups of whole campaigns of at most ~``max_entities`` entities.

    A campaign's ad sets and ads always stay in its chunk, so that detection can still see a
    campaign and its children move together. Returns ``[None]`` (the whole account, one task)
    when the account fits in one chunk.
    """
    with session_factory() as session:
        parents = entity_parents(session, account_id)
    if len(parents) <= max_entities:
        return [None]
    size: dict[int, int] = {}
    for entity_id in parents:
        campaign = campaign_of(entity_id, parents)
        size[campaign] = size.get(campaign, 0) + 1
    chunks: list[list[int] | None] = []
    current: list[int] = []
    filled = 0
    for campaign in sorted(size):
        if current and filled + size[campaign] > max_entities:
            chunks.append(current)
            current, filled = [], 0
        current.append(campaign)
        filled += size[campaign]
    if current:
        chunks.append(current)
    return chunks
