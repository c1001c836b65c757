"""Reading and writing files safely: bounded reads, and atomic writes.

Every file the toolkit writes goes through :func:`atomic_write` or :func:`exclusive_create`:
the bytes go to a temporary file in the same directory, are flushed to disk, and then replace
the target (``os.replace``) or are linked into place only if it does not exist (``os.link``).
A crash or a full disk leaves the previous file untouched. Every untrusted file is read through
:func:`read_limited`, so a huge or endless input is refused instead of exhausting memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from provenance.errors import InputError


def read_limited(path: Path, limit: int, *, what: str = "") -> bytes:
    """The bytes of ``path``, refusing a file larger than ``limit`` bytes.

    ``what`` names the file in errors ("policy", "key file"); the path is always named.
    """
    label = f"{what} {path}" if what else str(path)
    try:
        with path.open("rb") as handle:
            # Ask for no more than the file holds: read(n) may reserve n bytes up front.
            size = os.fstat(handle.fileno()).st_size
            if size > limit:  # refuse before reading: a 2 GiB file must not be read to say so
                raise InputError(f"{label} is larger than {limit} bytes")
            chunks, total = [], 0
            while total <= limit:
                chunk = handle.read(min(limit + 1 - total, max(size - total, 0) + 1, 1 << 26))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
    except OSError as e:
        raise InputError(f"cannot read {label}: {e.strerror}") from e
    if len(data) > limit:
        raise InputError(f"{label} is larger than {limit} bytes")
    return data


def _write_temporary(directory: Path, name: str, data: bytes, mode: int, durable: bool) -> str:
    """Write ``data`` to a new temporary file in ``directory``; return its path."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise InputError(f"cannot write in {directory}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
    except OSError as e:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise InputError(f"cannot write {directory / name}: {e.strerror}") from e
    return tmp


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, with permissions ``mode``.

    ``durable`` flushes the data and the directory to disk before returning; without it the
    replacement is still atomic (readers see the old or the new file) but may be lost, whole,
    in a power failure -- acceptable for files that may lag, such as the ledger's head.
    """
    tmp = _write_temporary(path.parent, path.name, data, mode, durable)
    try:
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise InputError(f"cannot write {path}: {e.strerror}") from e
    if durable:
        _sync_directory(path.parent)


def exclusive_create(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` with ``data`` only if it does not exist, atomically and durably.

    The bytes are written to a temporary file first and then hard-linked into place: the link
    fails if ``path`` exists (even when another process creates it at the same moment), and a
    reader never sees a partial file.
    """
    tmp = _write_temporary(path.parent, path.name, data, mode, durable=True)
    try:
        os.link(tmp, path)
    except FileExistsError as e:
        raise InputError(f"{path} already exists; it is never overwritten") from e
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from e
    finally:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
    _sync_directory(path.parent)
