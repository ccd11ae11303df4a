"""Training service on SQLite and PostgreSQL: set-based reads, skips, counts, run records."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select

from adsentinel.db.engine import session_scope
from adsentinel.db.models import AdAccount, DailyInsight, Entity, TrainingRun
from adsentinel.detect.features import FOREST_FEATURES, isolation_forest_features
from adsentinel.errors import NotFoundError
from adsentinel.model_store.cache import ModelCache
from adsentinel.model_store.store import ModelStore, load_signing_key
from adsentinel.training.service import train_account_models, training_last_day
from factories import LAST_DAY, daily_insight_values, small_account


def test_trains_counts_and_records(db_settings, session_factory):
    built = small_account(session_factory)
    seen = []
    result = train_account_models(
        session_factory=session_factory, settings=db_settings, account_id=built["account"],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result["campaign"] == {"trained": 1, "skipped": 0, "failed": 0}
    assert result["adset"] == {"trained": 1, "skipped": 0, "failed": 0}
    assert result["ad"] == {"trained": 3, "skipped": 2, "failed": 0}
    assert result["skip_reasons"] == {"insufficient_data": 2}
    assert result["training_window"] == {"first_day": "2026-04-02", "last_day": "2026-06-30"}
    assert seen[-1] == (7, 7)

    store = ModelStore.from_settings(db_settings, cache=None)
    ids = built["ids"]
    loaded = store.load(built["account"], "ad", str(ids["a1"]))
    assert loaded.metadata.n_samples == 90  # 100 complete days, the window keeps 90; not the partial day
    assert loaded.metadata.training_first_day == "2026-04-02"
    assert loaded.metadata.training_last_day == "2026-06-30"
    assert loaded.metadata.feature_names == FOREST_FEATURES
    assert len(loaded.metadata.score_quantiles) == 101
    assert loaded.model.offset_ == pytest.approx(loaded.metadata.score_quantiles[10], abs=0.02)
    assert store.load(built["account"], "ad", str(ids["short"])) is None
    assert store.load(built["account"], "ad", str(ids["silent"])) is None

    metadata = json.loads((store.account_dir(built["account"]) / "metadata.json").read_text())
    assert metadata["config_id"] == built["account"]
    assert metadata["models_count"] == {"campaign": 1, "adset": 1, "ad": 3}
    assert metadata["training_duration_seconds"] >= 0
    assert "last_training" in metadata

    with session_scope(session_factory) as session:
        run = session.execute(select(TrainingRun)).scalar_one()
        assert run.status == "succeeded"
        assert run.counts["ad"] == {"trained": 3, "skipped": 2, "failed": 0}
        assert run.skip_reasons == {"insufficient_data": 2}
        assert run.finished_at is not None and run.duration_seconds >= 0


def test_model_is_trained_on_the_entitys_features(db_settings, session_factory):
    """The stored model equals a model fitted directly on the entity's last 90 complete days."""
    built = small_account(session_factory)
    train_account_models(session_factory=session_factory, settings=db_settings,
                         account_id=built["account"], workers=1)
    entity_id = built["ids"]["a0"]
    with session_scope(session_factory) as session:
        rows = session.execute(
            select(DailyInsight).where(DailyInsight.entity_id == entity_id,
                                       DailyInsight.is_complete.is_(True),
                                       DailyInsight.day > LAST_DAY - timedelta(days=90))
            .order_by(DailyInsight.day)
        ).scalars().all()
        import pandas as pd

        frame = pd.DataFrame([{c: getattr(r, c) for c in
                               ("spend", "impressions", "clicks", "leads", "reach")} for r in rows])
    X = isolation_forest_features(frame)
    loaded = ModelStore.from_settings(db_settings, cache=None).load(built["account"], "ad",
                                                                    str(entity_id))
    scores = loaded.model.score_samples(X)
    np.testing.assert_allclose(np.quantile(scores, np.linspace(0, 1, 101)),
                               loaded.metadata.score_quantiles, atol=1e-9)


def test_retraining_is_deterministic_and_seen_through_the_cache(db_settings, session_factory):
    built = small_account(session_factory)
    root = db_settings.effective_models_path
    store = ModelStore(root, load_signing_key(root), cache=ModelCache())
    kwargs = dict(session_factory=session_factory, settings=db_settings,
                  account_id=built["account"], store=store)
    train_account_models(**kwargs)
    key = (built["account"], "adset", str(built["ids"]["s1"]))
    X = np.random.default_rng(0).normal(size=(5, len(FOREST_FEATURES)))
    before = store.load(*key).model.score_samples(X)
    path = store.pack_path(built["account"], built["ids"]["c1"])  # the campaign's pack
    first_bytes = path.read_bytes()
    train_account_models(**kwargs)
    # same data, same seed: the same trees (only trained_at differs) and a fresh read
    assert store.load(*key).model.score_samples(X).tolist() == before.tolist()
    assert len(path.read_bytes()) == len(first_bytes)
    with session_scope(session_factory) as session:
        assert len(session.execute(select(TrainingRun)).scalars().all()) == 2


def test_entity_that_lost_its_history_loses_its_model(db_settings, session_factory):
    built = small_account(session_factory)
    kwargs = dict(session_factory=session_factory, settings=db_settings,
                  account_id=built["account"])
    train_account_models(**kwargs)
    store = ModelStore.from_settings(db_settings, cache=None)
    entity = built["ids"]["a2"]
    assert store.load(built["account"], "ad", str(entity)) is not None
    with session_scope(session_factory) as session:
        for row in session.execute(select(DailyInsight).where(
                DailyInsight.entity_id == entity, DailyInsight.day < LAST_DAY - timedelta(days=20)
        )).scalars():
            session.delete(row)
    result = train_account_models(**kwargs)
    assert result["ad"] == {"trained": 2, "skipped": 3, "failed": 0}
    assert store.load(built["account"], "ad", str(entity)) is None


def test_unknown_account_is_not_found(db_settings, session_factory):
    with pytest.raises(NotFoundError, match="no ad account with id 999"):
        train_account_models(session_factory=session_factory, settings=db_settings,
                             account_id=999)


def test_account_without_complete_days_skips_everything(db_settings, session_factory):
    with session_scope(session_factory) as session:
        account = AdAccount(name="Vazia")
        session.add(account)
        session.flush()
        session.add(Entity(account_id=account.id, level="campaign", platform_id="c1"))
        account_id = account.id
    result = train_account_models(session_factory=session_factory, settings=db_settings,
                                  account_id=account_id)
    assert result["campaign"] == {"trained": 0, "skipped": 1, "failed": 0}
    assert result["skip_reasons"] == {"insufficient_data": 1}


def test_campaign_subset_trains_only_its_branch(db_settings, session_factory):
    first = small_account(session_factory, name="Primeira")
    second = small_account(session_factory, name="Segunda")  # another account: ids interleave nothing
    with session_scope(session_factory) as session:
        # a second campaign in the first account, created after the other account's entities
        campaign = Entity(account_id=first["account"], level="campaign", platform_id="c2")
        session.add(campaign)
        session.flush()
        rng = np.random.default_rng(9)
        session.execute(insert(DailyInsight), [
            daily_insight_values(rng, campaign.id, LAST_DAY - timedelta(days=k), True) for k in range(90)])
        other_campaign = campaign.id
    result = train_account_models(session_factory=session_factory, settings=db_settings,
                                  account_id=first["account"], campaign_ids=[other_campaign])
    assert result["campaign"] == {"trained": 1, "skipped": 0, "failed": 0}
    assert result["ad"] == {"trained": 0, "skipped": 0, "failed": 0}
    store = ModelStore.from_settings(db_settings, cache=None)
    assert store.load(first["account"], "campaign", str(other_campaign)) is not None
    assert store.load(first["account"], "campaign", str(first["ids"]["c1"])) is None
    assert store.load(second["account"], "campaign", str(second["ids"]["c1"])) is None


def test_a_chunk_given_the_accounts_last_day_trains_the_window_ending_there(db_settings,
                                                                          session_factory):
    """The task splitting a large account reads its last complete day once for every chunk:
    a chunk given that day trains exactly as one reading it itself."""
    built = small_account(session_factory)
    with session_scope(session_factory) as session:
        last_day = training_last_day(session, built["account"])
    assert last_day == LAST_DAY
    given = train_account_models(session_factory=session_factory, settings=db_settings,
                                 account_id=built["account"], campaign_ids=[built["ids"]["c1"]],
                                 last_day=last_day - timedelta(days=10))
    assert given["training_window"] == {"first_day": "2026-03-23", "last_day": "2026-06-20"}
    read = train_account_models(session_factory=session_factory, settings=db_settings,
                                account_id=built["account"], campaign_ids=[built["ids"]["c1"]])
    assert read["training_window"] == {"first_day": "2026-04-02", "last_day": "2026-06-30"}


def test_a_run_left_running_past_the_hard_time_limit_is_closed_as_interrupted(
        db_settings, session_factory):
    from datetime import datetime

    with session_scope(session_factory) as session:
        account = AdAccount(name="Reiniciada")
        session.add(account)
        session.flush()
        session.add(Entity(account_id=account.id, level="campaign", platform_id="c1"))
        now = datetime.now(UTC)
        limit = timedelta(seconds=db_settings.task_time_limit)
        killed = TrainingRun(account_id=account.id, status="running",
                             started_at=now - limit - timedelta(minutes=5))
        recent = TrainingRun(account_id=account.id, status="running",  # another chunk, alive
                             started_at=now - timedelta(minutes=1))
        session.add_all([killed, recent])
        session.flush()
        account_id, killed_id, recent_id = account.id, killed.id, recent.id
    train_account_models(session_factory=session_factory, settings=db_settings,
                         account_id=account_id)
    with session_scope(session_factory) as session:
        closed, alive = session.get(TrainingRun, killed_id), session.get(TrainingRun, recent_id)
        assert closed.status == "failed" and "interrupted" in closed.error
        assert closed.finished_at is not None
        assert alive.status == "running"
