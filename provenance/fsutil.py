"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file the toolkit writes goes through :func:`atomic_write`: the bytes go to a temporary
file in the same directory, are flushed to disk, and replace the target with ``os.replace``
(atomic on POSIX and Windows). A crash or a full disk leaves the previous file untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from provenance.errors import InputError


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, with permissions ``mode``.

    ``durable`` flushes the data and the directory to disk before returning; without it the
    replacement is still atomic (readers see the old or the new file) but may be lost, whole,
    in a power failure -- acceptable for files that may lag, such as the ledger's head.
    """
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise InputError(f"cannot write in {directory}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise InputError(f"cannot write {path}: {e.strerror}") from e
    if not durable:
        return
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def exclusive_create(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` with ``data`` only if it does not exist, atomically and durably.

    The bytes are written to a temporary file first and then hard-linked into place: the link
    fails if ``path`` exists (even when another process creates it at the same moment), and a
    reader never sees a partial file.
    """
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise InputError(f"cannot write in {directory}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError as e:
        raise InputError(f"{path} already exists; it is never overwritten") from e
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from e
    finally:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
