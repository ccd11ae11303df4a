"""The model store: the only module that writes or reads model files (through :mod:`.blobs`).

Layout (keys; under the folder, the PostgreSQL table or the S3 prefix alike)::

    anomaly_detector/config_<account_id>/metadata.json
    anomaly_detector/config_<account_id>/campaign_<campaign id>.adsp     (one pack per campaign)
    anomaly_detector/config_<account_id>/<entity_type>_<safe entity id>.adsf  (older, one model)

**Packs.** Training writes the models of a campaign and of every ad set and ad below it as one
signed pack (format in :mod:`.codec`): detection reads one file per campaign instead of one per
entity, verifies its signature once and decodes every forest of it, and the process-wide cache
(:mod:`.cache`) keeps the decoded pack until the pack changes. A pack is accepted whole or
refused whole: a truncated, corrupted, re-signed, moved or otherwise damaged pack is refused
with one log line naming it, its entities fall back to statistical detection, and
:meth:`ModelStore.load_models` returns its campaign among ``refused_campaigns`` so the caller
queues that campaign's retraining. A campaign is the unit of every job (chunks are whole
campaigns), so two workers never write the same pack.

**Older single-model files** (``.adsf``, one per entity, written before packs) keep loading
until the next training of their campaign writes its pack and removes them; a refused one is
returned among ``refused_entities``. ``safe entity id`` keeps ``A-Z a-z 0-9 _ -`` and writes
every other byte of the UTF-8 id as ``%XX``; ids longer than 96 characters become
``h-<sha256>``; the mapping is one-to-one and never leaves the account's folder.

Reading never runs code from the file: the signature is checked first, then the JSON headers
and the byte arrays are parsed and the trees validated (:meth:`IsolationForest.from_state`).
A pack larger than :data:`MAX_PACK_BYTES`, a model larger than :data:`MAX_MODEL_BYTES`, one of
another format or engine version, or a model trained on other features is refused likewise.
``metadata.json`` is checked field by field before anything uses it.

**What the signature protects, and what it does not.** The HMAC (key: ``model_signing_key``,
else the file ``model_signing_key_file``, else ``<data_dir>/.signing-key``; never inside the
store, and a key file readable by group or others is refused) proves that a model file was
written by a holder of the key, unchanged: someone who can write to the store but not read the
key (a shared folder, a database role, a bucket policy, a backup restored from elsewhere)
cannot plant, alter, truncate or swap in another store's or another campaign's models, nor make
the loader parse bytes it did not sign. It does not keep models secret, does not stop a writer
from deleting a pack or putting back an *older* pack of the same campaign signed with the same
key (detection then uses it until the next training), does not cover ``metadata.json``
(display figures only, validated instead) and protects nothing once the key itself is read.

Writes are atomic on every backend (see :mod:`.blobs`): readers see the old pack or the new
one, never half of one. Every machine sharing a store needs the same ``model_signing_key`` (or
a copy of the same key file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from adsentinel.detect.forest import IsolationForest
from adsentinel.errors import ModelStoreError
from adsentinel.keyfile import UnsafeKeyFileError, read_key_file, read_or_create_hex_key
from adsentinel.model_store.blobs import (
    BlobStore,
    FolderBlobs,
    open_blob_store,
    open_regular_file,
)
from adsentinel.model_store.cache import MODEL_CACHE, ModelCache
from adsentinel.model_store.codec import (
    ENTITY_TYPES,
    FORMAT_VERSION,
    MAX_MODEL_BYTES,
    DecodedModel,
    ModelMetadata,
    PackEntry,
    decode_model_file,
    decode_pack,
    encode_model,
    encode_pack,
    sign,
)

__all__ = [
    "ENTITY_TYPES",
    "FORMAT_VERSION",
    "MAX_MODEL_BYTES",
    "MAX_PACK_BYTES",
    "MODEL_SUFFIX",
    "PACK_SUFFIX",
    "LoadedModel",
    "ModelMetadata",
    "ModelSet",
    "ModelStore",
    "check_account_metadata",
    "load_signing_key",
    "safe_entity_name",
]

log = logging.getLogger(__name__)

MODEL_SUFFIX = ".adsf"
PACK_SUFFIX = ".adsp"
MAX_PACK_BYTES = 1024 * 1024 * 1024
SIGNING_KEY_FILE = ".signing-key"
ACCOUNT_METADATA_FILE = "metadata.json"
MAX_ACCOUNT_METADATA_BYTES = 1024 * 1024
_SAFE_CHARS = re.compile(r"[A-Za-z0-9_-]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MAX_NAME_CHARS = 96
_PACK_NAME = re.compile(r"campaign_([0-9]{1,19})\.adsp")
_MODEL_NAME = re.compile(r"(campaign|adset|ad)_([0-9]{1,19})\.adsf")
_REFUSED = "model refused, statistical detection only until retrained: %s"


def safe_entity_name(entity_id: str) -> str:
    """A file-name-safe, one-to-one spelling of ``entity_id`` (see the module docstring)."""
    if not isinstance(entity_id, str) or entity_id == "":
        raise ModelStoreError(f"entity_id must be a non-empty string, got {entity_id!r}")
    if len(entity_id) <= _MAX_NAME_CHARS and _SAFE_NAME.fullmatch(entity_id):
        return entity_id
    out = []
    for char in entity_id:
        if _SAFE_CHARS.fullmatch(char):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    name = "".join(out)
    if len(name) > _MAX_NAME_CHARS:
        name = "h-" + hashlib.sha256(entity_id.encode("utf-8")).hexdigest()
    return name


@dataclass(frozen=True)
class LoadedModel:
    """A verified model read from the store, with its metadata and where it came from."""

    model: IsolationForest
    metadata: ModelMetadata
    source: str

    @property
    def quantiles(self) -> np.ndarray:
        """The sorted training-score quantiles, for calibration."""
        return np.asarray(self.metadata.score_quantiles, dtype=float)


@dataclass(frozen=True)
class ModelSet:
    """What :meth:`ModelStore.load_models` found for an account (or some of its campaigns).

    ``models`` maps ``Entity.id`` to its verified model. ``refused_campaigns`` are the
    campaigns whose pack was refused or held a model trained on other features: their entities
    have no model until they are retrained. ``refused_entities`` are entities whose older
    single-model file was refused (the store does not know their campaign).
    """

    models: Mapping[int, LoadedModel]
    refused_campaigns: frozenset[int] = frozenset()
    refused_entities: frozenset[int] = frozenset()

    @property
    def refused_count(self) -> int:
        """Refused packs and single-model files."""
        return len(self.refused_campaigns) + len(self.refused_entities)

    def loader(self) -> Callable[[str, str], tuple[IsolationForest, np.ndarray] | None]:
        """A ``model_loader`` for the detection service: ``(entity_type, entity_id)`` ->
        ``(model, sorted training-score quantiles)``, or None (statistical detection only)."""
        def load(entity_type: str, entity_id: str) -> tuple[IsolationForest, np.ndarray] | None:
            found = self.models.get(int(entity_id))
            if found is None or found.metadata.entity_type != entity_type:
                return None
            return found.model, found.quantiles

        return load


@dataclass(frozen=True)
class _Pack:
    """What the cache keeps of a verified pack: its forests, built once."""

    models: dict[int, LoadedModel]
    nbytes: int


def load_signing_key(folder: Path, configured: SecretStr | str | bytes | None = None, *,
                     key_file: Path | None = None) -> bytes:
    """The HMAC key of a model store.

    The configured key (``settings.model_signing_key``) wins; then the key in ``key_file``
    (``settings.model_signing_key_file``: at least 32 hex characters, mode 0600 or stricter; it
    must exist). Without either, a random 256-bit key is created once at
    ``<folder>/.signing-key`` with mode 0600 (atomically: concurrent first runs agree on one
    key) and read back on later calls. :meth:`ModelStore.from_settings` passes the data folder,
    never the store. A key file that group or others may read is refused.
    """
    if configured is not None:
        raw = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
        key = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        if len(key) < 16:
            raise ModelStoreError(
                f"model_signing_key is too short ({len(key)} bytes); use at least 16",
                hint="set ADSENTINEL_MODEL_SIGNING_KEY to a long random string",
            )
        return key
    path = Path(key_file) if key_file is not None else Path(folder) / SIGNING_KEY_FILE
    try:
        text = read_key_file(path) if key_file is not None else read_or_create_hex_key(path)
    except UnsafeKeyFileError as exc:
        raise ModelStoreError(
            f"the model signing key is refused: {exc}",
            hint="whoever reads the key can forge models the loader trusts",
        ) from None
    except OSError as exc:
        verb = "read" if key_file is not None else "create"
        raise ModelStoreError(
            f"cannot {verb} the model signing key {path}: {exc.strerror or exc}",
            hint="check ADSENTINEL_MODEL_SIGNING_KEY_FILE, or set ADSENTINEL_MODEL_SIGNING_KEY"
            if key_file is not None else
            "make the data folder writable or set ADSENTINEL_MODEL_SIGNING_KEY",
        ) from None
    return _checked_key(path, text)


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder)) or \
            path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


_LEGACY_KEY_WARNED: set[str] = set()


def _signing_key_of(settings: Any, root: Path | None) -> bytes:
    """The key :func:`load_signing_key` finds for ``settings``; a key file inside the store it
    protects (``root``, a local store's folder) is refused (whoever writes models there could
    often read it)."""
    if root is not None and settings.model_signing_key is None:
        key_file = settings.model_signing_key_file
        path = Path(key_file) if key_file is not None else Path(settings.data_dir) / SIGNING_KEY_FILE
        if _is_inside(path, root):
            raise ModelStoreError(
                f"the model signing key {path} lies inside the model store {root} it protects",
                hint="put it outside (ADSENTINEL_MODEL_SIGNING_KEY_FILE) or set "
                     "ADSENTINEL_MODEL_SIGNING_KEY")
    legacy = root / SIGNING_KEY_FILE if root is not None else None
    if legacy is not None and str(legacy) not in _LEGACY_KEY_WARNED and legacy.exists():
        _LEGACY_KEY_WARNED.add(str(legacy))
        log.warning("%s is an old signing key kept inside the model store and is no longer used; "
                    "delete it (models it signed are refused once and retrained)", legacy)
    return load_signing_key(Path(settings.data_dir), settings.model_signing_key,
                            key_file=settings.model_signing_key_file)


def _checked_key(path: Path, text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ModelStoreError(
            f"the model signing key {path} is malformed (expected 64 hex characters)",
            hint="delete it (every model will be retrained) or set ADSENTINEL_MODEL_SIGNING_KEY",
        )
    return key


class ModelStore:
    """Write and read models, signed with ``signing_key``, in a folder or another backend.

    Parameters
    ----------
    root : Path or BlobStore
        The store's folder (``settings.effective_models_path``), or a backend from
        :func:`~adsentinel.model_store.blobs.open_blob_store`.
    signing_key : bytes
        HMAC key (see :func:`load_signing_key`).
    cache : ModelCache or None
        Cache of verified models; the process-wide :data:`~adsentinel.model_store.cache.MODEL_CACHE`
        by default, ``None`` to read every time.
    """

    def __init__(self, root: Path | str | BlobStore, signing_key: bytes, *,
                 cache: ModelCache | None = MODEL_CACHE) -> None:
        if not signing_key:
            raise ModelStoreError("signing_key must not be empty")
        self.blobs: BlobStore = FolderBlobs(Path(root)) if isinstance(root, (str, Path)) else root
        #: the folder of a local store; None when the store is in a database or a bucket
        self.root: Path | None = self.blobs.root if isinstance(self.blobs, FolderBlobs) else None
        self.location = self.blobs.location
        self._key = bytes(signing_key)
        self.cache = cache

    @classmethod
    def from_settings(cls, settings: Any, *, cache: ModelCache | None = MODEL_CACHE) -> ModelStore:
        """The store a :class:`~adsentinel.config.Settings` describes: ``models_storage_url``
        (PostgreSQL, S3) or else the folder ``effective_models_path``, and the signing key.
        ``cache`` is bounded by the settings' ``model_cache_mib`` (the worker's memory budget)."""
        cache_mib = getattr(settings, "model_cache_mib", None)
        if cache is not None and isinstance(cache_mib, int):
            cache.limit_bytes(cache_mib * 1024 * 1024)
        url = getattr(settings, "models_storage_url", None)
        if isinstance(url, SecretStr):
            url = url.get_secret_value()
        blobs = open_blob_store(url, Path(settings.effective_models_path))
        folder = blobs.root if isinstance(blobs, FolderBlobs) else None
        return cls(blobs, _signing_key_of(settings, folder), cache=cache)

    # -- keys --

    def account_folder(self, account_id: int) -> str:
        """Key prefix of one account's models."""
        if isinstance(account_id, bool) or not isinstance(account_id, (int, np.integer)) \
                or account_id < 0:
            raise ModelStoreError(f"account_id must be a non-negative integer, got {account_id!r}")
        return f"anomaly_detector/config_{int(account_id)}"

    def account_dir(self, account_id: int) -> Path:
        """Folder of one account's models (a local store only)."""
        return self._folder() / self.account_folder(account_id)

    def pack_key(self, account_id: int, campaign_id: int) -> str:
        """Key of the pack of one campaign's models."""
        if isinstance(campaign_id, bool) or not isinstance(campaign_id, (int, np.integer)) \
                or campaign_id < 0:
            raise ModelStoreError(f"campaign_id must be a non-negative integer, got "
                                  f"{campaign_id!r}")
        return f"{self.account_folder(account_id)}/campaign_{int(campaign_id)}{PACK_SUFFIX}"

    def pack_path(self, account_id: int, campaign_id: int) -> Path:
        """File of the pack of one campaign's models (a local store only)."""
        return self._folder() / self.pack_key(account_id, campaign_id)

    def model_key(self, account_id: int, entity_type: str, entity_id: str) -> str:
        """Key of an older single-model file; never outside :meth:`account_folder`."""
        if entity_type not in ENTITY_TYPES:
            raise ModelStoreError(
                f"entity_type must be one of {', '.join(ENTITY_TYPES)}, got {entity_type!r}"
            )
        name = f"{entity_type}_{safe_entity_name(str(entity_id))}{MODEL_SUFFIX}"
        if "/" in name or name.startswith("."):  # safe_entity_name already rules this out
            raise ModelStoreError(f"entity_id {entity_id!r} does not map inside its account")
        return f"{self.account_folder(account_id)}/{name}"

    def model_path(self, account_id: int, entity_type: str, entity_id: str) -> Path:
        """File of an older single-model file (a local store only)."""
        return self._folder() / self.model_key(account_id, entity_type, entity_id)

    def _folder(self) -> Path:
        if self.root is None:
            raise ModelStoreError(f"the model store {self.location} is not a local folder")
        return self.root

    # -- writing packs --

    def save_campaign_models(
        self, account_id: int,
        campaigns: Mapping[int, Sequence[tuple[IsolationForest, ModelMetadata]]],
        *, retired: Iterable[tuple[str, int]] = (),
    ) -> list[str]:
        """Replace the pack of each campaign of ``campaigns`` with its models (all at once:
        one flush to disk for the batch); a campaign with no model loses its pack. Then the
        older single-model files of ``retired`` entities (``(level, Entity.id)``: every entity
        the training covered) are removed. Returns the keys written.

        Raises :class:`ModelStoreError` (no pack of the batch replaced, on a local folder or
        PostgreSQL) if any cannot be written.
        """
        written: dict[str, bytes] = {}
        emptied: list[str] = []
        for campaign_id, models in campaigns.items():
            key = self.pack_key(account_id, campaign_id)
            if not models:
                emptied.append(key)
                continue
            entries = [PackEntry(meta.entity_type, int(meta.entity_id), encode_model(model, meta))
                       for model, meta in models]
            for _model, meta in models:
                if meta.account_id != account_id:
                    raise ModelStoreError(f"model of account {meta.account_id} given to the "
                                          f"pack of account {account_id}")
            written[key] = encode_pack(self._key, account_id, campaign_id, entries)
        self.blobs.write_many(written)
        for key in [*written, *emptied]:
            self._forget(key)
        for key in emptied:
            self.blobs.delete(key)
        self._retire_single_files(account_id, retired)
        return list(written)

    def _retire_single_files(self, account_id: int, retired: Iterable[tuple[str, int]]) -> None:
        wanted = {(level, int(entity_id)) for level, entity_id in retired}
        if not wanted:
            return
        for key in self.blobs.keys(self.account_folder(account_id)):
            match = _MODEL_NAME.fullmatch(key.rsplit("/", 1)[-1])
            if match and (match[1], int(match[2])) in wanted:
                try:
                    self.blobs.delete(key)
                    self._forget(key)
                except OSError as exc:
                    log.warning("older model file %s not removed: %s", self.blobs.where(key),
                                exc.strerror or exc)

    def _forget(self, key: str) -> None:
        if self.cache is not None:
            self.cache.invalidate(self.blobs.where(key))

    # -- reading packs --

    def load_models(self, account_id: int, *, campaign_ids: Iterable[int] | None = None,
                    feature_names: Sequence[str] | None = None) -> ModelSet:
        """Every verified model of the account (or of ``campaign_ids``' packs), read once.

        A refused pack (logged once, naming it and why) puts its campaign in
        ``refused_campaigns``; with ``feature_names``, a pack holding a model trained on other
        features (an older feature set) is refused likewise rather than misused. Older
        single-model files of entities no pack covers are read too (they stay until their
        campaign's next training).
        """
        expected = tuple(feature_names) if feature_names is not None else None
        keys = self.blobs.keys(self.account_folder(account_id))  # with their versions
        packs = {int(m[1]): key for key in keys
                 if (m := _PACK_NAME.fullmatch(key.rsplit("/", 1)[-1]))}
        if campaign_ids is not None:
            wanted = {int(c) for c in campaign_ids}
            packs = {c: key for c, key in packs.items() if c in wanted}
        models: dict[int, LoadedModel] = {}
        refused_campaigns: set[int] = set()
        for campaign_id, key in sorted(packs.items()):
            try:
                pack = self._pack(key, account_id, campaign_id, keys[key])
            except ModelStoreError as exc:
                log.warning(_REFUSED, exc)
                refused_campaigns.add(campaign_id)
                continue
            if pack is None:
                continue
            stale = _other_features(pack.models.values(), expected)
            if stale is not None:
                log.warning("model pack %s holds models trained on features %s, detection uses "
                            "%s; skipped until the next training", self.blobs.where(key),
                            list(stale), list(expected or ()))
                refused_campaigns.add(campaign_id)
                continue
            models.update(pack.models)
        refused_entities = self._load_single_files(account_id, keys, models, expected)
        return ModelSet(models, frozenset(refused_campaigns), frozenset(refused_entities))

    def _pack(self, key: str, account_id: int, campaign_id: int,
              version: Hashable) -> _Pack | None:
        """The verified pack at ``key`` (cached while it is at ``version``, as listed), None
        if it vanished."""
        where = self.blobs.where(key)
        if self.cache is not None:
            cached = self.cache.get(where, version)
            if isinstance(cached, _Pack):  # the cache holds packs and single models by path
                return cached
        try:
            blob = self.blobs.read(key, MAX_PACK_BYTES)
        except FileNotFoundError:
            return None
        try:
            decoded = decode_pack(where, self._key, blob.data, account_id=account_id,
                                  campaign_id=campaign_id)
        finally:
            blob.close()
        pack = _Pack({entity_id: _built(where, entry) for entity_id, entry in decoded.items()},
                     sum(entry.nbytes for entry in decoded.values()) + 4096)
        if self.cache is not None:
            self.cache.put(where, blob.version, pack, pack.nbytes)
        return pack

    def read_pack(self, path: Path, account_id: int, campaign_id: int) -> dict[int, LoadedModel]:
        """Read and verify the pack file at ``path`` (a local store; any name, such as a
        temporary file) as the pack of ``campaign_id``: its models by entity id.

        Raises ``FileNotFoundError`` when there is no file, :class:`ModelStoreError` naming the
        file and the reason when it is refused.
        """
        path = Path(path)
        data = _read_capped(path, MAX_PACK_BYTES, "a pack")
        decoded = decode_pack(str(path), self._key, data, account_id=account_id,
                              campaign_id=campaign_id)
        return {entity_id: _built(str(path), entry) for entity_id, entry in decoded.items()}

    def _load_single_files(self, account_id: int, keys: Mapping[str, Any],
                           models: dict[int, LoadedModel],
                           expected: tuple[str, ...] | None) -> set[int]:
        refused: set[int] = set()
        for key in keys:
            match = _MODEL_NAME.fullmatch(key.rsplit("/", 1)[-1])
            if match is None or int(match[2]) in models:
                continue
            loaded = self._load_key(key, account_id, match[1], match[2])
            if loaded is None:
                if self.blobs.version(key) is not None:
                    refused.add(int(match[2]))
                continue
            if _other_features([loaded], expected) is not None:
                log.warning("model %s was trained on features %s, detection uses %s; skipped "
                            "until the next training", loaded.source,
                            list(loaded.metadata.feature_names), list(expected or ()))
                refused.add(int(match[2]))
                continue
            models[int(match[2])] = loaded
        return refused

    def read_metadata(self, account_id: int, entity_type: str,
                      entity_id: str) -> ModelMetadata | None:
        """Only the verified metadata of an entity's model (None if missing or refused)."""
        found = self.load_models(account_id).models.get(int(entity_id))
        if found is None or found.metadata.entity_type != entity_type:
            return None
        return found.metadata

    # -- older single-model files --

    def save(self, model: IsolationForest, metadata: ModelMetadata) -> Path:
        """Write one model as a single-model file (the layout before packs), atomically."""
        return self.save_many([(model, metadata)])[0]

    def save_many(self, items: Iterable[tuple[IsolationForest, ModelMetadata]]) -> list[Path]:
        """Write many single-model files with one flush to disk for the whole batch; nothing is
        replaced if any cannot be written (:class:`ModelStoreError`)."""
        written = {self.model_key(meta.account_id, meta.entity_type, meta.entity_id):
                   self.encode(model, meta) for model, meta in items}
        self.blobs.write_many(written)
        for key in written:
            self._forget(key)
        return [self._folder() / key if self.root is not None else Path(key) for key in written]

    def encode(self, model: IsolationForest, metadata: ModelMetadata) -> bytes:
        """The signed bytes of one single-model file."""
        return sign(self._key, encode_model(model, metadata))

    def delete(self, account_id: int, entity_type: str, entity_id: str) -> bool:
        """Remove an entity's single-model file; True if there was one."""
        key = self.model_key(account_id, entity_type, entity_id)
        self._forget(key)
        return self.blobs.delete(key)

    def load(self, account_id: int, entity_type: str, entity_id: str) -> LoadedModel | None:
        """One entity's model (from its campaign's pack, or its older single-model file), or
        None when there is none or it is refused (logged). Detection reads a whole account or
        chunk at once through :meth:`load_models`."""
        key = self.model_key(account_id, entity_type, entity_id)
        if not str(entity_id).isdigit():  # not an Entity.id: only ever a single-model file
            return self._load_key(key, account_id, entity_type, str(entity_id))
        found = self.load_models(account_id).models.get(int(entity_id))
        if found is None or found.metadata.entity_type != entity_type:
            return None
        return found

    def _load_key(self, key: str, account_id: int, entity_type: str,
                  entity_id: str) -> LoadedModel | None:
        try:
            loaded = self._read_key(key)
        except FileNotFoundError:
            return None
        except ModelStoreError as exc:
            log.warning(_REFUSED, exc)
            return None
        meta = loaded.metadata
        if (meta.account_id, meta.entity_type, meta.entity_id) != (account_id, entity_type,
                                                                   str(entity_id)):
            log.warning(_REFUSED, f"{loaded.source}: belongs to account {meta.account_id} "
                        f"{meta.entity_type} {meta.entity_id!r} (moved or copied)")
            return None
        return loaded

    def read(self, path: Path) -> LoadedModel:
        """Read and verify the single-model file at ``path`` (a local store).

        Raises ``FileNotFoundError`` when there is no file, :class:`ModelStoreError` naming the
        file and the reason when it is refused.
        """
        path = Path(path)
        data = _read_capped(path, MAX_MODEL_BYTES, "a model")
        return _built(str(path), decode_model_file(str(path), self._key, data))

    def _read_key(self, key: str) -> LoadedModel:
        where = self.blobs.where(key)
        if self.cache is not None:
            version = self.blobs.version(key)
            if version is None:
                raise FileNotFoundError(where)
            cached = self.cache.get(where, version)
            if isinstance(cached, LoadedModel):
                return cached
        blob = self.blobs.read(key, MAX_MODEL_BYTES)
        try:
            loaded = _built(where, decode_model_file(where, self._key, blob.data))
        finally:
            blob.close()
        if self.cache is not None:
            self.cache.put(where, blob.version, loaded, loaded.model.get_state().nbytes + 2048)
        return loaded

    # -- the account's metadata.json --

    def write_account_metadata(self, account_id: int, data: dict[str, Any]) -> str:
        """Write the account's ``metadata.json`` atomically; returns where it went."""
        key = f"{self.account_folder(account_id)}/{ACCOUNT_METADATA_FILE}"
        self.blobs.write_many({key: json.dumps(data, indent=2, default=str).encode("utf-8")})
        return self.blobs.where(key)

    def read_account_metadata(self, account_id: int) -> dict[str, Any] | None:
        """The account's ``metadata.json``, or None if it has never been trained.

        Raises :class:`ModelStoreError` naming the file and the field when it is not what
        training writes (see :func:`check_account_metadata`).
        """
        key = f"{self.account_folder(account_id)}/{ACCOUNT_METADATA_FILE}"
        where = self.blobs.where(key)
        try:
            blob = self.blobs.read(key, MAX_ACCOUNT_METADATA_BYTES)
        except FileNotFoundError:
            return None
        try:
            raw = bytes(blob.data)
        finally:
            blob.close()
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ModelStoreError(f"{where}: not JSON ({exc})",
                                  hint="delete it; the next training writes it again") from None
        try:
            return check_account_metadata(data)
        except ValueError as exc:
            raise ModelStoreError(f"{where}: {exc}",
                                  hint="delete it; the next training writes it again") from None

    def remove_stale_temp_files(self, account_id: int, *, older_than_seconds: float = 3600.0) -> int:
        """Delete temporary files a crashed writer left in the account's folder; returns how
        many (see :meth:`~adsentinel.model_store.blobs.FolderBlobs.remove_stale_temp_files`)."""
        return self.blobs.remove_stale_temp_files(self.account_folder(account_id),
                                                  older_than_seconds)

    def readiness_problem(self) -> str | None:
        """Why the store cannot be read now, or None (nothing trained yet is fine)."""
        if self.root is None:
            try:
                self.blobs.keys("anomaly_detector")
            except ModelStoreError as exc:
                return str(exc)
            return None
        if not self.root.exists():
            return None  # the first training creates it
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
            return f"{self.root} cannot be read by this process"
        return None



def _read_capped(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file at ``path``, refused when it is larger than ``what``
    may be (``limit`` bytes)."""
    handle, info = open_regular_file(path)
    with handle:
        if info.st_size > limit:
            raise ModelStoreError(f"{path}: {info.st_size} bytes, larger than {what} may be")
        return handle.read(limit + 1)

def _built(where: str, decoded: DecodedModel) -> LoadedModel:
    try:
        model = IsolationForest.from_state(decoded.state)
    except ValueError as exc:
        raise ModelStoreError(f"{where}: {exc}") from None
    return LoadedModel(model, decoded.metadata, where)


def _other_features(models: Iterable[LoadedModel],
                    expected: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The feature names of the first model not trained on ``expected`` (None: all are)."""
    if expected is None:
        return None
    for loaded in models:
        if tuple(loaded.metadata.feature_names) != expected:
            return tuple(loaded.metadata.feature_names)
    return None


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a whole number >= 0, got {value!r}")
    return value


def check_account_metadata(data: Any) -> dict[str, Any]:
    """``data`` (a parsed ``metadata.json``) if the fields readers use have the types training
    writes: ``models_count`` {level: count}, ``skip_reasons`` {reason: count} and
    ``last_training`` (an ISO timestamp with its zone, or null). Raises ``ValueError`` naming
    the first field that does not."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    counts = data.get("models_count", {})
    if not isinstance(counts, dict) or not set(counts) <= set(ENTITY_TYPES):
        raise ValueError(f"models_count must map {', '.join(ENTITY_TYPES)} to counts")
    for level, value in counts.items():
        _count(value, f"models_count.{level}")
    reasons = data.get("skip_reasons", {})
    if not isinstance(reasons, dict):
        raise ValueError("skip_reasons must map reasons to counts")
    for reason, value in reasons.items():
        _count(value, f"skip_reasons.{reason}")
    last = data.get("last_training")
    if last is not None:
        try:
            moment = datetime.fromisoformat(last) if isinstance(last, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValueError(f"last_training must be an ISO timestamp with its zone, got {last!r}")
    return data
