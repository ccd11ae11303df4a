"""Secret keys kept in files: created once, atomically, owner-readable only; refused when others
could read them.

Used for the model signing key and the dashboard's session key when the settings give none, and
for a key file the settings name (``model_signing_key_file``).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

#: a key file is a few dozen bytes; anything larger is not one
_MAX_KEY_FILE_BYTES = 4096


class UnsafeKeyFileError(Exception):
    """A key file that group or others may read or write, or that is not a regular file."""


def read_key_file(path: Path) -> str:
    """The text of the key file at ``path``, stripped.

    Raises ``FileNotFoundError`` when there is none, :class:`UnsafeKeyFileError` when it is not
    a regular file or its mode gives group or others any access (the key would not be secret),
    and ``OSError`` when it cannot be read. A symbolic link is followed (secret managers mount
    keys that way); the file it leads to is checked.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO does not hang
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeKeyFileError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise UnsafeKeyFileError(
                f"{path} may be read by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run `chmod 600 {path}`")
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise UnsafeKeyFileError(f"{path} is larger than a key file ({_MAX_KEY_FILE_BYTES} bytes)")
    return data.decode("ascii", errors="replace").strip()


def read_or_create_hex_key(path: Path) -> str:
    """The key stored at ``path`` (hex text), creating a random 256-bit one first if none exists.

    Creation makes the folder with mode 0700 if it is missing, writes a temporary file with mode
    0600 and links it into place, so processes that start together agree on one key and nobody
    reads a half-written one. Raises ``OSError`` when the folder cannot be written or read, and
    :class:`UnsafeKeyFileError` for a key file others may read; the caller says which setting
    avoids the file.
    """
    try:
        return read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)  # fails if another process created the key first
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    return read_key_file(path)
