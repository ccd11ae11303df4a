"""Which entities a job covers: a whole account, or some campaigns with everything below them.

Large accounts are split into chunks of whole campaigns so that several workers share them while
a campaign and its ad sets and ads are always judged together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


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
