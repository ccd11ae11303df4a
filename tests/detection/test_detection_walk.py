"""The hourly cycle's statistical tests computed in one vectorised walk before judging (every
judged entity-day and its budget holder, today's partial rows at their hours) against the
per-day reference that runs them entity by entity: the same anomalies, on both labelled worlds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select, update

from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import AdAccount, Anomaly, DailyInsight, Entity
from adsentinel.detection.account import detect_account
from adsentinel.evaluation.dataset_files import write_dataset
from adsentinel.evaluation.worlds import world_dataset
from adsentinel.ingest.csv_import import import_insights_csv

#: What an anomaly is, for "the same anomalies": equal to the last bit.
DECISION = ("entity_id", "day", "metric", "severity", "score", "detectors", "is_partial_day",
            "message")
#: Its numbers: equal to 1e-9 (the walk sums some baselines in another order than the per-day
#: tests, ``tests/detect/test_statistical_walk.py``).
FIGURES = ("actual", "expected", "lower", "upper", "impact_amount")


def _decisions(session_factory) -> list[tuple]:
    """Each stored anomaly's :data:`DECISION` and then its :data:`FIGURES`, sorted."""
    with session_scope(session_factory) as session:
        return sorted((tuple(getattr(a, name) for name in DECISION),
                       tuple(getattr(a, name) for name in FIGURES))
                      for a in session.scalars(select(Anomaly)))


def _same_figure(walked: float | None, reference: float | None) -> bool:
    if walked is None or reference is None:
        return walked is reference
    return math.isclose(walked, reference, rel_tol=1e-9, abs_tol=1e-12) or (
        math.isnan(walked) and math.isnan(reference))


def _read_part_way(session_factory) -> None:
    """Today's rows as the hourly sync leaves them: read at 14:30 UTC, a third of the entities
    (the sync's second page) at 09:00."""
    with session_scope(session_factory) as session:
        today = session.scalar(select(func.max(DailyInsight.day)))
        session.execute(update(DailyInsight).where(DailyInsight.day == today).values(
            is_complete=False, as_of=datetime(today.year, today.month, today.day, 14, 30,
                                              tzinfo=UTC)))
        session.execute(update(DailyInsight).where(
            DailyInsight.day == today, DailyInsight.entity_id % 3 == 0).values(
            as_of=datetime(today.year, today.month, today.day, 9, 0, tzinfo=UTC)))


@pytest.mark.slow
@pytest.mark.parametrize("world", ["lab", "field"])
def test_the_walked_tests_decide_as_the_per_day_path(world, settings, tmp_path):
    engine = open_database(settings)
    import_insights_csv(write_dataset(world_dataset(world, 1, size="evaluation"),
                                      tmp_path / world).insights, engine=engine)
    session_factory = make_session_factory(engine)
    _read_part_way(session_factory)
    with session_scope(session_factory) as session:
        accounts = list(session.scalars(select(AdAccount.id)))
    runs = []
    for walk_tests in (False, True):
        with session_scope(session_factory) as session:  # both runs start from the same state
            session.execute(delete(Anomaly))
            session.execute(update(Entity).values(judged_at=None))
        for account_id in accounts:
            detect_account(session_factory=session_factory, settings=settings,
                           account_id=account_id, recheck_days=3, walk_tests=walk_tests)
        runs.append(_decisions(session_factory))
    engine.dispose()
    reference, walked = runs
    assert [decision for decision, _ in walked] == [decision for decision, _ in reference]
    for (decision, ours), (_, theirs) in zip(walked, reference, strict=True):
        assert all(map(_same_figure, ours, theirs)), (decision, ours, theirs)
    # what was compared: partial days, pooled rate tests, alarms beyond low, many entities
    decisions = [decision for decision, _ in reference]
    assert any(decision[6] for decision in decisions)
    assert any("nb_rate_" in decision[5] for decision in decisions)
    assert any(decision[3] != "low" for decision in decisions)
    assert len({decision[0] for decision in decisions}) >= 50
