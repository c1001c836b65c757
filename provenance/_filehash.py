"""The per-file hashing kernel: the only code that reads file contents to digest them.

It is deliberately import-light (no ``provenance.digest`` package, no third-party module unless
blake3 is asked for), so that anything needing one file's digest can use it cheaply.

Every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` to still be a
regular file (a path swapped for a link or a FIFO after the walk is refused, not followed or
blocked on), and its size and timestamps are compared before and after reading: a file that
changes while it is hashed is refused rather than given a digest of no version that existed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from provenance.errors import (
    ChangedWhileReadingError,
    UnreadableError,
    UnsupportedAlgorithmError,
    UnsupportedFileError,
)

BUFFER_SIZE = 1 << 20  # files smaller than this are "small": one read each
MULTITHREAD_BYTES = 8 << 20  # blake3 spreads one file over threads from this size on
PROGRESS_STEP = 64 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class _Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


class StatKey(NamedTuple):
    """What identifies one version of a file on disk without reading it (the stat cache key).

    A tuple rather than a dataclass: one may be built per file, on the hot path.
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> StatKey:
        """The key of a ``stat`` result."""
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class HashedFile(NamedTuple):
    """The result for one file: its digest, its size and (when asked for) its stat key."""

    digest: str
    size: int
    stat: StatKey | None


def display(text: str) -> str:
    """``text`` as it can be shown on one line: quoted and escaped if it is not printable."""
    return text if text.isprintable() else ascii(text)


# Called with (files completed, bytes read) as hashing goes; must be thread-safe.
Advance = Callable[[int, int], None]


def hasher_factory(algorithm: str, *, large_input: bool = False) -> Callable[[], _Hasher]:
    """A constructor of fresh hash objects for an accepted algorithm name."""
    if algorithm == "sha256":
        return hashlib.sha256
    if algorithm == "blake3":
        import blake3

        if large_input:  # blake3's tree mode gives the same digest on any number of threads
            return lambda: blake3.blake3(max_threads=blake3.blake3.AUTO)
        return blake3.blake3
    raise UnsupportedAlgorithmError(f"unknown digest algorithm {algorithm!r}")


_local = threading.local()


def _buffer() -> bytearray:
    buf: bytearray | None = getattr(_local, "buffer", None)
    if buf is None:
        buf = bytearray(BUFFER_SIZE)
        _local.buffer = buf
    return buf


def _open(os_path: str | bytes, label: str) -> int:
    try:
        return os.open(os_path, _OPEN_FLAGS)
    except FileNotFoundError as e:
        raise ChangedWhileReadingError(f"file disappeared before it was read: {label}") from e
    except OSError as e:
        raise UnreadableError(f"cannot open {label}: {e.strerror}") from e


def _result(
    before: os.stat_result, after: os.stat_result, total: int, digest: str, label: str
) -> HashedFile:
    if (
        total != after.st_size
        or before.st_size != after.st_size
        or before.st_mtime_ns != after.st_mtime_ns
        or before.st_ctime_ns != after.st_ctime_ns
    ):
        raise ChangedWhileReadingError(f"file changed while it was being hashed: {label}")
    return HashedFile(digest, total, StatKey.of(after))


def hash_file(
    os_path: str, algorithm: str, *, label: str, advance: Advance | None = None
) -> HashedFile:
    """Hash one regular file of any size, streaming it through one reused buffer."""
    fd = _open(os_path, label)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise UnsupportedFileError(f"{label} is no longer a regular file")
        hasher = hasher_factory(algorithm, large_input=before.st_size >= MULTITHREAD_BYTES)()
        buf = _buffer()
        total = reported = 0
        while True:
            n = os.readv(fd, [buf])
            total += n
            if n < BUFFER_SIZE:
                # A short read of a regular file is its end; growth after it is caught below.
                hasher.update(memoryview(buf)[:n])
                break
            hasher.update(buf)
            if advance is not None and total - reported >= PROGRESS_STEP:
                advance(0, total - reported)
                reported = total
        after = os.fstat(fd)
    except OSError as e:
        raise UnreadableError(f"cannot read {label}: {e.strerror}") from e
    finally:
        os.close(fd)
    result = _result(before, after, total, hasher.hexdigest(), label)
    if advance is not None:
        advance(1, total - reported)
    return result


def hash_small_files(
    items: Iterable[tuple[str | bytes, str]], algorithm: str, *, with_stat: bool = True
) -> list[HashedFile]:
    """Hash ``(os_path, label)`` pairs of files expected to fit in one read.

    The hot loop for trees of many small files, kept to few Python operations per file: one
    buffer, one read, the change check inline. A file that turns out to be larger (it grew
    after the walk) is streamed by :func:`hash_file`.
    """
    new = hasher_factory(algorithm)
    buf = _buffer()
    view = memoryview(buf)
    fstat, readv, close, is_reg = os.fstat, os.readv, os.close, stat.S_ISREG
    out: list[HashedFile] = []
    append = out.append
    for os_path, label in items:
        fd = _open(os_path, label)
        try:
            before = fstat(fd)
            size = before.st_size
            if size >= BUFFER_SIZE or not is_reg(before.st_mode):
                close(fd)
                fd = -1
                append(hash_file(os.fsdecode(os_path), algorithm, label=label))
                continue
            n = readv(fd, [buf])
            hasher = new()
            hasher.update(view[:n])
            after = fstat(fd)
        except OSError as e:
            raise UnreadableError(f"cannot read {label}: {e.strerror}") from e
        finally:
            if fd >= 0:
                close(fd)
        if (
            n != size
            or after.st_size != size
            or after.st_mtime_ns != before.st_mtime_ns
            or after.st_ctime_ns != before.st_ctime_ns
        ):
            raise ChangedWhileReadingError(f"file changed while it was being hashed: {label}")
        append(HashedFile(hasher.hexdigest(), n, StatKey.of(after) if with_stat else None))
    return out
