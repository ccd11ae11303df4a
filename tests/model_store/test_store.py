"""The model store: signed, atomic, path-safe, small, cached until the file changes."""

from __future__ import annotations

import logging
import os
import pickle
import re
import stat

import numpy as np
import pytest
from pydantic import SecretStr

from adsentinel.detect.forest import IsolationForest
from adsentinel.errors import ModelStoreError
from adsentinel.model_store.cache import ModelCache
from adsentinel.model_store.store import (
    MAX_MODEL_BYTES,
    ModelMetadata,
    ModelStore,
    load_signing_key,
    safe_entity_name,
)

FEATURES = tuple(f"f{i}" for i in range(8))


def _history(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(90, 8))


def _fit(seed: int = 0) -> IsolationForest:
    return IsolationForest(random_state=seed).fit(_history(seed))


def _metadata(model: IsolationForest, entity_id: str = "123", entity_type: str = "ad",
              account_id: int = 1) -> ModelMetadata:
    return ModelMetadata(
        account_id=account_id,
        entity_type=entity_type,
        entity_id=entity_id,
        feature_names=FEATURES,
        n_samples=90,
        training_first_day="2026-01-01",
        training_last_day="2026-03-31",
        score_quantiles=tuple(np.quantile(model.training_scores_, np.linspace(0, 1, 101))),
    )


@pytest.fixture
def store(tmp_path) -> ModelStore:
    root = tmp_path / "models"
    return ModelStore(root, load_signing_key(root), cache=ModelCache())


def test_save_load_gives_identical_scores_and_metadata(store):
    model = _fit()
    metadata = _metadata(model)
    path = store.save(model, metadata)
    assert path == store.root / "anomaly_detector" / "config_1" / "ad_123.adsf"
    loaded = store.load(1, "ad", "123")
    X = _history(1)
    np.testing.assert_array_equal(loaded.model.score_samples(X), model.score_samples(X))
    assert loaded.model.offset_ == model.offset_
    assert loaded.metadata == metadata
    assert loaded.metadata.engine == "adsentinel-iforest"
    assert loaded.metadata.score_quantiles == tuple(sorted(loaded.metadata.score_quantiles))


def test_model_fits_in_32_kib(store):
    path = store.save(_fit(), _metadata(_fit()))
    assert path.stat().st_size <= MAX_MODEL_BYTES


def test_oversized_model_is_refused(store):
    big = IsolationForest(n_estimators=400, random_state=0).fit(_history())
    with pytest.raises(ModelStoreError, match="more than the 32768"):
        store.save(big, _metadata(big))


def test_missing_model_is_none(store):
    assert store.load(1, "ad", "nope") is None


@pytest.mark.parametrize("entity_id", ["../../etc/x", "/etc/passwd", "..", ".", "a/b", "a\\b",
                                       "x" * 500, "é/\x00"])
def test_entity_ids_cannot_escape_the_account_folder(store, entity_id):
    path = store.model_path(1, "ad", entity_id)
    assert path.parent == store.account_dir(1)
    assert os.path.realpath(path).startswith(os.path.realpath(store.account_dir(1)) + os.sep)
    model = _fit()
    store.save(model, _metadata(model, entity_id=entity_id))
    assert store.load(1, "ad", entity_id).metadata.entity_id == entity_id
    assert [p.name for p in store.root.rglob("*.adsf")] == [path.name]


def test_safe_names_are_one_to_one():
    ids = ["a.b", "a%2Eb", "a_b", "a-b", "A.b", "..", "%", "%25"]
    assert len({safe_entity_name(i) for i in ids}) == len(ids)


@pytest.mark.parametrize(("args", "match"), [
    ((1, "creative", "1"), "entity_type must be one of campaign, adset, ad, got 'creative'"),
    ((-1, "ad", "1"), "account_id must be a non-negative integer, got -1"),
    ((1, "ad", ""), "entity_id must be a non-empty string"),
])
def test_invalid_keys_are_named(store, args, match):
    with pytest.raises(ModelStoreError, match=match):
        store.model_path(*args)


def test_crash_during_write_keeps_the_old_model(store, monkeypatch):
    old = _fit(0)
    store.save(old, _metadata(old))
    new = _fit(5)

    def crash(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ModelStoreError, match="No space left"):
        store.save(new, _metadata(new))
    monkeypatch.undo()
    loaded = store.load(1, "ad", "123")
    X = _history(2)
    np.testing.assert_array_equal(loaded.model.score_samples(X), old.score_samples(X))
    assert [p.name for p in store.account_dir(1).iterdir()] == ["ad_123.adsf"]  # no temp left


def test_batch_crash_replaces_nothing(store, monkeypatch):
    first = _fit(0)
    store.save(first, _metadata(first, entity_id="1"))
    calls = []

    def crash_second(src, dst):
        calls.append(dst)
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", crash_second)
    models = [_fit(3), _fit(4)]
    with pytest.raises(ModelStoreError, match="I/O error"):
        store.save_many([(m, _metadata(m, entity_id=str(i + 1))) for i, m in enumerate(models)])
    monkeypatch.undo()
    X = _history(9)
    np.testing.assert_array_equal(store.load(1, "ad", "1").model.score_samples(X),
                                  first.score_samples(X))
    assert store.load(1, "ad", "2") is None
    assert sorted(p.name for p in store.account_dir(1).iterdir()) == ["ad_1.adsf"]


def test_save_many_writes_every_model(store):
    models = [_fit(i) for i in range(3)]
    paths = store.save_many([(m, _metadata(m, entity_id=str(i))) for i, m in enumerate(models)])
    assert len(paths) == 3
    X = _history(7)
    for i, model in enumerate(models):
        np.testing.assert_array_equal(store.load(1, "ad", str(i)).model.score_samples(X),
                                      model.score_samples(X))


def _refused(store, caplog, reason: str) -> None:
    with caplog.at_level(logging.WARNING, logger="adsentinel.model_store.store"):
        assert store.load(1, "ad", "123") is None
    assert "model refused" in caplog.text
    assert reason in caplog.text
    assert "ad_123.adsf" in caplog.text


def test_truncated_file_is_refused(store, caplog):
    path = store.save(_fit(), _metadata(_fit()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(store, caplog, "signature mismatch")
    path.write_bytes(data[:5])
    _refused(store, caplog, "truncated")


def test_bit_flip_is_refused(store, caplog):
    path = store.save(_fit(), _metadata(_fit()))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    path.write_bytes(bytes(data))
    _refused(store, caplog, "signature mismatch")


def test_file_signed_with_another_key_is_refused(store, caplog, tmp_path):
    other = ModelStore(store.root, b"k" * 32, cache=None)
    other.save(_fit(), _metadata(_fit()))
    _refused(store, caplog, "signature mismatch")


def test_tampered_metadata_with_recomputed_length_is_refused(store, caplog):
    path = store.save(_fit(), _metadata(_fit()))
    data = path.read_bytes().replace(b'"n_samples":90', b'"n_samples":99')
    path.write_bytes(data)
    _refused(store, caplog, "signature mismatch")


def test_pickle_file_is_refused_without_running_it(store, caplog, tmp_path):
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = store.model_path(1, "ad", "123")
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"model": Exploit()}))
    _refused(store, caplog, "not an adsentinel model file")
    assert not marker.exists()


def test_other_format_version_is_refused(store, caplog):
    path = store.save(_fit(), _metadata(_fit()))
    data = bytearray(path.read_bytes())
    data[4] = 2  # format version field
    path.write_bytes(bytes(data))
    _refused(store, caplog, "model format version 2, this code reads 1")


def test_other_engine_version_is_refused(store, caplog, monkeypatch):
    import adsentinel.model_store.codec as codec

    store.save(_fit(), _metadata(_fit()))
    monkeypatch.setattr(codec, "ENGINE_VERSION", "999")
    _refused(store, caplog, "it will be retrained")


def test_model_copied_to_another_entity_is_refused(store, caplog):
    path = store.save(_fit(), _metadata(_fit(), entity_id="999"))
    os.replace(path, store.model_path(1, "ad", "123"))
    _refused(store, caplog, "belongs to account 1 ad '999'")


def test_cache_serves_hits_and_sees_a_retrain(store):
    first = _fit(0)
    store.save(first, _metadata(first))
    X = _history(3)
    store.load(1, "ad", "123")
    store.load(1, "ad", "123")
    assert store.cache.hits == 1
    # another process (no shared memory) retrains the model
    other_process = ModelStore(store.root, load_signing_key(store.root), cache=None)
    second = _fit(11)
    other_process.save(second, _metadata(second))
    np.testing.assert_array_equal(store.load(1, "ad", "123").model.score_samples(X),
                                  second.score_samples(X))


def test_cache_is_bounded_by_entries_and_bytes():
    cache = ModelCache(max_entries=2, max_bytes=100)
    from adsentinel.model_store.cache import FileIdentity

    ident = FileIdentity(1, 1, 1)
    cache.put("a", ident, "A", 10)
    cache.put("b", ident, "B", 10)
    cache.get("a", ident)
    cache.put("c", ident, "C", 10)  # evicts b, the least recently used
    assert cache.get("b", ident) is None and cache.get("a", ident) == "A"
    cache.put("d", ident, "D", 95)  # bytes bound evicts the rest
    assert len(cache) == 1 and cache.nbytes == 95
    cache.put("e", ident, "E", 1000)  # larger than the bound: not cached
    assert cache.get("e", ident) is None


def test_signing_key_file_is_created_once_with_mode_0600(tmp_path):
    key = load_signing_key(tmp_path)
    path = tmp_path / ".signing-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(tmp_path) == key and len(key) == 32
    assert [p.name for p in tmp_path.iterdir()] == [".signing-key"]


def test_configured_signing_key_wins(tmp_path):
    assert load_signing_key(tmp_path, SecretStr("s" * 20)) == b"s" * 20
    assert not (tmp_path / ".signing-key").exists()
    with pytest.raises(ModelStoreError, match="model_signing_key is too short"):
        load_signing_key(tmp_path, SecretStr("short"))


def test_store_from_settings_keeps_its_key_outside_the_store(settings):
    store = ModelStore.from_settings(settings, cache=None)
    assert store.root == settings.effective_models_path
    assert (settings.data_dir / ".signing-key").exists()
    assert not (store.root / ".signing-key").exists()
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700


def _key_file(path, mode=0o600, text="ab" * 32):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_signing_key_from_a_file_outside_the_store(settings, tmp_path):
    key_file = _key_file(tmp_path / "secrets" / "model.key")
    chosen = settings.model_copy(update={"model_signing_key_file": key_file})
    store = ModelStore.from_settings(chosen, cache=None)
    assert store._key == bytes.fromhex("ab" * 32)
    assert not (settings.data_dir / ".signing-key").exists()  # no second key created
    model = _fit()
    store.save(model, _metadata(model))
    assert ModelStore.from_settings(chosen, cache=None).load(1, "ad", "123") is not None


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_may_read_is_refused(settings, tmp_path, mode):
    key_file = _key_file(tmp_path / "secrets" / "model.key", mode)
    chosen = settings.model_copy(update={"model_signing_key_file": key_file})
    with pytest.raises(ModelStoreError, match=f"may be read by group or others \\(mode "
                                              f"{mode:04o}\\); run `chmod 600"):
        ModelStore.from_settings(chosen, cache=None)
    default = settings.data_dir / ".signing-key"
    _key_file(default, mode)  # the default file too
    with pytest.raises(ModelStoreError, match="may be read by group or others"):
        ModelStore.from_settings(settings, cache=None)


def test_a_key_file_inside_the_store_or_missing_is_refused(settings, tmp_path):
    inside = _key_file(settings.effective_models_path / "keys" / "model.key")
    chosen = settings.model_copy(update={"model_signing_key_file": inside})
    with pytest.raises(ModelStoreError, match="lies inside the model store"):
        ModelStore.from_settings(chosen, cache=None)
    missing = settings.model_copy(update={"model_signing_key_file": tmp_path / "nope.key"})
    with pytest.raises(ModelStoreError, match="cannot read the model signing key"):
        ModelStore.from_settings(missing, cache=None)
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ModelStoreError, match="not a regular file"):
        ModelStore.from_settings(settings.model_copy(update={"model_signing_key_file": fifo}),
                                 cache=None)


def test_a_symbolic_link_in_the_store_is_refused(store, tmp_path):
    model = _fit()
    real = store.save(model, _metadata(model, entity_id="1"))
    link = store.model_path(1, "ad", "2")
    elsewhere = tmp_path / "elsewhere.adsf"
    elsewhere.write_bytes(real.read_bytes())
    link.symlink_to(elsewhere)
    with pytest.raises(ModelStoreError, match="a symbolic link"):
        store.read(link)
    assert store.load(1, "ad", "2") is None
    assert store.load_models(1).refused_entities == {2}


def test_a_fifo_in_the_store_is_refused_at_once(store):
    model = _fit()
    store.save(model, _metadata(model, entity_id="1"))
    fifo = store.model_path(1, "ad", "2")
    os.mkfifo(fifo)
    with pytest.raises(ModelStoreError, match="not a regular file"):
        store.read(fifo)  # no writer: a blocking open would hang here for ever
    metadata = store.account_dir(1) / "metadata.json"
    os.mkfifo(metadata)
    with pytest.raises(ModelStoreError, match="not a regular file"):
        store.read_account_metadata(1)


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "expected a JSON object"),
    ('{"models_count": 5}', "models_count must map"),
    ('{"models_count": {"ad": "3"}}', "models_count.ad must be a whole number"),
    ('{"models_count": {"ad": -1}}', "models_count.ad must be a whole number"),
    ('{"models_count": {"planet": 1}}', "models_count must map"),
    ('{"skip_reasons": ["x"]}', "skip_reasons must map"),
    ('{"skip_reasons": {"few days": 1.5}}', "skip_reasons.few days must be a whole number"),
    ('{"last_training": "yesterday"}', "last_training must be an ISO timestamp"),
    ('{"last_training": "2026-12-01T04:00:00"}', "last_training must be an ISO timestamp"),
    ('{"last_training": 5}', "last_training must be an ISO timestamp"),
    ('{"models_count": {"ad": 1}', "not JSON"),
    ("\udcff", "not JSON"),
])
def test_malformed_account_metadata_is_refused_with_the_field(store, text, problem):
    path = store.account_dir(1) / "metadata.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelStoreError, match=re.escape(problem)):
        store.read_account_metadata(1)


def test_account_metadata_round_trip(store):
    data = {"config_id": 1, "models_count": {"ad": 3}, "skip_reasons": {"few days": 2},
            "last_training": "2026-12-01T04:00:00+00:00"}
    store.write_account_metadata(1, data)
    assert store.read_account_metadata(1) == data
    assert store.read_account_metadata(2) is None


def test_loader_for_the_detection_service(store):
    model = _fit()
    store.save(model, _metadata(model, entity_id="77", entity_type="campaign"))
    load = store.load_models(1).loader()
    found, quantiles = load("campaign", "77")
    X = _history(4)
    np.testing.assert_array_equal(found.score_samples(X), model.score_samples(X))
    assert quantiles.shape == (101,) and np.all(np.diff(quantiles) >= 0)
    assert load("ad", "77") is None


def test_stale_temp_files_of_a_crashed_writer_are_removed(store):
    model = _fit()
    path = store.save(model, _metadata(model))
    old = path.parent / ".ad_5.adsf.123.abcd.tmp"
    fresh = path.parent / ".ad_6.adsf.124.abcd.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(old, (0, 0))
    assert store.remove_stale_temp_files(1) == 1
    assert not old.exists() and fresh.exists() and path.exists()
    assert store.remove_stale_temp_files(42) == 0


def test_temp_files_of_a_dead_writer_on_this_machine_go_at_once(store):
    import subprocess
    import sys

    from adsentinel.model_store.blobs import temp_path as _temp_path

    model = _fit()
    path = store.save(model, _metadata(model))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    mine = _temp_path(path)  # a write of this (live) process in progress
    theirs = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{dead.stdout.strip()}."))
    elsewhere = mine.with_name(mine.name.replace(mine.name.split(".")[-4], "other-machine"))
    for temp in (mine, theirs, elsewhere):
        temp.write_bytes(b"staged")
    assert store.remove_stale_temp_files(1) == 1
    assert not theirs.exists()
    assert mine.exists() and elsewhere.exists()  # alive, or not ours to judge before an hour


def test_loader_skips_a_model_trained_on_other_features(tmp_path, caplog):
    import numpy as np

    from adsentinel.detect.forest import IsolationForest
    from adsentinel.model_store.store import ModelMetadata, ModelStore

    store = ModelStore(tmp_path, b"k" * 32)
    model = IsolationForest(n_estimators=10, random_state=0).fit(
        np.random.default_rng(0).normal(size=(60, 3)))
    metadata = ModelMetadata(account_id=1, entity_type="ad", entity_id="7",
                             feature_names=("a", "b", "c"), n_samples=60,
                             training_first_day=None, training_last_day=None)
    store.save(model, metadata)
    assert store.load_models(1).loader()("ad", "7") is not None
    assert store.load_models(1, feature_names=("a", "b", "c")).loader()("ad", "7") is not None
    skipped = store.load_models(1, feature_names=("x", "y", "z"))
    assert skipped.loader()("ad", "7") is None and skipped.refused_entities == {7}
    assert "trained on features" in caplog.text


def test_the_cache_follows_the_settings_memory_budget(tmp_path):
    """A store opened from settings bounds its cache by ``model_cache_mib``: shrinking drops the
    least recently used models at once."""
    from adsentinel.config import load_settings
    from adsentinel.model_store.cache import FileIdentity

    cache = ModelCache()
    ident = FileIdentity(1, 1, 1)
    for name in "abc":
        cache.put(name, ident, name.upper(), 60 * 1024 * 1024)
    settings = load_settings(data_dir=tmp_path, worker_memory_mib=512)  # 212 MiB above the base
    assert settings.model_cache_mib == 53
    ModelStore.from_settings(settings, cache=cache)
    assert cache.max_bytes == 53 * 1024 * 1024
    assert len(cache) == 0  # no 60 MiB model fits in 53 MiB
    settings = load_settings(data_dir=tmp_path, worker_memory_mib=800)
    ModelStore.from_settings(settings, cache=cache)
    for name in "abc":
        cache.put(name, ident, name.upper(), 30 * 1024 * 1024)
    cache.get("a", ident)
    cache.limit_bytes(60 * 1024 * 1024)
    assert cache.get("b", ident) is None and cache.get("a", ident) == "A"
    assert cache.get("c", ident) == "C" and cache.nbytes == 60 * 1024 * 1024
    with pytest.raises(ValueError, match="max_bytes"):
        cache.limit_bytes(-1)
