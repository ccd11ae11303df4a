"""Time to load every model of N entities from a folder store: one single-model file each (the
older layout) against one pack per campaign, cold and through the process-wide cache.

    .venv/bin/python benchmarks/bench_model_store.py [entities=2000] [entities per campaign=50]
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adsentinel.detect.features import FOREST_FEATURES
from adsentinel.detect.forest import IsolationForest
from adsentinel.model_store.cache import ModelCache
from adsentinel.model_store.store import ModelMetadata, ModelStore

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
PER_CAMPAIGN = int(sys.argv[2]) if len(sys.argv) > 2 else 50
rng = np.random.default_rng(0)
base = [IsolationForest(n_estimators=100, random_state=s).fit(rng.normal(size=(90, len(FOREST_FEATURES))))
        for s in range(20)]
def meta(i, m):
    return ModelMetadata(account_id=1, entity_type="ad", entity_id=str(i), feature_names=FOREST_FEATURES,
        n_samples=90, training_first_day="2026-01-01", training_last_day="2026-03-31",
        score_quantiles=tuple(np.quantile(m.training_scores_, np.linspace(0, 1, 101))))
items = [(base[i % 20], meta(i, base[i % 20])) for i in range(1, N + 1)]
key = b"k" * 32
with tempfile.TemporaryDirectory() as tmp:
    single = ModelStore(Path(tmp) / "single", key, cache=None)
    single.save_many(items)
    packed = ModelStore(Path(tmp) / "packed", key, cache=None)
    campaigns = {}
    for i, item in enumerate(items):
        campaigns.setdefault(i // PER_CAMPAIGN, []).append(item)
    packed.save_campaign_models(1, campaigns)
    def t(f, reps=5):
        out = []
        for _ in range(reps):
            start = time.perf_counter()
            n = f()
            out.append(time.perf_counter() - start)
        return statistics.median(out), n
    one_each, n1 = t(lambda: len(single.load_models(1).models))
    per_pack, n2 = t(lambda: len(packed.load_models(1).models))
    cached = ModelStore(Path(tmp) / "packed", key, cache=ModelCache())
    cached.load_models(1)
    hit, n3 = t(lambda: len(cached.load_models(1).models))
    files_single = len(list((Path(tmp) / "single").rglob("*.adsf")))
    files_packed = len(list((Path(tmp) / "packed").rglob("*.adsp")))
    print(f"entities={N} per_campaign={PER_CAMPAIGN} single_files={files_single} packs={files_packed}")
    print(f"load all, one file each (no cache): {one_each*1000:.0f} ms ({n1} models)")
    print(f"load all, packed (no cache):        {per_pack*1000:.0f} ms ({n2} models)")
    print(f"load all, packed (cache warm):      {hit*1000:.1f} ms ({n3} models)")
    print(f"BENCH model_store entities={N} single_ms={one_each*1000:.0f} packed_ms={per_pack*1000:.0f} "
          f"cached_ms={hit*1000:.1f}")
