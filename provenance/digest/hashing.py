"""Hashing many files fast, in constant memory, and noticing when one changes underneath.

Files are hashed by a pool of threads: hashlib and blake3 release the GIL while they hash, and
``os.readv`` releases it while the kernel copies, so two cores are two hashers. Small files are
grouped into batches so that per-task overhead does not dominate a tree of many tiny files;
each thread reuses one read buffer, so memory does not grow with file size or count.

Every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` to still be a
regular file (a path swapped for a link or a FIFO after the walk is refused, not followed or
blocked on), and its size and timestamps are compared before and after reading: a file that
changes while it is hashed is refused rather than given a digest of no version that existed.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from provenance.digest.algorithms import Algorithm, new_hasher
from provenance.digest.paths import display
from provenance.digest.walk import PlannedFile, StatKey
from provenance.errors import (
    ChangedWhileReadingError,
    UnreadableError,
    UnsupportedFileError,
)

BUFFER_SIZE = 1 << 20
BATCH_BYTES = 8 << 20
BATCH_FILES = 512
PROGRESS_STEP = 64 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Progress(Protocol):
    """Receives progress reports; called from worker threads, so it must be thread-safe."""

    def start(self, total_files: int, total_bytes: int) -> None: ...

    def advance(self, files: int, nbytes: int) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HashedFile:
    """The result for one file: its digest, its size and the stat it had while read."""

    digest: str
    size: int
    stat: StatKey


_local = threading.local()


def _buffer() -> bytearray:
    buf: bytearray | None = getattr(_local, "buffer", None)
    if buf is None:
        buf = bytearray(BUFFER_SIZE)
        _local.buffer = buf
    return buf


def hash_file(
    os_path: str, algorithm: Algorithm, *, label: str, progress: Progress | None = None
) -> HashedFile:
    """Hash one regular file; ``label`` is how errors name it."""
    try:
        fd = os.open(os_path, _OPEN_FLAGS)
    except FileNotFoundError as e:
        raise ChangedWhileReadingError(f"file disappeared before it was read: {label}") from e
    except OSError as e:
        raise UnreadableError(f"cannot open {label}: {e.strerror}") from e
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise UnsupportedFileError(f"{label} is no longer a regular file")
        large = before.st_size >= BATCH_BYTES
        hasher = new_hasher(algorithm, large_input=large)
        buf = _buffer()
        view = memoryview(buf)
        total = 0
        reported = 0
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            hasher.update(view[:n] if n < BUFFER_SIZE else buf)
            total += n
            if progress is not None and total - reported >= PROGRESS_STEP:
                progress.advance(0, total - reported)
                reported = total
        after = os.fstat(fd)
    except OSError as e:
        raise UnreadableError(f"cannot read {label}: {e.strerror}") from e
    finally:
        os.close(fd)
    key = StatKey.of(after)
    if StatKey.of(before) != key or total != after.st_size:
        raise ChangedWhileReadingError(f"file changed while it was being hashed: {label}")
    if progress is not None:
        progress.advance(1, total - reported)
    return HashedFile(hasher.hexdigest(), total, key)


def _batches(files: Sequence[PlannedFile]) -> list[range]:
    """Consecutive index ranges of roughly ``BATCH_BYTES`` or ``BATCH_FILES`` each."""
    batches: list[range] = []
    start = 0
    size = 0
    for i, planned in enumerate(files):
        size += planned.stat.size
        if size >= BATCH_BYTES or i - start + 1 >= BATCH_FILES:
            batches.append(range(start, i + 1))
            start, size = i + 1, 0
    if start < len(files):
        batches.append(range(start, len(files)))
    return batches


def default_workers() -> int:
    """One hashing thread per available core, at most 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


def hash_files(
    files: Sequence[PlannedFile],
    algorithm: Algorithm,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[HashedFile]:
    """Hash ``files`` and return their results in the same order.

    The first failure stops the work: pending batches are cancelled and the error is raised.
    """
    results: list[HashedFile | None] = [None] * len(files)

    def run(indices: range) -> None:
        for i in indices:
            planned = files[i]
            results[i] = hash_file(
                planned.os_path, algorithm, label=display(planned.path), progress=progress
            )

    count = workers or default_workers()
    batches = _batches(files)
    if count == 1 or len(batches) <= 1:
        for indices in batches:
            run(indices)
    else:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="provenance-hash") as pool:
            futures: list[Future[None]] = [pool.submit(run, b) for b in batches]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future in done and future.exception() is not None:
                    for pending in futures:
                        pending.cancel()
                    future.result()
    complete: list[HashedFile] = []
    for item in results:
        if item is None:  # pragma: no cover - every batch ran or an error was raised
            raise RuntimeError("hashing finished with a file left unhashed")
        complete.append(item)
    return complete
