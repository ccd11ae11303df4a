"""The forests' scores of the judged days, for every entity of a chunk in one call.

The hourly cycle judges one or a few days per entity, and each judged day asks its entity's
forest for one score. :func:`with_day_scores` gathers those rows from the chunk's prepared rows
(a :class:`~adsentinel.detect.daily_table.DailyTable`),
builds their features at once and scores them all with
:func:`~adsentinel.detect.forest.score_packed`; the detector then reads
:attr:`~adsentinel.detect.account_day.EntityModel.day_scores` instead of calling
``score_samples`` per entity. The scores are identical, so are the decisions.

Pure: models and rows in, models with scores out.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from adsentinel.detect.account_day import EntityModel
from adsentinel.detect.daily_table import DailyTable
from adsentinel.detect.features import COUNT_COLUMNS, isolation_forest_features
from adsentinel.detect.forest import IsolationForest, pack_forests, score_packed


def with_day_scores(models: Mapping[Hashable, EntityModel], table: DailyTable,
                    days: Mapping[date, list[int]]) -> dict[Hashable, EntityModel]:
    """``models`` with each forest's ``score_samples`` of its entity's judged days, computed
    for every entity in one call (:func:`~adsentinel.detect.forest.score_packed`) instead of
    one call per entity and day; identical scores, so identical decisions.

    Only :class:`~adsentinel.detect.forest.IsolationForest` models fitted on plain arrays are
    scored here; a day without a row, or whose features the model would refuse (not finite,
    another width), is left to the detector's own ``score_samples`` (which raises as before).
    """
    wanted = [(entity_id, day) for day, members in sorted(days.items()) for entity_id in members
              if _packable(models.get(entity_id))]
    found, counts = _day_rows(table, wanted)
    if not found:
        return dict(models)
    features = isolation_forest_features(pd.DataFrame(counts, columns=list(COUNT_COLUMNS)))
    forests: dict[int, IsolationForest] = {}
    for entity_id, _ in found:
        forest = models[entity_id].model
        if isinstance(forest, IsolationForest):  # as _packable checked
            forests.setdefault(entity_id, forest)
    index = {entity_id: position for position, entity_id in enumerate(forests)}
    usable = [i for i, (entity_id, _) in enumerate(found) if np.isfinite(features[i]).all()
              and forests[entity_id].n_features_in_ == features.shape[1]]
    scores = score_packed(pack_forests(list(forests.values())), features[usable],
                          np.array([index[found[i][0]] for i in usable], dtype=np.int64))
    by_entity: dict[Hashable, dict[date, float]] = {}
    for i, score in zip(usable, scores, strict=True):
        entity_id, day = found[i]
        by_entity.setdefault(entity_id, {})[day] = float(score)
    return {key: replace(model, day_scores={**model.day_scores, **by_entity[key]})
            if key in by_entity else model for key, model in models.items()}


def _packable(model: EntityModel | None) -> bool:
    """Whether ``model`` is a forest :func:`with_day_scores` scores (see there)."""
    return (model is not None and isinstance(model.model, IsolationForest)
            and not hasattr(model.model, "feature_names_in_"))


def _day_rows(table: DailyTable, wanted: Sequence[tuple[int, date]],
              ) -> tuple[list[tuple[int, date]], np.ndarray]:
    """The (entity, day) pairs of ``wanted`` that have a row in ``table``, and those rows'
    counts (:data:`COUNT_COLUMNS`), the values the detector reads for its analysis day."""
    rows = [table.row_of(entity_id, day) for entity_id, day in wanted]
    found = [pair for pair, row in zip(wanted, rows, strict=True) if row is not None]
    index = np.array([row for row in rows if row is not None], dtype=np.int64)
    counts = np.column_stack([table.daily[column].to_numpy(dtype=float)[index]
                              for column in COUNT_COLUMNS])
    return found, counts.reshape(-1, len(COUNT_COLUMNS))
