"""The bytes of model files: one model (``.adsf``) and a campaign's pack of models (``.adsp``).

No I/O here: :mod:`adsentinel.model_store.store` decides where the bytes go (:mod:`.blobs`).

One model (the record a pack holds; signed on its own it is the old single-model file)::

    b"ADSF" | format version (uint16 LE) | header length (uint32 LE) | header (UTF-8 JSON)
    | payload (feature box float64 LE, split kinds as nibbles when there are fewer than 15
    features, bytes up to 255, uint16/uint32 LE beyond, threshold codes uint16 LE, leaf sizes
    uint8, training-score quantiles float64 LE)

A single-model file is that record followed by the HMAC-SHA256 of the record (32 bytes).

A pack holds the models of one campaign and every ad set and ad below it::

    b"ADSP" | pack version (uint16 LE) | index length (uint32 LE) | index (UTF-8 JSON:
    {"account_id", "campaign_id", "entities": [[entity type, entity id, offset, length], ...]})
    | the records, one after the other (offsets count from the first record)
    | HMAC-SHA256 of everything before it (32 bytes)

The signature is checked before any byte of a file is parsed, then every record of a pack is
parsed and checked against the index (its account, level and id), so a pack is accepted whole or
refused whole. Parsing never runs code from the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from adsentinel.detect.forest import ENGINE_NAME, ENGINE_VERSION, LEAF, ForestState, IsolationForest
from adsentinel.errors import ModelStoreError

__all__ = [
    "ENTITY_TYPES", "FORMAT_VERSION", "MAX_MODEL_BYTES", "PACK_FORMAT_VERSION", "ModelMetadata",
    "PackEntry", "decode_model", "decode_model_file", "decode_pack", "encode_model", "encode_pack", "sign",
    "verify_signature",
]

FORMAT_VERSION = 1
PACK_FORMAT_VERSION = 1
MAX_MODEL_BYTES = 32 * 1024
ENTITY_TYPES = ("campaign", "adset", "ad")
MAC_BYTES = 32
_MAGIC = b"ADSF"
_PACK_MAGIC = b"ADSP"
_PREFIX = struct.Struct("<4sHI")  # magic, format version, header length
_NIBBLE_LEAF = 15
#: split kinds as stored: bytes up to 255 features, wider (little-endian) beyond; see ForestState
_KINDS_TYPES: dict[str, np.dtype[Any]] = {"byte": np.dtype(np.uint8), "uint16": np.dtype("<u2"),
                                          "uint32": np.dtype("<u4")}
#: what a signed file is read from: its bytes, a memory map of it, or a view of either
SignedData = bytes | memoryview | mmap.mmap

_KINDS_PACKING = {dtype.itemsize: name for name, dtype in _KINDS_TYPES.items()}


@dataclass(frozen=True)
class ModelMetadata:
    """What a model was trained on and with; stored in the header of every model record.

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
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
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
    def from_json(cls, data: dict[str, Any],
                  score_quantiles: Sequence[float] | np.ndarray = ()) -> ModelMetadata:
        """Rebuild from :meth:`to_json` output; raises ``KeyError``/``TypeError`` when malformed."""
        values = {name: data[name] for name in _JSON_FIELDS if name in data}
        values["feature_names"] = tuple(str(v) for v in data["feature_names"])
        values["libraries"] = {str(k): str(v) for k, v in dict(data.get("libraries", {})).items()}
        return cls(**values, score_quantiles=tuple(np.asarray(score_quantiles, float).tolist()))


_JSON_FIELDS = tuple(name for name in ModelMetadata.__dataclass_fields__ if name != "score_quantiles")


@dataclass(frozen=True)
class DecodedModel:
    """A parsed model record: the forest's plain state and its metadata."""

    state: ForestState
    metadata: ModelMetadata

    @property
    def nbytes(self) -> int:
        """Memory held, roughly (for the cache's bound)."""
        return self.state.nbytes + 1024 + 8 * len(self.metadata.score_quantiles)


@dataclass(frozen=True)
class PackEntry:
    """One model of a pack: who it belongs to and its (unsigned) record."""

    entity_type: str
    entity_id: int
    record: bytes


# -- signing --------------------------------------------------------------------------------------


def sign(key: bytes, body: bytes) -> bytes:
    """``body`` followed by its HMAC-SHA256 under ``key``."""
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify_signature(where: str, key: bytes, data: SignedData) -> memoryview:
    """The signed part of ``data`` (bytes or a memory map) if its HMAC is right.

    Raises :class:`ModelStoreError` naming ``where`` otherwise.
    """
    view = memoryview(data)
    if len(view) < _PREFIX.size + MAC_BYTES:
        raise ModelStoreError(f"{where}: truncated ({len(view)} bytes)")
    body, mac = view[:-MAC_BYTES], view[-MAC_BYTES:]
    if not hmac.compare_digest(bytes(mac), hmac.new(key, body, hashlib.sha256).digest()):
        raise ModelStoreError(
            f"{where}: signature mismatch (truncated, corrupted, tampered with, or signed with "
            "another key)"
        )
    return body


def _check_prefix(where: str, body: memoryview, magic: bytes, version: int, what: str) -> int:
    """The header length after a valid ``magic | version`` prefix."""
    if len(body) < _PREFIX.size:
        raise ModelStoreError(f"{where}: truncated ({len(body)} bytes)")
    found, found_version, header_length = _PREFIX.unpack_from(body)
    if found != magic:
        raise ModelStoreError(f"{where}: not an adsentinel {what} (unknown format)")
    if found_version != version:
        raise ModelStoreError(
            f"{where}: {what.replace(' file', '')} format version {found_version}, this code reads {version}")
    if _PREFIX.size + header_length > len(body):
        raise ModelStoreError(f"{where}: header runs past the end of the file")
    return int(header_length)  # struct's "I": an int


# -- one model -----------------------------------------------------------------------------------


def encode_model(model: IsolationForest, metadata: ModelMetadata) -> bytes:
    """The unsigned record of one model; refuses one above :data:`MAX_MODEL_BYTES`."""
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
    record = _PREFIX.pack(_MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes + raw
    if len(record) + MAC_BYTES > MAX_MODEL_BYTES:
        raise ModelStoreError(
            f"model of {metadata.entity_type} {metadata.entity_id!r} takes "
            f"{len(record) + MAC_BYTES} bytes, more than the {MAX_MODEL_BYTES} a model may take",
            hint="lower n_estimators or max_samples",
        )
    return record


def decode_model(where: str, record: memoryview | bytes) -> DecodedModel:
    """Parse an (already verified) model record; raises :class:`ModelStoreError` naming
    ``where`` when it is malformed or from another engine version."""
    record = memoryview(record)
    header_length = _check_prefix(where, record, _MAGIC, FORMAT_VERSION, "model file")
    header_end = _PREFIX.size + header_length
    try:
        header = json.loads(bytes(record[_PREFIX.size:header_end]).decode("utf-8"))
        forest = header["forest"]
        n_features = int(forest["n_features"])
        n_kinds = int(forest["n_kinds"])
        packed = forest["kinds_packing"] == "nibble"
        kinds_type = np.dtype(np.uint8) if packed else _KINDS_TYPES[forest["kinds_packing"]]
        sizes = (16 * n_features,
                 (n_kinds + 1) // 2 if packed else n_kinds * kinds_type.itemsize,
                 2 * int(forest["n_codes"]), int(forest["n_sizes"]),
                 8 * int(forest["n_quantiles"]))
        if min(sizes) < 0 or sum(sizes) != len(record) - header_end:
            raise ValueError(f"payload of {len(record) - header_end} bytes, header says {sizes}")
        arrays = _split(record[header_end:], sizes)
        metadata = ModelMetadata.from_json(header["metadata"],
                                           np.frombuffer(arrays[4], dtype="<f8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelStoreError(f"{where}: malformed header ({exc})") from None
    if metadata.engine != ENGINE_NAME or metadata.engine_version != ENGINE_VERSION:
        raise ModelStoreError(
            f"{where}: trained by {metadata.engine} {metadata.engine_version}, this code runs "
            f"{ENGINE_NAME} {ENGINE_VERSION}; it will be retrained"
        )
    kinds = np.frombuffer(arrays[1], dtype=kinds_type).astype(kinds_type.newbyteorder("="))
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
        sizes=np.frombuffer(arrays[3], dtype=np.uint8).copy(),
    )
    return DecodedModel(state, metadata)


def decode_model_file(where: str, key: bytes, data: SignedData) -> DecodedModel:
    """Verify and parse a signed single-model file (the format checked first, so that a file
    of another format version is named as such)."""
    view = memoryview(data)
    _check_prefix(where, view, _MAGIC, FORMAT_VERSION, "model file")
    return decode_model(where, verify_signature(where, key, view))


# -- a campaign's pack ------------------------------------------------------------------------------


def encode_pack(key: bytes, account_id: int, campaign_id: int,
                entries: Sequence[PackEntry]) -> bytes:
    """The signed pack of ``entries`` (records from :func:`encode_model`)."""
    index, offset = [], 0
    for entry in entries:
        index.append([entry.entity_type, int(entry.entity_id), offset, len(entry.record)])
        offset += len(entry.record)
    header = json.dumps({"account_id": int(account_id), "campaign_id": int(campaign_id),
                         "entities": index}, separators=(",", ":")).encode("utf-8")
    return sign(key, b"".join([_PREFIX.pack(_PACK_MAGIC, PACK_FORMAT_VERSION, len(header)),
                               header, *(entry.record for entry in entries)]))


def decode_pack(where: str, key: bytes, data: SignedData, *, account_id: int,
                campaign_id: int) -> dict[int, DecodedModel]:
    """Every model of a signed pack, by entity id, checked against the pack it was asked for.

    Raises :class:`ModelStoreError` naming ``where`` if anything is wrong: the pack is then
    refused whole.
    """
    _check_prefix(where, memoryview(data), _PACK_MAGIC, PACK_FORMAT_VERSION, "model pack")
    body = verify_signature(where, key, data)
    header_length = _check_prefix(where, body, _PACK_MAGIC, PACK_FORMAT_VERSION, "model pack")
    start = _PREFIX.size + header_length
    try:
        index = json.loads(bytes(body[_PREFIX.size:start]).decode("utf-8"))
        owner = (index["account_id"], index["campaign_id"])
        entries = [(str(t), _whole(i), _whole(o), _whole(n)) for t, i, o, n in index["entities"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelStoreError(f"{where}: malformed index ({exc})") from None
    if owner != (account_id, campaign_id):
        raise ModelStoreError(f"{where}: belongs to account {owner[0]} campaign {owner[1]} "
                              "(moved or copied)")
    models: dict[int, DecodedModel] = {}
    expected_offset = 0
    records = body[start:]
    for entity_type, entity_id, offset, length in entries:
        if offset != expected_offset or offset + length > len(records):
            raise ModelStoreError(f"{where}: index entry of {entity_type} {entity_id} points "
                                  "outside its records")
        expected_offset += length
        decoded = decode_model(f"{where} ({entity_type} {entity_id})",
                               records[offset:offset + length])
        meta = decoded.metadata
        if (meta.account_id, meta.entity_type, meta.entity_id) != (
                account_id, entity_type, str(entity_id)) or entity_id in models:
            raise ModelStoreError(f"{where}: record of {entity_type} {entity_id} holds the model "
                                  f"of account {meta.account_id} {meta.entity_type} "
                                  f"{meta.entity_id!r}")
        models[entity_id] = decoded
    if expected_offset != len(records):
        raise ModelStoreError(f"{where}: {len(records) - expected_offset} bytes after the last "
                              "record")
    return models


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


# -- helpers --------------------------------------------------------------------------------------


def _pack_nibbles(
        kinds: npt.NDArray[np.unsignedinteger[Any]]) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Two split kinds per byte (features 0..14, leaf 15), for models of fewer than 15 features."""
    nibbles: npt.NDArray[np.uint8] = _TO_NIBBLE[kinds]
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    # uint8 either way; a plain 4 would make numpy's stubs call the result signed
    return (nibbles[0::2] << np.uint8(4)) | nibbles[1::2]


def _unpack_nibbles(packed: npt.NDArray[np.uint8], n_kinds: int) -> npt.NDArray[np.uint8]:
    """The split kinds of :func:`_pack_nibbles` (shifts, not a table look-up: 5x faster)."""
    kinds = np.empty(2 * packed.size, np.uint8)
    kinds[0::2] = packed >> 4
    kinds[1::2] = packed & 0x0F
    kinds = kinds[:n_kinds]
    kinds[kinds == _NIBBLE_LEAF] = LEAF
    return kinds


_TO_NIBBLE = np.arange(256, dtype=np.uint8)
_TO_NIBBLE[LEAF] = _NIBBLE_LEAF


def _split(raw: memoryview, sizes: Sequence[int]) -> list[memoryview]:
    parts, start = [], 0
    for size in sizes:
        parts.append(raw[start:start + size])
        start += size
    return parts
