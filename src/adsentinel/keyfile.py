"""Secret keys kept in a file of the data folder: created once, atomically, owner-readable only.

Used for the model signing key and the dashboard's session key when the settings give none.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create_hex_key(path: Path) -> str:
    """The key stored at ``path`` (hex text), creating a random 256-bit one first if none exists.

    Creation writes a temporary file with mode 0600 and links it into place, so processes that
    start together agree on one key and nobody reads a half-written one. Raises ``OSError`` when
    the folder cannot be written or read; the caller says which setting avoids the file.
    """
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
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
    return path.read_text(encoding="ascii").strip()
