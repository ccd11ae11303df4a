"""ADSENTINEL_MODELS_STORAGE_URL end to end: training writes the packs to PostgreSQL or S3,
the hourly detection reads them, and a damaged pack there has its campaign retrained."""

from __future__ import annotations

import logging
import re

import pytest

from adsentinel.config import load_settings
from adsentinel.db.engine import make_session_factory, open_database
from adsentinel.detection.service import (
    campaigns_to_retrain,
    load_detection_models,
    retrain_refused,
    run_detection,
)
from adsentinel.model_store.blobs import open_blob_store
from adsentinel.model_store.store import ModelStore
from adsentinel.training.service import train_account_models
from factories import small_account


@pytest.fixture(params=["postgresql", "s3"])
def remote_settings(request, tmp_path):
    url = request.getfixturevalue("fresh_postgres_url" if request.param == "postgresql"
                                  else "s3_url")
    return load_settings(data_dir=tmp_path / "data", models_storage_url=url,
                         model_signing_key="remote-store-signing-key-0123")


def test_training_and_detection_use_the_remote_store(remote_settings, caplog):
    settings = remote_settings
    factory = make_session_factory(open_database(settings))
    built = small_account(factory)
    result = train_account_models(session_factory=factory, settings=settings,
                                  account_id=built["account"])
    assert result["ad"]["trained"] == 3
    assert not settings.effective_models_path.exists()  # nothing went to the local folder
    store = ModelStore.from_settings(settings, cache=None)
    assert store.root is None
    loaded = store.load_models(built["account"])
    assert len(loaded.models) == 5
    assert store.read_account_metadata(built["account"])["models_count"]["ad"] == 3

    detection = run_detection(session_factory=factory, settings=settings,
                              account_id=built["account"])
    assert detection.retrain_campaigns == [] and detection.refused_models == 0

    # someone with write access to the table or bucket, but not the key, alters the pack
    blobs = open_blob_store(settings.models_storage_url.get_secret_value(),
                            settings.effective_models_path)
    key = store.pack_key(built["account"], built["ids"]["c1"])
    data = bytearray(blobs.read(key, 1 << 30).data)
    data[len(data) // 2] ^= 1
    blobs.write_many({key: bytes(data)})
    caplog.set_level(logging.WARNING, logger="adsentinel")
    detection = run_detection(session_factory=factory, settings=settings,
                              account_id=built["account"])
    assert detection.retrain_campaigns == [built["ids"]["c1"]]
    assert detection.refused_models == 1
    assert any("signature mismatch" in r.getMessage() for r in caplog.records)

    retrain_refused(session_factory=factory, settings=settings, detection=detection)
    again = run_detection(session_factory=factory, settings=settings,
                          account_id=built["account"])
    assert again.retrain_campaigns == [] and again.refused_models == 0


def test_only_the_chunks_own_known_campaigns_are_queued_for_retraining(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data",
                             model_signing_key="remote-store-signing-key-0123")
    factory = make_session_factory(open_database(settings))
    built = small_account(factory)
    account, campaign = built["account"], built["ids"]["c1"]
    train_account_models(session_factory=factory, settings=settings, account_id=account)
    store = ModelStore.from_settings(settings, cache=None)
    # a damaged pack, and one planted under the name of a campaign the account does not have
    store.blobs.write_many({store.pack_key(account, campaign): b"junk",
                            store.pack_key(account, 999_999): b"planted"})
    models = load_detection_models(settings=settings, account_id=account)
    assert models.refused_campaigns == {campaign, 999_999} and not models.models
    assert campaigns_to_retrain(session_factory=factory, models=models,
                                account_id=account) == [campaign]
    assert campaigns_to_retrain(session_factory=factory, models=models, account_id=account,
                                campaign_ids=[campaign + 100]) == []  # another chunk's


def test_an_unreachable_remote_store_is_named_and_detection_goes_on(tmp_path):
    from adsentinel.errors import ModelStoreError

    settings = load_settings(data_dir=tmp_path / "data", model_signing_key="k" * 32,
                             models_storage_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ModelStoreError, match=re.escape("127.0.0.1:1/none table adsentinel_model_blobs")):
        ModelStore.from_settings(settings)
    assert load_detection_models(settings=settings, account_id=1).models == {}
