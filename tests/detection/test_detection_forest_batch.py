"""The forests' scores of the judged days computed in one call before judging (the hourly
cycle) against each entity's day scored on its own by the detector: the same anomalies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import delete, update

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, Anomaly, DailyInsight, Entity
from adsentinel.detect.account_day import EntityModel
from adsentinel.detect.daily_table import DailyTable
from adsentinel.detect.features import COUNT_COLUMNS, isolation_forest_features
from adsentinel.detect.forest import IsolationForest
from adsentinel.detect.forest_day_scores import with_day_scores
from adsentinel.detection.account import detect_account
from factories import add_account_tree

LAST_DAY = date(2026, 3, 1)
DAYS = 45
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _delivery(rng: np.random.Generator, odd: bool) -> list[float]:
    """A day's counts; an ``odd`` day is an unusual combination: cheap impressions, many
    clicks, few people reached."""
    spend = 300.0 * rng.lognormal(0, 0.1)
    impressions = int(rng.poisson(spend / (5 if odd else 15) * 1000))
    clicks = int(rng.binomial(impressions, 0.05 if odd else 0.012))
    leads = int(rng.binomial(clicks, 0.08))
    reach = int(impressions / (4.0 if odd else 1.3))
    return [spend, impressions, clicks, leads, reach]


def build_account_with_models(session_factory) -> tuple[int, dict[int, tuple]]:
    """One campaign > one ad set > 8 ads of 45 days, the last two days of ads 0-3 odd; every
    entity gets a forest fitted on its days before the last two: ``(account id, loaded models
    by entity id)``."""
    rng = np.random.default_rng(11)
    with session_scope(session_factory) as session:
        account, campaign, adset, ads = add_account_tree(
            session, AdAccount(name="Estudio Lume", currency="BRL"), [f"a{k}" for k in range(8)])
        frames: dict[int, list[list[float]]] = {}
        for k, ad in enumerate(ads):
            for offset in range(DAYS):
                day = LAST_DAY - timedelta(days=DAYS - 1 - offset)
                values = _delivery(rng, odd=k < 4 and offset >= DAYS - 2)
                frames.setdefault(ad.id, []).append(values)
                session.add(DailyInsight(entity_id=ad.id, day=day, **dict(zip(
                    COUNT_COLUMNS, values, strict=True)), updated_at=T0))
        for parent in (adset, campaign):
            totals = np.sum([frames[ad.id] for ad in ads], axis=0)
            frames[parent.id] = totals.tolist()
            for offset, values in enumerate(totals):
                session.add(DailyInsight(entity_id=parent.id, day=LAST_DAY - timedelta(
                    days=DAYS - 1 - offset), **dict(zip(COUNT_COLUMNS, map(float, values),
                                                        strict=True)), updated_at=T0))
        account_id = account.id
    models = {}
    for entity_id, rows in frames.items():
        X = isolation_forest_features(pd.DataFrame(rows[:-2], columns=list(COUNT_COLUMNS)))
        forest = IsolationForest(random_state=entity_id).fit(X)
        models[entity_id] = (forest, np.quantile(forest.training_scores_, np.linspace(0, 1, 101)))
    return account_id, models


def _found(result) -> list[tuple]:
    return sorted((a.entity_id, a.day, a.metric, a.severity, a.score, a.actual, a.message)
                  for a in result)


def test_batched_forest_scores_give_the_same_anomalies(session_factory, settings):
    account_id, models = build_account_with_models(session_factory)

    def loader(entity_type, entity_id):
        return models.get(int(entity_id))

    runs = []
    for batched in (False, True):
        with session_scope(session_factory) as session:  # both runs start from the same state
            session.execute(delete(Anomaly))
            session.execute(update(Entity).values(judged_at=None))
        runs.append(_found(detect_account(
            session_factory=session_factory, settings=settings, account_id=account_id,
            model_loader=loader, now=T0, recheck_days=3, batch_forest_scores=batched)))
    assert runs[0] == runs[1]
    forest_days = {(entity_id, day) for entity_id, day, metric, *_ in runs[1]
                   if metric == "multivariate"}
    assert len(forest_days) >= 4  # the forests spoke, so their scores were compared


def test_day_scores_are_each_forests_own_score_samples():
    rng = np.random.default_rng(2)
    days = pd.date_range("2026-01-01", periods=30)
    frames, models = {}, {}
    for entity_id in range(5):
        counts = rng.uniform(1, 500, size=(30, len(COUNT_COLUMNS)))
        frames[entity_id] = pd.DataFrame({"date": days, **dict(zip(COUNT_COLUMNS, counts.T,
                                                                  strict=True))})
        forest = IsolationForest(n_estimators=20, random_state=entity_id).fit(
            isolation_forest_features(frames[entity_id]))
        models[entity_id] = EntityModel(forest, None)
    models[5] = EntityModel(object(), None)  # not a forest: left to the detector
    frames[6] = frames[0].drop(index=range(20, 30))  # its rows end before the last days
    models[6] = models[0]
    table = DailyTable.of_frames(frames)
    judged = {days[-1].date(): [0, 1, 2, 5, 6], days[-2].date(): [1, 3, 6],
              days[-15].date(): [6], date(2026, 3, 1): [4]}  # a day without a row
    scored = with_day_scores(models, table, judged)
    for day, members in judged.items():
        for entity_id in members:
            frame = frames.get(entity_id)
            rows = frame[frame["date"] == pd.Timestamp(day)] if frame is not None else []
            if entity_id == 5 or len(rows) == 0:
                assert day not in scored[entity_id].day_scores
                continue
            own = models[entity_id].model.score_samples(isolation_forest_features(rows))[0]
            assert scored[entity_id].day_scores[day] == own
