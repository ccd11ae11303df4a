"""The model store: the one place where models are written and read (signed packs of a
campaign's models, in a folder, PostgreSQL or S3)."""

from adsentinel.model_store.cache import MODEL_CACHE, ModelCache
from adsentinel.model_store.store import (
    FORMAT_VERSION,
    MAX_MODEL_BYTES,
    LoadedModel,
    ModelMetadata,
    ModelSet,
    ModelStore,
    load_signing_key,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_MODEL_BYTES",
    "MODEL_CACHE",
    "LoadedModel",
    "ModelCache",
    "ModelMetadata",
    "ModelSet",
    "ModelStore",
    "load_signing_key",
]
