"""The model store: the only module that writes or reads per-entity model files.

Layout (the training plan's, with a safe file name and its own extension)::

    <root>/anomaly_detector/config_<account_id>/metadata.json
    <root>/anomaly_detector/config_<account_id>/<entity_type>_<safe entity id>.adsf

``<safe entity id>`` keeps ``A-Z a-z 0-9 _ -`` and writes every other byte of the UTF-8 id as
``%XX`` (so ``.`` and ``/`` can never appear and ``../../etc/x`` stays inside the account folder);
ids longer than 96 characters become ``h-<sha256>``. The mapping is one-to-one.

One ``.adsf`` file holds one model and its metadata, so the two are always replaced together::

    b"ADSF" | format version (uint16 LE) | header length (uint32 LE) | header (UTF-8 JSON)
    | payload (feature box float64 LE, split kinds as nibbles when there are fewer than 15
    features, bytes up to 255, uint16/uint32 LE beyond, threshold codes uint16 LE, leaf sizes
    uint8, training-score quantiles float64 LE) | HMAC-SHA256 of everything before it (32 bytes)

A 90-day, 8-feature, 100-tree model takes 15-17 KiB; no compression is needed, which keeps
writing and reading cheap.

Reading never runs code from the file: the signature is checked first, then the JSON header and
the byte arrays are parsed and the trees validated (:meth:`IsolationForest.from_state`). A file
that is truncated, corrupted, signed with another key, of another format or engine version, or
larger than :data:`MAX_MODEL_BYTES` is refused with one log line naming the file and the reason;
the caller falls back to statistical detection and the next training run replaces the file.
Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and must be regular files (``fstat``): a
symbolic link is refused, and a FIFO or device planted under a model's name cannot hang or feed
the loader. ``metadata.json`` is checked field by field before anything uses it.

**What the signature protects, and what it does not.** The HMAC (key: ``model_signing_key``,
else the file ``model_signing_key_file``, else ``<data_dir>/.signing-key``; never inside the
store, and a key file readable by group or others is refused) proves that a model file was
written by a holder of the key, unchanged: someone who can write to the store but not read the
key (a shared folder, a backup restored from elsewhere) cannot plant, alter, truncate or swap
in another store's model, nor make the loader parse bytes it did not sign. It does not keep
models secret (they are readable by whoever reads the store), does not stop a writer from
deleting a model or putting back an *older* model of the same entity signed with the same key
(detection then uses that older model until the next training), does not cover
``metadata.json`` (display figures only, validated instead) and protects nothing once the key
itself is read by an attacker.

Writes are atomic: a temporary file in the same folder is written, flushed to disk, then renamed
over the old model, so readers see the old model or the new one, never half of one. Several
workers and machines can share the store (for example over NFS): every machine needs the same
``model_signing_key`` (or a copy of the same key file), and readers notice a retrain through the
file's inode, mtime and size (see :mod:`.cache`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from adsentinel.detect.forest import (
    ENGINE_NAME,
    ENGINE_VERSION,
    LEAF,
    ForestState,
    IsolationForest,
)
from adsentinel.errors import ModelStoreError
from adsentinel.keyfile import UnsafeKeyFileError, read_key_file, read_or_create_hex_key
from adsentinel.models.cache import MODEL_CACHE, FileIdentity, ModelCache

__all__ = [
    "ENTITY_TYPES",
    "FORMAT_VERSION",
    "MAX_MODEL_BYTES",
    "LoadedModel",
    "ModelMetadata",
    "ModelStore",
    "check_account_metadata",
    "load_signing_key",
    "safe_entity_name",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_MODEL_BYTES = 32 * 1024
MODEL_SUFFIX = ".adsf"
ENTITY_TYPES = ("campaign", "adset", "ad")
SIGNING_KEY_FILE = ".signing-key"
ACCOUNT_METADATA_FILE = "metadata.json"
MAX_ACCOUNT_METADATA_BYTES = 1024 * 1024
_MAGIC = b"ADSF"
_PREFIX = struct.Struct("<4sHI")  # magic, format version, header length
_MAC_BYTES = 32
_SAFE_CHARS = re.compile(r"[A-Za-z0-9_-]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MAX_NAME_CHARS = 96
_NIBBLE_LEAF = 15
#: split kinds as stored: bytes up to 255 features, wider (little-endian) beyond; see ForestState
_KINDS_TYPES = {"byte": np.dtype(np.uint8), "uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
_KINDS_PACKING = {dtype.itemsize: name for name, dtype in _KINDS_TYPES.items()}


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
class ModelMetadata:
    """What a model was trained on and with; stored in the header of every model file.

    ``score_quantiles`` are the 0 %, 1 %, ..., 100 % quantiles of the model's ``score_samples`` on
    its own training rows (sorted ascending), for calibrating scores onto the common 0-100 scale.
    """

    account_id: int
    entity_type: str
    entity_id: str
    feature_names: tuple[str, ...]
    n_samples: int
    training_first_day: str | None
    training_last_day: str | None
    score_quantiles: tuple[float, ...] = ()
    trained_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    engine: str = ENGINE_NAME
    engine_version: str = ENGINE_VERSION
    format_version: int = FORMAT_VERSION
    libraries: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, without ``score_quantiles`` (stored as binary beside the trees)."""
        data = {name: getattr(self, name) for name in _JSON_FIELDS}
        data["feature_names"] = list(self.feature_names)
        data["libraries"] = dict(self.libraries)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], score_quantiles: Sequence[float] = ()) -> ModelMetadata:
        """Rebuild from :meth:`to_json` output; raises ``KeyError``/``TypeError`` when malformed."""
        values = {name: data[name] for name in _JSON_FIELDS if name in data}
        values["feature_names"] = tuple(str(v) for v in data["feature_names"])
        values["libraries"] = {str(k): str(v) for k, v in dict(data.get("libraries", {})).items()}
        return cls(**values, score_quantiles=tuple(np.asarray(score_quantiles, float).tolist()))


_JSON_FIELDS = tuple(name for name in ModelMetadata.__dataclass_fields__ if name != "score_quantiles")


@dataclass(frozen=True)
class LoadedModel:
    """A verified model read from the store, with its metadata and the file it came from."""

    model: IsolationForest
    metadata: ModelMetadata
    path: Path


@dataclass(frozen=True)
class _Verified:
    """What the cache keeps of a verified file: compact arrays, not decoded trees."""

    state: ForestState
    metadata: ModelMetadata

    @property
    def nbytes(self) -> int:
        return self.state.nbytes + 1024 + 8 * len(self.metadata.score_quantiles)


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


def _signing_key_of(settings: Any, root: Path) -> bytes:
    """The key :func:`load_signing_key` finds for ``settings``; a key file inside the store it
    protects is refused (whoever writes models there could often read it)."""
    if settings.model_signing_key is None:
        key_file = settings.model_signing_key_file
        path = Path(key_file) if key_file is not None else Path(settings.data_dir) / SIGNING_KEY_FILE
        if _is_inside(path, root):
            raise ModelStoreError(
                f"the model signing key {path} lies inside the model store {root} it protects",
                hint="put it outside (ADSENTINEL_MODEL_SIGNING_KEY_FILE) or set "
                     "ADSENTINEL_MODEL_SIGNING_KEY")
    legacy = root / SIGNING_KEY_FILE
    if str(legacy) not in _LEGACY_KEY_WARNED and legacy.exists():
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
    """Write and read per-entity models under ``root``, signed with ``signing_key``.

    Parameters
    ----------
    root : Path
        Root folder of the store (``settings.effective_models_path``).
    signing_key : bytes
        HMAC key (see :func:`load_signing_key`).
    cache : ModelCache or None
        Cache of verified models; the process-wide :data:`~adsentinel.models.cache.MODEL_CACHE`
        by default, ``None`` to read the file every time.
    """

    def __init__(self, root: Path, signing_key: bytes, *,
                 cache: ModelCache | None = MODEL_CACHE) -> None:
        if not signing_key:
            raise ModelStoreError("signing_key must not be empty")
        self.root = Path(root)
        self._key = bytes(signing_key)
        self.cache = cache
        #: (account, entity type, entity id) of every model :meth:`load` refused or the loader
        #: skipped as stale: detection asks for these to be retrained
        self.refused: list[tuple[int, str, str]] = []

    @classmethod
    def from_settings(cls, settings: Any, *, cache: ModelCache | None = MODEL_CACHE) -> ModelStore:
        """The store a :class:`~adsentinel.config.Settings` describes (root and signing key)."""
        root = Path(settings.effective_models_path)
        return cls(root, _signing_key_of(settings, root), cache=cache)

    # -- paths --

    def account_dir(self, account_id: int) -> Path:
        """Folder of one account's models."""
        if isinstance(account_id, bool) or not isinstance(account_id, (int, np.integer)) \
                or account_id < 0:
            raise ModelStoreError(f"account_id must be a non-negative integer, got {account_id!r}")
        return self.root / "anomaly_detector" / f"config_{int(account_id)}"

    def model_path(self, account_id: int, entity_type: str, entity_id: str) -> Path:
        """Where the model of one entity lives; never outside :meth:`account_dir`."""
        if entity_type not in ENTITY_TYPES:
            raise ModelStoreError(
                f"entity_type must be one of {', '.join(ENTITY_TYPES)}, got {entity_type!r}"
            )
        folder = self.account_dir(account_id)
        path = folder / f"{entity_type}_{safe_entity_name(str(entity_id))}{MODEL_SUFFIX}"
        if path.parent != folder:  # defence in depth; safe_entity_name already rules this out
            raise ModelStoreError(f"entity_id {entity_id!r} does not map inside {folder}")
        return path

    # -- writing --

    def save(self, model: IsolationForest, metadata: ModelMetadata) -> Path:
        """Write one model atomically (temp file, fsync, rename) and return its path."""
        path = self.model_path(metadata.account_id, metadata.entity_type, metadata.entity_id)
        data = self.encode(model, metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data, fsync=True)
        if self.cache is not None:
            self.cache.invalidate(str(path))
        return path

    def save_many(self, items: Iterable[tuple[IsolationForest, ModelMetadata]]) -> list[Path]:
        """Write many models with one flush to disk for the whole batch.

        Every model goes to its temporary file first, then one ``os.sync`` makes them all durable,
        then each is renamed into place: as atomic as :meth:`save`, without one fsync per file.
        Raises :class:`ModelStoreError` (no model of the batch replaced) if any cannot be written.
        """
        staged: list[tuple[Path, Path]] = []
        try:
            for model, metadata in items:
                path = self.model_path(metadata.account_id, metadata.entity_type,
                                       metadata.entity_id)
                data = self.encode(model, metadata)
                path.parent.mkdir(parents=True, exist_ok=True)
                temp = _temp_path(path)
                _write_file(temp, data, fsync=False)
                staged.append((temp, path))
            if staged:
                os.sync()
            for temp, path in staged:
                os.replace(temp, path)
        except OSError as exc:
            for temp, _ in staged:
                _unlink_quietly(temp)
            raise ModelStoreError(f"cannot write models under {self.root}: {exc}") from None
        except BaseException:
            for temp, _ in staged:
                _unlink_quietly(temp)
            raise
        if self.cache is not None:
            for _, path in staged:
                self.cache.invalidate(str(path))
        return [path for _, path in staged]

    def encode(self, model: IsolationForest, metadata: ModelMetadata) -> bytes:
        """The signed bytes of one model file; refuses models above :data:`MAX_MODEL_BYTES`."""
        state = model.get_state()
        if metadata.engine != ENGINE_NAME or metadata.engine_version != ENGINE_VERSION \
                or metadata.format_version != FORMAT_VERSION:
            raise ModelStoreError(
                f"metadata names engine {metadata.engine} {metadata.engine_version} format "
                f"{metadata.format_version}; this store writes {ENGINE_NAME} {ENGINE_VERSION} "
                f"format {FORMAT_VERSION}"
            )
        packed = state.n_features < _NIBBLE_LEAF
        kinds = _pack_nibbles(state.kinds) if packed else state.kinds
        packing = "nibble" if packed else _KINDS_PACKING[state.kinds.dtype.itemsize]
        quantiles = np.asarray(metadata.score_quantiles, dtype="<f8")
        raw = b"".join([
            np.ascontiguousarray(state.bounds, dtype="<f8").tobytes(),
            np.ascontiguousarray(kinds, dtype=_KINDS_TYPES.get(packing, np.uint8)).tobytes(),
            np.ascontiguousarray(state.codes, dtype="<u2").tobytes(),
            np.ascontiguousarray(state.sizes, dtype=np.uint8).tobytes(),
            quantiles.tobytes(),
        ])
        header = {
            "metadata": metadata.to_json(),
            "forest": {
                "n_estimators": state.n_estimators,
                "max_samples": state.max_samples,
                "n_features": state.n_features,
                "offset": state.offset,
                "n_kinds": int(state.kinds.size),
                "n_codes": int(state.codes.size),
                "n_sizes": int(state.sizes.size),
                "kinds_packing": packing,
                "n_quantiles": int(quantiles.size),
            },
        }
        header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
        body = _PREFIX.pack(_MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes + raw
        data = body + hmac.new(self._key, body, hashlib.sha256).digest()
        if len(data) > MAX_MODEL_BYTES:
            raise ModelStoreError(
                f"model of {metadata.entity_type} {metadata.entity_id!r} takes {len(data)} bytes, "
                f"more than the {MAX_MODEL_BYTES} a model may take",
                hint="lower n_estimators or max_samples",
            )
        return data

    def write_account_metadata(self, account_id: int, data: dict[str, Any]) -> Path:
        """Write the plan's ``metadata.json`` of an account atomically."""
        path = self.account_dir(account_id) / ACCOUNT_METADATA_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, json.dumps(data, indent=2, default=str).encode("utf-8"), fsync=True)
        return path

    def read_account_metadata(self, account_id: int) -> dict[str, Any] | None:
        """The account's ``metadata.json``, or None if it has never been trained.

        Raises :class:`ModelStoreError` naming the file and the field when it is not what
        training writes (see :func:`check_account_metadata`).
        """
        path = self.account_dir(account_id) / ACCOUNT_METADATA_FILE
        try:
            handle, _ = _open_regular_file(path)
        except FileNotFoundError:
            return None
        with handle:
            raw = handle.read(MAX_ACCOUNT_METADATA_BYTES + 1)
        if len(raw) > MAX_ACCOUNT_METADATA_BYTES:
            raise ModelStoreError(f"{path}: larger than {MAX_ACCOUNT_METADATA_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ModelStoreError(f"{path}: not JSON ({exc})",
                                  hint="delete it; the next training writes it again") from None
        try:
            return check_account_metadata(data)
        except ValueError as exc:
            raise ModelStoreError(f"{path}: {exc}",
                                  hint="delete it; the next training writes it again") from None

    def remove_stale_temp_files(self, account_id: int, *, older_than_seconds: float = 3600.0) -> int:
        """Delete temporary files a crashed writer left in the account's folder; returns how many.

        A file goes when the process of this machine that wrote it is gone (a killed worker's
        staged models), or when it is older than ``older_than_seconds`` (another machine's), so
        a write in progress anywhere is safe.
        """
        folder = self.account_dir(account_id)
        if not folder.is_dir():
            return 0
        limit = time.time() - older_than_seconds
        removed = 0
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                try:
                    if _writer_is_dead(entry.name) or entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:  # a read-only store: saving will say so clearly
                    log.warning("stale temporary model file %s not removed: %s", entry.path,
                                exc.strerror or exc)
                    break
        return removed

    def delete(self, account_id: int, entity_type: str, entity_id: str) -> bool:
        """Remove an entity's model; True if there was one."""
        path = self.model_path(account_id, entity_type, entity_id)
        if self.cache is not None:
            self.cache.invalidate(str(path))
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    # -- reading --

    def load(self, account_id: int, entity_type: str, entity_id: str) -> LoadedModel | None:
        """The entity's model, or None when there is none or it is refused (logged once).

        A refused model means: use statistical detection for this entity; the next training run
        rewrites the file.
        """
        path = self.model_path(account_id, entity_type, entity_id)
        try:
            loaded = self.read(path)
        except FileNotFoundError:
            return None
        except ModelStoreError as exc:
            log.warning("model refused, statistical detection only until retrained: %s", exc)
            self.refused.append((account_id, entity_type, str(entity_id)))
            return None
        meta = loaded.metadata
        if (meta.account_id, meta.entity_type, meta.entity_id) != (account_id, entity_type,
                                                                   str(entity_id)):
            self.refused.append((account_id, entity_type, str(entity_id)))
            log.warning(
                "model refused, statistical detection only until retrained: %s: belongs to "
                "account %s %s %r (moved or copied)", path, meta.account_id, meta.entity_type,
                meta.entity_id,
            )
            return None
        return loaded

    def loader(self, account_id: int, *, feature_names: Sequence[str] | None = None
               ) -> Callable[[str, str], tuple[IsolationForest, np.ndarray] | None]:
        """A ``model_loader`` for the detection service: ``(entity_type, entity_id)`` ->
        ``(model, sorted training-score quantiles)``, or None (statistical detection only).

        With ``feature_names``, a model trained on other features (an older feature set) is
        skipped with a log line rather than misused; the next training replaces it.
        """
        expected = tuple(feature_names) if feature_names is not None else None

        def load(entity_type: str, entity_id: str):
            loaded = self.load(account_id, entity_type, entity_id)
            if loaded is None:
                return None
            if expected is not None and tuple(loaded.metadata.feature_names) != expected:
                log.warning("model %s was trained on features %s, detection uses %s; skipped "
                            "until the next training", loaded.path,
                            list(loaded.metadata.feature_names), list(expected))
                self.refused.append((account_id, entity_type, str(entity_id)))
                return None
            return loaded.model, np.asarray(loaded.metadata.score_quantiles, dtype=float)

        return load

    def read(self, path: Path) -> LoadedModel:
        """Read and verify the model file at ``path``.

        Raises
        ------
        FileNotFoundError
            There is no file.
        ModelStoreError
            The file is refused; the message names the file and the reason.
        """
        path = Path(path)
        key = str(path)
        handle, info = _open_regular_file(path)
        with handle:
            identity = FileIdentity.of(info)
            if self.cache is not None:
                cached = self.cache.get(key, identity)
                if cached is not None:
                    return LoadedModel(IsolationForest.from_state(cached.state), cached.metadata,
                                       path)
            if identity.size > MAX_MODEL_BYTES:
                raise ModelStoreError(f"{path}: {identity.size} bytes, larger than a model may be")
            data = handle.read(MAX_MODEL_BYTES + 1)
        verified = self._verify(path, data)
        try:
            model = IsolationForest.from_state(verified.state)
        except ValueError as exc:
            raise ModelStoreError(f"{path}: {exc}") from None
        if self.cache is not None:
            self.cache.put(key, identity, verified, verified.nbytes)
        return LoadedModel(model, verified.metadata, path)

    def read_metadata(self, account_id: int, entity_type: str,
                      entity_id: str) -> ModelMetadata | None:
        """Only the verified metadata of an entity's model (None if missing or refused)."""
        loaded = self.load(account_id, entity_type, entity_id)
        return None if loaded is None else loaded.metadata

    def _verify(self, path: Path, data: bytes) -> _Verified:
        if len(data) < _PREFIX.size + _MAC_BYTES:
            raise ModelStoreError(f"{path}: truncated ({len(data)} bytes)")
        magic, version, header_length = _PREFIX.unpack_from(data)
        if magic != _MAGIC:
            raise ModelStoreError(f"{path}: not an adsentinel model file (unknown format)")
        if version != FORMAT_VERSION:
            raise ModelStoreError(
                f"{path}: model format version {version}, this code reads {FORMAT_VERSION}"
            )
        body, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise ModelStoreError(
                f"{path}: signature mismatch (truncated, corrupted, tampered with, or signed with "
                "another key)"
            )
        header_end = _PREFIX.size + header_length
        if header_end > len(body):
            raise ModelStoreError(f"{path}: header runs past the end of the file")
        try:
            header = json.loads(body[_PREFIX.size:header_end].decode("utf-8"))
            forest = header["forest"]
            n_features = int(forest["n_features"])
            n_kinds = int(forest["n_kinds"])
            packed = forest["kinds_packing"] == "nibble"
            kinds_type = np.dtype(np.uint8) if packed else _KINDS_TYPES[forest["kinds_packing"]]
            sizes = (16 * n_features,
                     (n_kinds + 1) // 2 if packed else n_kinds * kinds_type.itemsize,
                     2 * int(forest["n_codes"]), int(forest["n_sizes"]),
                     8 * int(forest["n_quantiles"]))
            if min(sizes) < 0 or sum(sizes) != len(body) - header_end:
                raise ValueError(f"payload of {len(body) - header_end} bytes, header says {sizes}")
            arrays = _split(body[header_end:], sizes)
            metadata = ModelMetadata.from_json(header["metadata"],
                                               np.frombuffer(arrays[4], dtype="<f8"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelStoreError(f"{path}: malformed header ({exc})") from None
        if metadata.engine != ENGINE_NAME or metadata.engine_version != ENGINE_VERSION:
            raise ModelStoreError(
                f"{path}: trained by {metadata.engine} {metadata.engine_version}, this code runs "
                f"{ENGINE_NAME} {ENGINE_VERSION}; it will be retrained"
            )
        kinds = np.frombuffer(arrays[1], dtype=kinds_type).astype(kinds_type.newbyteorder("="),
                                                                  copy=False)
        if packed:
            kinds = _unpack_nibbles(kinds, n_kinds)
        state = ForestState(
            n_estimators=int(forest["n_estimators"]),
            max_samples=int(forest["max_samples"]),
            n_features=n_features,
            offset=float(forest["offset"]),
            bounds=np.frombuffer(arrays[0], dtype="<f8").reshape(n_features, 2).astype(np.float64),
            kinds=kinds,
            codes=np.frombuffer(arrays[2], dtype="<u2").astype(np.uint16),
            sizes=np.frombuffer(arrays[3], dtype=np.uint8),
        )
        return _Verified(state, metadata)


def _open_regular_file(path: Path):
    """``(binary file, fstat result)`` of ``path``, opened without following a symbolic link
    and without blocking on a FIFO; anything but a regular file is refused.

    Raises ``FileNotFoundError`` when there is no file, :class:`ModelStoreError` otherwise.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelStoreError(f"{path}: a symbolic link; the store reads only the files "
                                  "it wrote") from None
        raise ModelStoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ModelStoreError(f"{path}: not a regular file; the store reads only the files "
                              "it wrote")
    return os.fdopen(fd, "rb"), info


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


def _pack_nibbles(kinds: np.ndarray) -> np.ndarray:
    """Two split kinds per byte (features 0..14, leaf 15), for models of fewer than 15 features."""
    nibbles = _TO_NIBBLE[kinds]
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] << 4) | nibbles[1::2]


def _unpack_nibbles(packed: np.ndarray, n_kinds: int) -> np.ndarray:
    return _NIBBLE_TABLE[packed].ravel()[:n_kinds]


def _nibble_table() -> np.ndarray:
    """Row ``b`` holds the two kinds packed in byte ``b``."""
    high, low = np.arange(256) >> 4, np.arange(256) & 0x0F
    table = np.column_stack([high, low]).astype(np.uint8)
    table[table == _NIBBLE_LEAF] = LEAF
    return table


_NIBBLE_TABLE = _nibble_table()
_TO_NIBBLE = np.arange(256, dtype=np.uint8)
_TO_NIBBLE[LEAF] = _NIBBLE_LEAF


def _split(raw: bytes, sizes: Sequence[int]) -> list[bytes]:
    parts, start = [], 0
    for size in sizes:
        parts.append(raw[start:start + size])
        start += size
    return parts


#: this machine in temporary file names (no dots: names are split on them)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _temp_path(path: Path) -> Path:
    """``.<name>.<host>.<pid>.<random>.tmp``: whose it is, so that the files of a writer that
    died can be removed at once by the next training on the same machine."""
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _writer_is_dead(name: str) -> bool:
    """Whether a temporary file was left by a process of this machine that no longer runs."""
    parts = name.split(".")
    if len(parts) < 5 or parts[-4] != _HOST or not parts[-3].isdigit():
        return False  # another machine's, or an older name: only its age tells
    try:
        os.kill(int(parts[-3]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive (owned by another user)
    return False


def _write_file(path: Path, data: bytes, *, fsync: bool) -> None:
    """Create ``path`` with ``data``; on any failure (a full disk mid-write) it is removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(path)
        raise
    os.close(fd)


def _atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    temp = _temp_path(path)
    try:
        _write_file(temp, data, fsync=fsync)
        os.replace(temp, path)
    except OSError as exc:
        _unlink_quietly(temp)
        raise ModelStoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise


def _unlink_quietly(path: Path) -> None:
    """Remove a temporary file; one that cannot be (a store gone read-only) stays, named as
    temporary: readers never open it and a later training removes it once it is stale."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("temporary model file %s not removed: %s", path, exc.strerror or exc)
