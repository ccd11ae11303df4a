"""Packed model files on every backend (a folder, PostgreSQL, S3): one signed pack per campaign,
read once, refused whole when damaged, with the refusal returned rather than recorded."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from model_factories import FEATURES, fitted

from adsentinel.errors import ModelStoreError
from adsentinel.model_store.cache import ModelCache
from adsentinel.model_store.store import ModelSet, ModelStore, load_signing_key

KEY = b"pack-test-signing-key-0123456789"
PROBE = np.random.default_rng(99).normal(size=(7, len(FEATURES)))


def _campaigns() -> dict[int, list]:
    """Campaign 10 with an ad set and two ads, campaign 20 alone."""
    return {10: [fitted(1, 10, "campaign"), fitted(2, 11, "adset"), fitted(3, 12), fitted(4, 13)],
            20: [fitted(5, 20, "campaign")]}


def _scores(models: ModelSet) -> dict[int, list[float]]:
    return {e: m.model.score_samples(PROBE).tolist() for e, m in models.models.items()}


def test_packs_round_trip_with_identical_scores(blobs):
    store = ModelStore(blobs, KEY, cache=ModelCache())
    campaigns = _campaigns()
    written = store.save_campaign_models(1, campaigns)
    assert written == ["anomaly_detector/config_1/campaign_10.adsp",
                       "anomaly_detector/config_1/campaign_20.adsp"]
    loaded = store.load_models(1, feature_names=FEATURES)
    expected = {int(meta.entity_id): model.score_samples(PROBE).tolist()
                for models in campaigns.values() for model, meta in models}
    assert _scores(loaded) == expected
    assert loaded.refused_campaigns == frozenset() and loaded.refused_entities == frozenset()
    _model, quantiles = loaded.loader()("ad", "12")
    assert quantiles.shape == (101,) and loaded.loader()("campaign", "12") is None
    # one chunk's packs only
    assert set(store.load_models(1, campaign_ids=[20]).models) == {20}


@pytest.mark.parametrize("damage", ["truncate", "bitflip", "pickle", "other key"])
def test_a_damaged_pack_is_refused_whole_and_returned(blobs, damage, caplog, tmp_path):
    store = ModelStore(blobs, KEY, cache=ModelCache())
    store.save_campaign_models(1, _campaigns())
    key = store.pack_key(1, 10)
    good = bytes(blobs.read(key, 1 << 30).data)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    if damage == "truncate":
        bad = good[: len(good) // 3]
    elif damage == "bitflip":
        bad = bytearray(good)
        bad[len(good) // 2] ^= 0x10
        bad = bytes(bad)
    elif damage == "pickle":
        bad = pickle.dumps({"models": Exploit()})
    else:
        ModelStore(blobs, b"another-key-of-32-bytes-00000000").save_campaign_models(
            1, {10: _campaigns()[10]})
        bad = bytes(blobs.read(key, 1 << 30).data)
        blobs.write_many({key: good})
        store.load_models(1)  # the good pack is now cached: the damage must still be seen
    blobs.write_many({key: bad})
    with caplog.at_level(logging.WARNING, logger="adsentinel.model_store.store"):
        loaded = store.load_models(1, feature_names=FEATURES)
    assert loaded.refused_campaigns == {10}
    assert set(loaded.models) == {20}  # the other campaign's pack still serves
    assert "model refused" in caplog.text and "campaign_10.adsp" in caplog.text
    assert not marker.exists()


def test_a_pack_moved_to_another_campaign_or_account_is_refused(blobs, caplog):
    store = ModelStore(blobs, KEY, cache=None)
    store.save_campaign_models(1, _campaigns())
    data = bytes(blobs.read(store.pack_key(1, 10), 1 << 30).data)
    blobs.write_many({store.pack_key(1, 30): data, store.pack_key(2, 10): data})
    assert store.load_models(1).refused_campaigns == {30}
    assert store.load_models(2).refused_campaigns == {10}
    assert "moved or copied" in caplog.text


def test_a_retrain_by_another_process_is_seen_through_the_cache(blobs):
    store = ModelStore(blobs, KEY, cache=ModelCache())
    store.save_campaign_models(1, {20: [fitted(5, 20, "campaign")]})
    first = _scores(store.load_models(1))
    assert _scores(store.load_models(1)) == first and store.cache.hits == 1
    other_process = ModelStore(blobs, KEY, cache=None)
    other_process.save_campaign_models(1, {20: [fitted(6, 20, "campaign")]})
    assert _scores(store.load_models(1)) != first


def test_a_campaign_without_models_loses_its_pack(blobs):
    store = ModelStore(blobs, KEY, cache=ModelCache())
    store.save_campaign_models(1, _campaigns())
    store.save_campaign_models(1, {10: []})
    assert set(store.load_models(1).models) == {20}
    assert list(blobs.keys("anomaly_detector/config_1")) == [
        "anomaly_detector/config_1/campaign_20.adsp"]


def test_models_on_other_features_refuse_their_pack(blobs, caplog):
    store = ModelStore(blobs, KEY, cache=None)
    store.save_campaign_models(1, _campaigns())
    loaded = store.load_models(1, feature_names=("x",) * len(FEATURES))
    assert loaded.refused_campaigns == {10, 20} and not loaded.models
    assert "trained on features" in caplog.text


def test_older_single_model_files_keep_loading_until_their_campaign_is_packed(tmp_path):
    root = tmp_path / "models"
    store = ModelStore(root, load_signing_key(root), cache=ModelCache())
    campaigns = _campaigns()
    paths = store.save_many(campaigns[10])  # the layout before packs: one file per entity
    before = _scores(store.load_models(1))
    assert set(before) == {10, 11, 12, 13}
    store.save_campaign_models(1, {10: campaigns[10][:2]},
                               retired=[(m.entity_type, int(m.entity_id)) for _, m in campaigns[10]])
    assert not any(path.exists() for path in paths)  # migrated: the pack replaces them
    after = store.load_models(1)
    assert set(after.models) == {10, 11}  # entities 12 and 13 were not retrained: no stale model
    assert _scores(after) == {e: before[e] for e in (10, 11)}


def test_a_damaged_older_file_is_returned_as_a_refused_entity(tmp_path, caplog):
    root = tmp_path / "models"
    store = ModelStore(root, load_signing_key(root), cache=None)
    path = store.save(*fitted(3, 12))
    path.write_bytes(path.read_bytes()[:-1])
    loaded = store.load_models(1)
    assert loaded.refused_entities == {12} and not loaded.models
    assert "ad_12.adsf" in caplog.text


def test_an_unreachable_store_is_a_clear_error(tmp_path):
    from adsentinel.model_store.blobs import open_blob_store

    with pytest.raises(ModelStoreError, match="check ADSENTINEL_MODELS_STORAGE_URL"):
        open_blob_store("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    with pytest.raises(ModelStoreError, match="unknown scheme 'ftp'"):
        open_blob_store("ftp://user:secret@host/x", tmp_path)
