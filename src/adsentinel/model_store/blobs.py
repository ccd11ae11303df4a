"""Where the model store's bytes live: a local folder, a PostgreSQL table, or an S3 bucket.

Each backend stores named blobs (keys such as ``anomaly_detector/config_7/campaign_12.adsp``)
and offers the same few operations to :class:`adsentinel.model_store.store.ModelStore`; signing and
parsing stay in the store, so every backend refuses and accepts exactly the same bytes.

* :class:`FolderBlobs` (the default, ``ADSENTINEL_MODELS_STORAGE_PATH``): a temporary file in the
  same folder is written, flushed to disk and renamed over the old one; reads are memory-mapped
  and opened with ``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link, FIFO or device planted under a
  model's name is refused, never followed or waited on).
* :class:`PostgresBlobs` (``postgresql://...``): one row per blob in the table
  ``adsentinel_model_blobs`` (created on first use), written with ``INSERT .. ON CONFLICT DO
  UPDATE`` in one transaction per batch: readers see the old batch or the new one.
* :class:`S3Blobs` (``s3://bucket/prefix``, through boto3): one object per blob; a ``PUT``
  replaces an object whole, so readers see the old pack or the new one, never half of one.

``version(key)`` is cheap (a ``stat``, an indexed ``SELECT``, a ``HEAD``) and tells two versions
of a blob apart, so that a cache of verified models notices a retrain by any process or machine.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import re
import secrets
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from adsentinel.errors import ModelStoreError
from adsentinel.model_store.cache import FileIdentity

if TYPE_CHECKING:  # imported where used: a store on the local folder never loads sqlalchemy
    from sqlalchemy import Row
    from sqlalchemy.engine import Engine

__all__ = ["Blob", "BlobStore", "FolderBlobs", "PostgresBlobs", "S3Blobs", "open_blob_store"]

log = logging.getLogger("adsentinel.model_store.store")


@dataclass(frozen=True)
class Blob:
    """A blob's bytes (``bytes`` or a read-only memory map) and the version they are."""

    data: bytes | mmap.mmap
    version: Hashable

    def close(self) -> None:
        """Release a memory map (no-op for bytes)."""
        if isinstance(self.data, mmap.mmap):
            # a view of it may still be held (by an error being raised): then it is freed with it
            with suppress(BufferError):
                self.data.close()


class BlobStore(Protocol):
    """What :class:`~adsentinel.model_store.store.ModelStore` needs from a place to keep bytes."""

    location: str  #: where the blobs are, for messages (no password)

    def where(self, key: str) -> str:
        """``key``'s full name, for messages and as the cache key."""

    def version(self, key: str) -> Hashable | None:
        """The blob's current version, None when there is none."""

    def read(self, key: str, max_bytes: int) -> Blob:
        """The blob; ``FileNotFoundError`` when missing, :class:`ModelStoreError` when it is
        larger than ``max_bytes`` or cannot be read."""

    def write_many(self, items: Mapping[str, bytes]) -> None:
        """Replace every blob of ``items``, each atomically; :class:`ModelStoreError` when any
        cannot be written."""

    def delete(self, key: str) -> bool:
        """Remove a blob; True if there was one."""

    def keys(self, folder: str) -> dict[str, Hashable]:
        """Keys directly inside ``folder`` (``a/b`` -> ``a/b/x``), temporary files excluded,
        sorted, each with its version (one listing: no round trip per blob)."""

    def remove_stale_temp_files(self, folder: str, older_than_seconds: float) -> int:
        """Remove what a crashed writer left in ``folder``; returns how many."""


def open_blob_store(url: str | None, folder: Path) -> BlobStore:
    """The backend ``url`` names (``postgresql://``, ``s3://``, ``file://``), else ``folder``."""
    if not url:
        return FolderBlobs(folder)
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return FolderBlobs(Path(urlsplit(url).path))
    if scheme.startswith("postgres"):
        return PostgresBlobs(url)
    if scheme == "s3":
        return S3Blobs(url)
    raise ModelStoreError(
        f"models_storage_url {_without_password(url)!r}: unknown scheme {scheme!r}",
        hint="use postgresql://user@host/db, s3://bucket/prefix or file:///folder "
             "(ADSENTINEL_MODELS_STORAGE_URL), or leave it unset for the local folder")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


# -- a local folder -------------------------------------------------------------------------------

#: this machine in temporary file names (no dots: names are split on them)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


class FolderBlobs:
    """Blobs as files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.root / key

    def where(self, key: str) -> str:
        return str(self.root / key)

    def version(self, key: str) -> FileIdentity | None:
        try:
            return FileIdentity.of(os.stat(self.root / key, follow_symlinks=False))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModelStoreError(f"{self.root / key}: cannot be read "
                                  f"({exc.strerror or exc})") from None

    def read(self, key: str, max_bytes: int) -> Blob:
        path = self.root / key
        handle, info = open_regular_file(path)
        with handle:
            identity = FileIdentity.of(info)
            if identity.size > max_bytes:
                raise ModelStoreError(f"{path}: {identity.size} bytes, larger than a model "
                                      "file may be")
            if identity.size == 0:
                return Blob(b"", identity)
            # the store never changes a file in place (it renames a new one over it), so the
            # map keeps the version it was opened on
            return Blob(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ), identity)

    def write(self, key: str, data: bytes) -> None:
        """Replace one blob, flushed to disk before the rename."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, fsync=True)

    def write_many(self, items: Mapping[str, bytes]) -> None:
        """Every blob to its temporary file, one ``os.sync`` for all, then each renamed into
        place: as atomic as one write, without one fsync per file. Nothing is replaced when
        any cannot be written."""
        staged: list[tuple[Path, Path]] = []
        try:
            for key, data in items.items():
                path = self.root / key
                path.parent.mkdir(parents=True, exist_ok=True)
                temp = temp_path(path)
                write_file(temp, data, fsync=False)
                staged.append((temp, path))
            if staged:
                os.sync()
            for temp, path in staged:
                os.replace(temp, path)
        except OSError as exc:
            for temp, _ in staged:
                unlink_quietly(temp)
            raise ModelStoreError(f"cannot write models under {self.root}: {exc}") from None
        except BaseException:
            for temp, _ in staged:
                unlink_quietly(temp)
            raise

    def delete(self, key: str) -> bool:
        try:
            (self.root / key).unlink()
        except FileNotFoundError:
            return False
        return True

    def keys(self, folder: str) -> dict[str, Hashable]:
        found: dict[str, Hashable] = {}
        try:
            entries = sorted(os.scandir(self.root / folder), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return found
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                found[f"{folder}/{entry.name}"] = FileIdentity.of(entry.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue  # removed since the listing
        return found

    def remove_stale_temp_files(self, folder: str, older_than_seconds: float) -> int:
        """A temporary file goes when the process of this machine that wrote it is gone (a
        killed worker's staged models), or when it is older than ``older_than_seconds``
        (another machine's), so a write in progress anywhere is safe."""
        path = self.root / folder
        if not path.is_dir():
            return 0
        limit = time.time() - older_than_seconds
        removed = 0
        for entry in os.scandir(path):
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


def open_regular_file(path: Path) -> tuple[BinaryIO, os.stat_result]:
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


def temp_path(path: Path) -> Path:
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


def write_file(path: Path, data: bytes, *, fsync: bool) -> None:
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
        unlink_quietly(path)
        raise
    os.close(fd)


def atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace ``path`` with ``data`` through a temporary file and a rename."""
    temp = temp_path(path)
    try:
        write_file(temp, data, fsync=fsync)
        os.replace(temp, path)
    except OSError as exc:
        unlink_quietly(temp)
        raise ModelStoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        unlink_quietly(temp)
        raise


def unlink_quietly(path: Path) -> None:
    """Remove a temporary file; one that cannot be (a store gone read-only) stays, named as
    temporary: readers never open it and a later training removes it once it is stale."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("temporary model file %s not removed: %s", path, exc.strerror or exc)


# -- PostgreSQL ------------------------------------------------------------------------------------

_TABLE = "adsentinel_model_blobs"
_ENGINES: dict[str, Engine] = {}
_Result = TypeVar("_Result")
_ENGINES_LOCK = threading.Lock()


class PostgresBlobs:
    """Blobs as rows of ``adsentinel_model_blobs (key, data, version, written_at)``."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(url)
        except Exception as exc:  # noqa: BLE001 - sqlalchemy's ArgumentError and ValueError
            raise ModelStoreError(f"models_storage_url is not a database URL: {exc}") from None
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.location = f"{parsed.render_as_string(hide_password=True)} table {_TABLE}"
        self._url = parsed.render_as_string(hide_password=False)
        self._engine = _engine_for(self._url)
        self._ensure_table()

    def _ensure_table(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError, ProgrammingError

        create = text(f"CREATE TABLE IF NOT EXISTS {_TABLE} (key text PRIMARY KEY, "
                      "data bytea NOT NULL, version text NOT NULL, "
                      "written_at timestamptz NOT NULL DEFAULT now())")
        for attempt in range(2):  # two first processes at once: one of them loses the race
            try:
                with self._engine.begin() as connection:
                    connection.execute(create)
                return
            except (IntegrityError, ProgrammingError):
                if attempt:
                    raise
            except Exception as exc:  # noqa: BLE001 - OperationalError and driver errors
                raise ModelStoreError(f"model store {self.location}: {exc}",
                                      hint="check ADSENTINEL_MODELS_STORAGE_URL") from None

    def where(self, key: str) -> str:
        return f"{self.location}: {key}"

    def _run(self, what: str, work: Callable[[], _Result]) -> _Result:
        try:
            return work()
        except ModelStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - a database error of any kind
            raise ModelStoreError(f"cannot {what} the model store {self.location}: "
                                  f"{type(exc).__name__}: {exc}".splitlines()[0]) from None

    def version(self, key: str) -> str | None:
        from sqlalchemy import text

        def work() -> str | None:
            with self._engine.connect() as connection:
                # the version column is text: sqlalchemy's scalar() is Any for a text() query
                return cast("str | None", connection.execute(
                    text(f"SELECT version FROM {_TABLE} WHERE key = :k"), {"k": key}).scalar())
        return self._run("read", work)

    def read(self, key: str, max_bytes: int) -> Blob:
        from sqlalchemy import text

        def work() -> Row[*tuple[Any, ...]] | None:
            with self._engine.connect() as connection:
                return connection.execute(text(
                    f"SELECT version, octet_length(data), CASE WHEN octet_length(data) <= :m "
                    f"THEN data END FROM {_TABLE} WHERE key = :k"), {"k": key, "m": max_bytes}
                ).first()
        row = self._run("read", work)
        if row is None:
            raise FileNotFoundError(key)
        if row[2] is None:
            raise ModelStoreError(f"{self.where(key)}: {row[1]} bytes, larger than a model "
                                  "file may be")
        return Blob(bytes(row[2]), row[0])

    def write_many(self, items: Mapping[str, bytes]) -> None:
        from sqlalchemy import text

        if not items:
            return
        rows = [{"k": key, "d": data, "v": uuid.uuid4().hex} for key, data in items.items()]

        def work() -> None:
            with self._engine.begin() as connection:
                connection.execute(text(
                    f"INSERT INTO {_TABLE} (key, data, version) VALUES (:k, :d, :v) "
                    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
                    "version = excluded.version, written_at = now()"), rows)
        self._run("write models to", work)

    def delete(self, key: str) -> bool:
        from sqlalchemy import text

        def work() -> int:
            with self._engine.begin() as connection:
                return connection.execute(text(f"DELETE FROM {_TABLE} WHERE key = :k"),
                                          {"k": key}).rowcount
        return bool(self._run("delete from", work))

    def keys(self, folder: str) -> dict[str, Hashable]:
        from sqlalchemy import text

        prefix = folder.rstrip("/") + "/"
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def work() -> Sequence[Row[*tuple[Any, ...]]]:
            with self._engine.connect() as connection:
                return connection.execute(text(
                    f"SELECT key, version FROM {_TABLE} WHERE key LIKE :p ORDER BY key"),
                    {"p": pattern}).all()
        return {key: version for key, version in self._run("list", work)
                if "/" not in key[len(prefix):]}

    def remove_stale_temp_files(self, folder: str, older_than_seconds: float) -> int:
        return 0  # a transaction leaves nothing behind


def _engine_for(url: str) -> Engine:
    """One engine per database URL and process (the store is opened once per job)."""
    from sqlalchemy import create_engine

    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
            _ENGINES[url] = engine
        return engine


# -- S3-compatible object stores ------------------------------------------------------------------


class S3Blobs:
    """Blobs as objects under ``s3://bucket/prefix``, through boto3.

    Credentials and region come from boto3's usual sources (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, a profile, an instance role); another
    S3-compatible server (MinIO, Ceph, ...) is named by ``?endpoint_url=http://host:port`` in the
    URL or by ``AWS_ENDPOINT_URL_S3``.
    """

    def __init__(self, url: str) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ModelStoreError(
                "models_storage_url is s3:// but boto3 is not installed",
                hint="pip install 'adsentinel[s3]' (or boto3)") from None
        parts = urlsplit(url)
        if not parts.netloc:
            raise ModelStoreError(f"models_storage_url {url!r} names no bucket",
                                  hint="use s3://bucket/prefix")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client = boto3.client(
            "s3", endpoint_url=options.get("endpoint_url"), region_name=options.get("region"),
            config=Config(retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=5, read_timeout=30))

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def _run(self, what: str, key: str, work: Callable[[], _Result]) -> _Result:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return work()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(key) from None
            raise ModelStoreError(f"cannot {what} {self.where(key)}: {code or exc}",
                                  hint="check ADSENTINEL_MODELS_STORAGE_URL, the bucket and "
                                       "the AWS credentials") from None
        except BotoCoreError as exc:
            raise ModelStoreError(f"cannot {what} {self.where(key)}: {exc}",
                                  hint="check ADSENTINEL_MODELS_STORAGE_URL and that the object "
                                       "store answers") from None

    def version(self, key: str) -> str | None:
        try:
            head = self._run("read", key, lambda: self._client.head_object(
                Bucket=self.bucket, Key=self._name(key)))
        except FileNotFoundError:
            return None
        return str(head["ETag"])  # what the listing gives too

    def read(self, key: str, max_bytes: int) -> Blob:
        reply = self._run("read", key, lambda: self._client.get_object(
            Bucket=self.bucket, Key=self._name(key)))
        body = reply["Body"]
        try:
            if reply["ContentLength"] > max_bytes:
                raise ModelStoreError(f"{self.where(key)}: {reply['ContentLength']} bytes, "
                                      "larger than a model file may be")
            data = self._run("read", key, lambda: body.read(max_bytes + 1))
        finally:
            body.close()
        return Blob(data, reply["ETag"])

    def write_many(self, items: Mapping[str, bytes]) -> None:
        for key, data in items.items():
            self._run("write", key, partial(self._client.put_object,
                                            Bucket=self.bucket, Key=self._name(key), Body=data))

    def delete(self, key: str) -> bool:
        if self.version(key) is None:
            return False
        self._run("delete", key, lambda: self._client.delete_object(
            Bucket=self.bucket, Key=self._name(key)))
        return True

    def keys(self, folder: str) -> dict[str, Hashable]:
        prefix = self._name(folder.rstrip("/")) + "/"
        found: dict[str, Hashable] = {}
        cut = len(self.prefix) + 1 if self.prefix else 0

        def work() -> None:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                for item in page.get("Contents", ()):
                    found[item["Key"][cut:]] = item["ETag"]
        self._run("list", folder, work)
        return dict(sorted(found.items()))

    def remove_stale_temp_files(self, folder: str, older_than_seconds: float) -> int:
        return 0  # a PUT leaves nothing behind
