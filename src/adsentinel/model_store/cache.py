"""One process-wide cache of verified models, bounded by entries and bytes.

Entries are keyed by where a blob is and remember its version when it was read: a file's inode,
modification time in nanoseconds and size, a PostgreSQL row's version, an S3 object's ETag. A
lookup compares that with the store's fresh listing, so a pack retrained by another process or
machine (renamed into place, or rewritten) is never served stale. The least recently used
entries go first when a bound is reached.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["MODEL_CACHE", "FileIdentity", "ModelCache"]


@dataclass(frozen=True)
class FileIdentity:
    """What tells two versions of a file apart without reading it."""

    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        """The identity of a file from its ``os.stat`` result."""
        return cls(stat.st_ino, stat.st_mtime_ns, stat.st_size)


class ModelCache:
    """A thread-safe LRU cache of at most ``max_entries`` values and ``max_bytes`` bytes.

    Parameters
    ----------
    max_entries : int
        Largest number of models kept.
    max_bytes : int
        Largest total of the sizes given to :meth:`put` (a value larger than this is not cached).
    """

    def __init__(self, max_entries: int = 20_000, max_bytes: int = 512 * 1024 * 1024) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries!r}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # path -> (its version: a file's identity, an object's ETag...; size; value)
        self._entries: OrderedDict[str, tuple[Hashable, int, object]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, path: str, identity: Hashable) -> object | None:
        """The value cached for ``path`` if it was read from the same file version, else None."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry[0] != identity:
                if entry is not None:
                    self._drop(path)
                self.misses += 1
                return None
            self._entries.move_to_end(path)
            self.hits += 1
            return entry[2]

    def put(self, path: str, identity: Hashable, value: object, nbytes: int) -> None:
        """Cache ``value`` (taking ``nbytes``) for the version ``identity`` of ``path``."""
        with self._lock:
            if path in self._entries:
                self._drop(path)
            if nbytes > self.max_bytes or self.max_entries == 0:
                return
            self._entries[path] = (identity, nbytes, value)
            self._bytes += nbytes
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)

    def limit_bytes(self, max_bytes: int) -> None:
        """Hold at most ``max_bytes`` from now on, the least recently used going first."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes!r}")
        with self._lock:
            self.max_bytes = max_bytes
            while self._entries and self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def invalidate(self, path: str) -> None:
        """Forget ``path`` (after this process rewrote or deleted it)."""
        with self._lock:
            if path in self._entries:
                self._drop(path)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, path: str) -> None:
        _, nbytes, _ = self._entries.pop(path)
        self._bytes -= nbytes

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes


MODEL_CACHE = ModelCache()
"""The cache every :class:`~adsentinel.model_store.store.ModelStore` of this process shares by default."""
