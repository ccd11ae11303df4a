"""Per-entity model store: the one place where models are written to and read from disk."""

from adsentinel.models.cache import MODEL_CACHE, ModelCache
from adsentinel.models.store import (
    FORMAT_VERSION,
    MAX_MODEL_BYTES,
    LoadedModel,
    ModelMetadata,
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
    "ModelStore",
    "load_signing_key",
]
