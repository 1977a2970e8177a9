"""Writing a device's own files safely: whole or not at all, private to the service.

Files that hold secrets or personal data (settings with passwords, databases,
outboxes) are created owner-only (0600) whatever the process's umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["create_private_file", "write_private_file"]


def create_private_file(path: Path) -> Path:
    """Create ``path`` empty and owner-only (0600) unless it exists; return it.

    For files that another library opens and fills, such as an SQLite database:
    SQLite gives its -wal and -shm files the database file's permissions.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    return path


def write_private_file(
    path: Path, text: str, *, check: Callable[[Path], object] | None = None
) -> None:
    """Replace ``path`` with ``text`` (mode 0600), through a checked temporary file.

    The temporary file sits beside ``path`` (so relative paths in it mean the same),
    is synced, given to ``check`` (which raises to refuse it), then renamed over
    ``path``: a power cut leaves the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if check is not None:
            check(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
