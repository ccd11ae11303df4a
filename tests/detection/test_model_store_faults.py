"""The model store full, read-only, or holding a refused model: training stops with a clear error,
the models already there stay in use, and a refused model gets its campaign retrained.

The store is a real filesystem of its own: a small tmpfs mounted for the test (needs root, as on
this project's machines and CI), filled up or remounted read-only."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select, update

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database, session_scope
from adsentinel.db.models import DailyInsight, TrainingRun
from adsentinel.detection.service import model_loader_or_none, retrain_refused, run_detection
from adsentinel.errors import ModelStoreError
from adsentinel.model_store.store import PACK_SUFFIX, ModelStore
from adsentinel.training.service import train_account_models
from factories import LAST_DAY, daily_insight_values, small_account
from service_checks import service_missing


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def store_mount(tmp_path):
    """A 4 MiB tmpfs for the model store, unmounted afterwards."""
    path = tmp_path / "models"
    path.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        service_missing("a tmpfs mount for the model store (needs root)",
                        getattr(exc, "stderr", None) or exc)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def trained(store_mount, tmp_path):
    """An account trained once into the mounted store: (settings, factory, account, models)."""
    settings = load_settings(data_dir=tmp_path / "data", models_storage_path=store_mount,
                             model_signing_key="test-signing-key-0123")
    factory = make_session_factory(open_database(settings))
    built = small_account(factory)
    train_account_models(session_factory=factory, settings=settings, account_id=built["account"])
    store = ModelStore.from_settings(settings, cache=None)
    models = {p: p.read_bytes() for p in store.account_dir(built["account"]).glob("*" + PACK_SUFFIX)}
    assert [p.name for p in models] == [f"campaign_{built['ids']['c1']}{PACK_SUFFIX}"]
    assert len(store.load_models(built["account"]).models) == 5
    # a new day, so that retraining would write different models
    rng = np.random.default_rng(11)
    with session_scope(factory) as session:
        session.execute(update(DailyInsight).where(DailyInsight.day > LAST_DAY)
                        .values(is_complete=True))
        session.execute(insert(DailyInsight), [
            daily_insight_values(rng, entity_id, LAST_DAY + timedelta(days=2), True)
            for entity_id in list(built["ids"].values())[:5]])
    return settings, factory, built, models


def _assert_old_models_in_use(settings, factory, built, models):
    """Every pack is the old one (a chunk's packs are replaced together or not at all); no
    temporary file is left; detection loads the models; the run is failed."""
    store = ModelStore.from_settings(settings, cache=None)
    folder = store.account_dir(built["account"])
    now = {p: p.read_bytes() for p in folder.glob("*" + PACK_SUFFIX)}
    assert now == models
    loaded = store.load_models(built["account"])
    assert len(loaded.models) == 5 and loaded.refused_campaigns == frozenset()
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []
    loader = model_loader_or_none(settings, built["account"], store)
    assert loader("ad", str(built["ids"]["a1"])) is not None  # detection still has its forest
    with factory() as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
    assert run.status == "failed"
    return run


def _fill(path: Path, leave_bytes: int) -> None:
    """Fill the filesystem at ``path`` until only about ``leave_bytes`` are free."""
    filler = path / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))


def test_full_store_stops_training_with_a_clear_error_and_keeps_the_old_models(trained, caplog):
    settings, factory, built, models = trained
    pack = min(len(b) for b in models.values())
    _fill(settings.effective_models_path, leave_bytes=pack // 2)  # full mid-pack
    with pytest.raises(ModelStoreError) as raised:
        train_account_models(session_factory=factory, settings=settings,
                             account_id=built["account"])
    message = str(raised.value)
    assert "could not be saved" in message and "No space left on device" in message
    assert "free space in, or make writable, the model store" in raised.value.hint
    run = _assert_old_models_in_use(settings, factory, built, models)
    assert "No space left on device" in run.error


def test_read_only_store_stops_training_with_a_clear_error_and_keeps_the_old_models(trained):
    settings, factory, built, models = trained
    _mount("-o", "remount,ro", str(settings.effective_models_path))
    with pytest.raises(ModelStoreError, match="Read-only file system"):
        train_account_models(session_factory=factory, settings=settings,
                             account_id=built["account"])
    run = _assert_old_models_in_use(settings, factory, built, models)
    assert "Read-only file system" in run.error


def test_a_refused_model_has_its_campaign_retrained(trained, caplog):
    settings, factory, built, models = trained
    damaged = next(iter(models))
    damaged.write_bytes(models[damaged][:-7])  # truncated
    caplog.set_level(logging.WARNING, logger="adsentinel")
    result = run_detection(session_factory=factory, settings=settings,
                           account_id=built["account"])
    assert result.retrain_campaigns == [built["ids"]["c1"]]
    assert result.refused_models == 1
    assert any("model refused" in r.getMessage() and damaged.name in r.getMessage()
               for r in caplog.records)
    assert any("retraining campaign(s)" in r.getMessage() for r in caplog.records)

    retrained = retrain_refused(session_factory=factory, settings=settings,
                                detection=result)
    assert retrained["ad"]["trained"] == 3
    store = ModelStore.from_settings(settings, cache=None)
    loaded = store.load_models(built["account"])  # whole and verified again
    assert len(loaded.models) == 5 and loaded.refused_campaigns == frozenset()
    again = run_detection(session_factory=factory, settings=settings,
                          account_id=built["account"])
    assert again.retrain_campaigns == []
