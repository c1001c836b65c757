"""Hashing many files fast, on every core, while the directory is still being listed.

Two kinds of parallelism, each where it pays:

* **Large files** are hashed by threads. hashlib and blake3 release the GIL on each 1 MiB
  update, so threads keep every core busy; one buffer per thread keeps memory flat.
* **Many small files** are the opposite case: per-file system calls and Python work dominate,
  and threads only contend for the GIL (measured: two threads are *slower* than one). They are
  streamed to worker **processes** running :mod:`provenance._filehash` over pipes, while the
  walk goes on, so listing and hashing overlap. Workers are plain ``python -I -c`` subprocesses
  rather than ``multiprocessing`` ones, whose start methods either fork a threaded process or
  re-import the caller's ``__main__`` -- neither acceptable inside a library.

Until a few thousand files have been seen, starting processes would cost more than it saves,
so small trees are hashed in the calling thread (their large files on threads). Once workers
run, every file goes to them: a worker process streams a large file as well as a thread does.
A worker that fails, crashes or answers out of protocol is an error, never a skipped file; on
any error every worker is killed.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import selectors
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import provenance
from provenance import errors
from provenance._filehash import (
    BUFFER_SIZE,
    HashedFile,
    StatKey,
    hash_file,
    hash_small_files,
)
from provenance.digest.algorithms import Algorithm
from provenance.digest.paths import display
from provenance.digest.walk import PlannedFile

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

# Below this many small files, starting worker processes costs more than it saves.
PROCESS_MIN_FILES = 4096
CHUNK_FILES = 256  # small files per message to a worker, and between progress reports


class Progress(Protocol):
    """Receives progress reports; called from worker threads, so it must be thread-safe."""

    def found(self, files: int, nbytes: int) -> None:
        """The walk found more work (totals grow while a tree is being listed)."""

    def advance(self, files: int, nbytes: int) -> None:
        """Work was done: ``files`` completed and ``nbytes`` read."""

    def finish(self) -> None:
        """All work is done (or abandoned)."""


def default_workers() -> int:
    """One hashing worker per available core, at most 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


_WORKER_ERRORS: dict[str, type[errors.Error]] = {
    cls.__name__: cls
    for cls in (
        errors.ChangedWhileReadingError,
        errors.InputError,
        errors.UnreadableError,
        errors.UnsupportedFileError,
        errors.UnsupportedAlgorithmError,
    )
}


def _worker_command(algorithm: Algorithm, *, with_stat: bool) -> list[str]:
    # -I ignores PYTHON* variables and the user site; the package's own location is put on the
    # path explicitly, so a source checkout works as well as an installed copy.
    package_parent = str(Path(provenance.__file__).resolve().parent.parent)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from provenance._filehash import main; sys.exit(main(sys.argv[2:]))"
    )
    command = [sys.executable, "-I", "-c", code, package_parent, algorithm.value]
    return [*command, "stat"] if with_stat else command


# Builds a HashedFile without the named tuple's Python-level constructor (hot path).
_new_hashed: Callable[[tuple[str, int, StatKey | None]], HashedFile] = functools.partial(
    tuple.__new__, HashedFile
)


def _parse_answer(line: bytes) -> HashedFile:
    fields = line.split()
    if not fields or fields[0] != b"OK" or len(fields) not in (3, 7):
        raise ValueError(line)
    size = int(fields[2])
    key = None
    if len(fields) == 7:
        device, inode, mtime_ns, ctime_ns = map(int, fields[3:])
        key = StatKey(device, inode, size, mtime_ns, ctime_ns)
    return HashedFile(fields[1].decode("ascii"), size, key)


class _Worker:
    """One hashing worker process, driven without threads through non-blocking pipes.

    The scheduler's thread writes file records and reads answers whenever the pipes are
    ready (:meth:`HashScheduler._pump`); no reader or writer threads compete with the walk
    for the GIL.
    """

    def __init__(self, algorithm: Algorithm, *, with_stat: bool) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            _worker_command(algorithm, with_stat=with_stat),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin_fd: int | None = self.process.stdin.fileno()
        self.stdout_fd: int | None = self.process.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        os.set_blocking(self.stdout_fd, False)
        self.outbox = bytearray()  # records not yet accepted by the pipe
        self.closing = False  # no more records will be added
        self.sent: collections.deque[int] = collections.deque()  # indices awaiting answers
        self.partial = b""  # an answer line not yet complete
        self.error: errors.Error | None = None
        self.reaped = False

    @property
    def outstanding(self) -> int:
        """Files sent and not yet answered."""
        return len(self.sent)

    def send(self, indices: list[int], payload: bytes) -> None:
        self.sent.extend(indices)
        self.outbox += payload

    def write_some(self) -> None:
        """Write what the pipe accepts; close standard input once everything is written."""
        if self.stdin_fd is None:
            return
        try:
            if self.outbox:
                written = os.write(self.stdin_fd, self.outbox)
                del self.outbox[:written]
        except BlockingIOError:
            return
        except OSError:  # the worker is gone: its answer or exit status says why
            self.outbox.clear()
            self.closing = True
        if self.closing and not self.outbox:
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            self.stdin_fd = None

    def read_some(self) -> list[tuple[int, HashedFile]]:
        """Read available answers; return ``(index, result)`` pairs; note EOF and errors."""
        if self.stdout_fd is None:
            return []
        try:
            data = os.read(self.stdout_fd, 1 << 16)
        except BlockingIOError:
            return []
        if not data:
            self.stdout_fd = None
            return []
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        answers: list[tuple[int, HashedFile]] = []
        append, next_index, sent = answers.append, self.sent.popleft, self.sent
        for line in lines:
            try:
                if line[:3] == b"OK " and line[67:68] == b" " and len(line) < 90:
                    # The common answer, "OK <64 hex> <size>", parsed without splitting.
                    result = _new_hashed((line[3:67].decode("ascii"), int(line[68:]), None))
                else:
                    result = _parse_answer(line)
            except ValueError:
                if line.startswith(b"ERR\t"):
                    _, name, message = line.decode("utf-8", "replace").split("\t", 2)
                    self.error = _WORKER_ERRORS.get(name, errors.InputError)(message)
                else:
                    self.error = errors.Error(f"hashing worker answered out of protocol: {line!r}")
                break
            if not sent:
                self.error = errors.Error("hashing worker answered more files than it was sent")
                break
            append((next_index(), result))
        return answers

    def reap(self) -> None:
        """Wait for the exited worker; raise its error, or one for a crash or missing answer.

        Only the first call waits and raises; later ones (from clean-up) do nothing.
        """
        if self.reaped:
            return
        self.reaped = True
        status = self.process.wait()
        assert self.process.stderr is not None
        stderr = self.process.stderr.read().decode("utf-8", "replace").strip()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.error is not None:
            raise self.error
        if status != 0 or self.sent:
            last = stderr.splitlines()[-1] if stderr else f"exit status {status}"
            raise errors.Error(
                f"hashing worker failed with {len(self.sent)} files unanswered: {last}"
            )

    def kill(self) -> None:
        if not self.reaped:
            self.process.kill()
        with contextlib.suppress(errors.Error):
            self.reap()


class HashScheduler:
    """Accepts files as a walk finds them and hashes them; see the module docstring.

    Use as a context manager: leaving it with an exception kills every worker.
    """

    def __init__(
        self,
        algorithm: Algorithm,
        *,
        workers: int | None = None,
        progress: Progress | None = None,
        with_stat: bool = False,
    ) -> None:
        self.algorithm = algorithm
        self._with_stat = with_stat
        self.files: list[PlannedFile] = []
        self._count = workers or default_workers()
        self._progress = progress
        self._results: list[HashedFile | None] = []
        self._small: list[int] = []  # small files not yet handed to a worker
        self._large: list[int] = []
        self._workers: list[_Worker] = []

    def __enter__(self) -> HashScheduler:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.abort()

    def add(self, planned: PlannedFile) -> None:
        """Schedule one file; its result will be at the same position as in :attr:`files`."""
        index = len(self.files)
        self.files.append(planned)
        self._results.append(None)
        size = planned.info.st_size if planned.info is not None else None
        if self._progress is not None:
            self._progress.found(1, size or 0)
        if size is not None and size >= BUFFER_SIZE:
            self._large.append(index)
            return
        self._small.append(index)
        if self._workers:
            if len(self._small) >= CHUNK_FILES:
                self._dispatch(final=False)
                self._pump(timeout=0)
        elif self._count > 1 and len(self._small) >= PROCESS_MIN_FILES:
            self._workers = [
                _Worker(self.algorithm, with_stat=self._with_stat) for _ in range(self._count)
            ]
            self._dispatch(final=False)
            self._pump(timeout=0)

    def _dispatch(self, *, final: bool) -> None:
        """Hand buffered small files to the least-loaded workers, a chunk at a time."""
        cut = len(self._small) if final else len(self._small) - len(self._small) % CHUNK_FILES
        files = self.files
        for start in range(0, cut, CHUNK_FILES):
            indices = self._small[start : min(start + CHUNK_FILES, cut)]
            # One encode per chunk: surrogateescape gives back the OS path's original bytes.
            text = "".join(f"{files[i].os_path}\0{files[i].path}\0" for i in indices)
            payload = text.encode("utf-8", "surrogateescape")
            min(self._workers, key=lambda w: w.outstanding).send(indices, payload)
        del self._small[:cut]

    def _pump(self, *, timeout: float | None) -> bool:
        """Move records and answers through ready pipes; True while any worker is running."""
        selector = selectors.DefaultSelector()
        try:
            for worker in self._workers:
                if worker.stdout_fd is not None:
                    selector.register(worker.stdout_fd, selectors.EVENT_READ, worker)
                if worker.stdin_fd is not None and (worker.outbox or worker.closing):
                    selector.register(worker.stdin_fd, selectors.EVENT_WRITE, worker)
            if not selector.get_map():
                return False
            for key, mask in selector.select(timeout):
                worker = key.data
                if mask & selectors.EVENT_WRITE:
                    worker.write_some()
                if mask & selectors.EVENT_READ:
                    self._record(worker.read_some())
                    if worker.error is not None:
                        raise worker.error
        finally:
            selector.close()
        return True

    def _record(self, answers: list[tuple[int, HashedFile]]) -> None:
        for index, result in answers:
            self._results[index] = result
        if self._progress is not None and answers:
            self._progress.advance(len(answers), sum(r.size for _, r in answers))

    def _label(self, index: int) -> str:
        return display(self.files[index].path)

    def _hash_small_here(self) -> None:
        advance = self._progress.advance if self._progress is not None else None
        for start in range(0, len(self._small), CHUNK_FILES):
            indices = self._small[start : start + CHUNK_FILES]
            items = [(self.files[i].os_path, self._label(i)) for i in indices]
            hashed = hash_small_files(items, self.algorithm.value, with_stat=self._with_stat)
            for i, result in zip(indices, hashed, strict=True):
                self._results[i] = result
            if advance is not None:
                advance(len(indices), sum(r.size for r in hashed))
        self._small.clear()

    def _hash_large(self, index: int) -> None:
        advance = self._progress.advance if self._progress is not None else None
        self._results[index] = hash_file(
            self.files[index].os_path,
            self.algorithm.value,
            label=self._label(index),
            advance=advance,
        )

    def _find_large(self) -> None:
        """Sort out large files among those listed without a size, to hash them on threads.

        Only small trees get here (large ones went to worker processes, where file size does
        not matter), so the extra ``lstat`` per file is cheap.
        """
        small: list[int] = []
        for i in self._small:
            info = self.files[i].info
            try:
                size = info.st_size if info is not None else os.lstat(self.files[i].os_path).st_size
            except OSError:
                size = 0  # hashing it reports the problem, with the file's name
            (self._large if size >= BUFFER_SIZE else small).append(i)
        self._small = small

    def _start_large(self) -> tuple[ThreadPoolExecutor | None, list[Future[None]]]:
        """Hash large files on threads (or here, when there is no parallelism to gain)."""
        if self._count > 1 and len(self._large) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=self._count, thread_name_prefix="provenance")
            return pool, [pool.submit(self._hash_large, i) for i in self._large]
        for i in self._large:
            self._hash_large(i)
        return None, []

    def finish(self) -> list[HashedFile]:
        """Wait for every file; return the results in the order files were added."""
        if self._workers:
            self._dispatch(final=True)
            for worker in self._workers:
                worker.closing = True
        else:
            if self._count > 1:
                self._find_large()
            self._hash_small_here()
        pool, large = self._start_large()
        try:
            while self._pump(timeout=None):
                pass
            for worker in self._workers:
                worker.reap()
            self._workers = []
            for future in large:
                future.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        complete = [r for r in self._results if r is not None]
        if len(complete) != len(self._results):  # pragma: no cover - answered or raised
            raise errors.Error("hashing finished with a file left unhashed")
        return complete

    def abort(self) -> None:
        """Kill every worker and wait for them, without raising their errors."""
        for worker in self._workers:
            worker.kill()
        self._workers = []


def hash_files(
    files: Sequence[PlannedFile],
    algorithm: Algorithm,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[HashedFile]:
    """Hash ``files`` (already listed) and return their results in the same order."""
    with HashScheduler(algorithm, workers=workers, progress=progress) as scheduler:
        for planned in files:
            scheduler.add(planned)
        return scheduler.finish()


__all__ = [
    "HashScheduler",
    "HashedFile",
    "Progress",
    "default_workers",
    "hash_file",
    "hash_files",
]
