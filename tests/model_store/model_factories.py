"""Builders of fitted models for the model store's tests."""

from __future__ import annotations

import numpy as np

from adsentinel.detect.forest import IsolationForest
from adsentinel.model_store.codec import ModelMetadata

FEATURES = tuple(f"f{i}" for i in range(8))


def fitted(seed: int, entity_id: int, entity_type: str = "ad",
           account_id: int = 1) -> tuple[IsolationForest, ModelMetadata]:
    """A small fitted forest and its metadata."""
    rows = np.random.default_rng(seed).normal(size=(60, len(FEATURES)))
    model = IsolationForest(n_estimators=20, random_state=seed).fit(rows)
    return model, ModelMetadata(
        account_id=account_id, entity_type=entity_type, entity_id=str(entity_id),
        feature_names=FEATURES, n_samples=60, training_first_day="2026-01-01",
        training_last_day="2026-03-01",
        score_quantiles=tuple(np.quantile(model.training_scores_, np.linspace(0, 1, 101))))
