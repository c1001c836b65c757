"""Hashing a tree on every core: the calling process and worker processes share the tasks.

Per-file work in Python is dominated by system calls and interpreter overhead, and threads only
contend for the GIL on it (measured: two threads are *slower* than one), so parallelism comes
from processes. The tree is cut into tasks (:func:`plan`): the top directories are listed here
and their subtrees become *tree tasks* that a process lists and hashes on its own, so that no
process ships file names to another; files found while cutting become *files tasks*. The
calling process runs tasks itself and, once the work proves large enough to pay for them,
starts worker processes (:mod:`provenance.digest.worker`) that take tasks from the same queue
and stream results back over pipes, read without threads whenever the calling process is
between two batches of its own.

Workers are plain ``python -I -c`` subprocesses rather than ``multiprocessing`` ones, whose start
methods either fork a threaded process or re-import the caller's ``__main__`` -- neither
acceptable inside a library. A worker that fails, crashes or answers out of protocol is an
error, never a skipped file; on any error every worker is killed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import provenance
from provenance import errors
from provenance.digest.cache import StatCache
from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import DirectoryEntry, SymlinkEntry
from provenance.digest.protocol import READY, TASK_DONE, AnswerParser, encode_task
from provenance.digest.tasks import (
    BATCH_FILES,
    FileResult,
    FilesTask,
    HashConfig,
    Result,
    Task,
    TaskRunner,
    TreeTask,
)
from provenance.digest.walk import list_directory

# Start worker processes once this much has been hashed here and work remains.
# (A worker takes tasks only once it has started, so starting one costs this process little.)
PROCESS_MIN_FILES = 1024
PROCESS_MIN_BYTES = 32 << 20
# Cut the tree until there are this many tree tasks per process, or this deep.
TASKS_PER_PROCESS = 8
MAX_PLAN_DEPTH = 4
WORKER_QUEUE = 2  # tasks sent ahead to each worker
PIPE_BYTES = 1 << 20  # larger pipes: a worker rarely waits while this process hashes


class Progress(Protocol):
    """Receives progress reports from the process that runs the scheduler."""

    def found(self, files: int, nbytes: int) -> None:
        """Files were found (totals grow while a tree is being listed)."""

    def advance(self, files: int, nbytes: int) -> None:
        """Work was done: ``files`` completed and ``nbytes`` read."""

    def finish(self) -> None:
        """All work is done (or abandoned)."""


def default_workers() -> int:
    """One hashing process per available core, at most 32."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(32, cores))


def plan(
    config: HashConfig, ignore: IgnoreRules, *, processes: int
) -> tuple[list[Task], list[DirectoryEntry | SymlinkEntry]]:
    """Cut the tree into tasks, listing only its top directories here.

    Returns the tasks and the entries found while listing (links, empty directories).
    Directories are listed breadth first until there are enough subtrees to keep every
    process busy, or :data:`MAX_PLAN_DEPTH` is reached; files met on the way are grouped into
    files tasks small enough to share out (a directory of a few large files gives one task per
    file, so they are hashed side by side).
    """
    root_real = os.path.realpath(config.root)
    frontier: list[tuple[str, str]] = [(config.root, "")]
    tasks: list[Task] = []
    found: list[DirectoryEntry | SymlinkEntry] = []
    depth = 0
    while frontier:
        if depth and (len(frontier) >= TASKS_PER_PROCESS * processes or depth >= MAX_PLAN_DEPTH):
            tasks.extend(TreeTask(os_path, path) for os_path, path in frontier)
            break
        next_frontier: list[tuple[str, str]] = []
        for os_dir, rel_dir in frontier:
            listing = list_directory(
                os_dir,
                rel_dir,
                ignore,
                root_real=root_real,
                allow_symlinks=config.allow_symlinks,
                stat_files=config.cache_dir is not None,
            )
            found.extend(listing.others)
            files = listing.files
            size = max(1, min(BATCH_FILES, -(-len(files) // (processes * 4))))
            tasks.extend(FilesTask(tuple(files[i : i + size])) for i in range(0, len(files), size))
            next_frontier.extend(listing.subdirectories)
        frontier = next_frontier
        depth += 1
    return tasks, found


def _worker_command() -> list[str]:
    # -I ignores PYTHON* variables and the user site; the package's own location is put on the
    # path explicitly, so a source checkout works as well as an installed copy.
    package_parent = str(Path(provenance.__file__).resolve().parent.parent)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from provenance.digest.worker import main; sys.exit(main())"
    )
    return [sys.executable, "-I", "-c", code, package_parent]


class _Worker:
    """One worker process, driven without threads through non-blocking pipes."""

    def __init__(self, config: HashConfig) -> None:
        # stderr goes to a file, not a pipe: nothing reads it until the end, and a worker
        # must never block on a full pipe that no one drains.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in reap()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                _worker_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
            )
        except OSError as e:
            self.stderr.close()
            raise errors.Error(
                f"cannot start a hashing worker: {e.strerror}",
                hint="use -j 1 to hash in one process",
            ) from e
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin_fd: int | None = self.process.stdin.fileno()
        self.stdout_fd: int | None = self.process.stdout.fileno()
        for fd in (self.stdin_fd, self.stdout_fd):
            os.set_blocking(fd, False)
            with contextlib.suppress(AttributeError, OSError):  # Linux only; an optimisation
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.outbox = bytearray(config.to_bytes() + b"\0")
        self.tasks = 0  # sent and not yet done
        self.ready = False  # started up; until then tasks stay with the other processes
        self.closing = False  # no more tasks will be sent
        self.parser = AnswerParser()
        self.reaped = False

    def send(self, task: Task) -> None:
        self.outbox += encode_task(task)
        self.tasks += 1

    def write_some(self) -> None:
        """Write what the pipe accepts; close standard input once all is written and closing."""
        if self.stdin_fd is None:
            return
        try:
            if self.outbox:
                del self.outbox[: os.write(self.stdin_fd, self.outbox)]
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

    def read_some(self) -> list[Result]:
        """Read and parse what is available (raising the worker's error, if it sent one)."""
        if self.stdout_fd is None:
            return []
        try:
            data = os.read(self.stdout_fd, PIPE_BYTES)
        except BlockingIOError:
            return []
        if not data:
            self.stdout_fd = None
            return []
        results: list[Result] = []
        for item in self.parser.feed(data):
            if item is TASK_DONE:
                self.tasks -= 1
            elif item is READY:
                self.ready = True
            else:
                results.append(item)  # type: ignore[arg-type]
        return results

    def reap(self) -> None:
        """Wait for the exited worker; raise for a crash or a task left unanswered.

        Only the first call waits and raises; later ones (from clean-up) do nothing.
        """
        if self.reaped:
            return
        self.reaped = True
        status = self.process.wait()
        self.stderr.seek(0)
        stderr = self.stderr.read().decode("utf-8", "replace").strip()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if status != 0 or self.tasks:
            last = stderr.splitlines()[-1] if stderr else f"exit status {status}"
            raise errors.Error(f"hashing worker failed with {self.tasks} tasks unfinished: {last}")

    def kill(self) -> None:
        """Stop the worker at once and wait for it, raising nothing."""
        if not self.reaped:
            self.process.kill()
            self.tasks = 0
            with contextlib.suppress(errors.Error):
                self.reap()
        self.stdin_fd = self.stdout_fd = None


class TreeHasher:
    """Runs tasks in this process and, when the work is large, in worker processes."""

    def __init__(
        self,
        config: HashConfig,
        *,
        workers: int | None = None,
        progress: Progress | None = None,
        cache: StatCache | None = None,
    ) -> None:
        self.config = config
        self.processes = workers or default_workers()
        self._progress = progress
        self._cache = cache
        self._runner = TaskRunner(config, cache)
        self._workers: list[_Worker] = []
        self._results: list[Result] = []
        self._files = 0
        self._bytes = 0

    def run(self, tasks: Iterable[Task]) -> list[Result]:
        """Run every task; return all results (in no particular order).

        Workers start at once when the tasks themselves show a large tree (many files listed,
        or a tree wide enough to have been cut into many subtrees); otherwise only once this
        process has hashed enough to show that the rest is worth them.
        """
        pending = collections.deque(tasks)
        listed = sum(len(t.files) for t in pending if isinstance(t, FilesTask))
        subtrees = sum(1 for t in pending if isinstance(t, TreeTask))
        try:
            if self.processes > 1 and (
                listed >= PROCESS_MIN_FILES or subtrees >= TASKS_PER_PROCESS * self.processes
            ):
                self._start_workers()
            while pending:
                self._feed(pending)
                if not pending:
                    break
                for batch in self._runner.run(pending.pop()):
                    self._collect(batch, from_worker=False)
                    if self._workers:
                        self._pump(timeout=0)
                        self._feed(pending)
                    elif self._worth_workers(pending):
                        self._start_workers()
                        self._feed(pending)
            self._drain()
        except BaseException:
            for worker in self._workers:
                worker.kill()
            raise
        finally:
            self._workers = []
        return self._results

    def _drain(self) -> None:
        """No tasks left here: wait for the workers' last answers and their exit."""
        # A worker still starting with nothing to do is stopped rather than waited for.
        for worker in [w for w in self._workers if not w.ready and not w.tasks]:
            worker.kill()
            self._workers.remove(worker)
        for worker in self._workers:
            worker.closing = True
        while self._pump(timeout=None):
            pass
        for worker in self._workers:
            worker.reap()

    def _start_workers(self) -> None:
        for _ in range(self.processes - 1):  # one by one: a failure leaves the started listed
            self._workers.append(_Worker(self.config))

    def _worth_workers(self, pending: collections.deque[Task]) -> bool:
        return (
            self.processes > 1
            and bool(pending)
            and (self._files >= PROCESS_MIN_FILES or self._bytes >= PROCESS_MIN_BYTES)
        )

    def _feed(self, pending: collections.deque[Task]) -> None:
        for worker in self._workers:
            while pending and worker.ready and worker.tasks < WORKER_QUEUE and not worker.closing:
                worker.send(pending.popleft())

    def _collect(self, batch: list[Result], *, from_worker: bool) -> None:
        self._results.extend(batch)
        files = [r for r in batch if isinstance(r, FileResult)]
        if not files:
            return
        nbytes = sum(r.size for r in files)
        self._files += len(files)
        self._bytes += nbytes
        if from_worker and self._cache is not None:
            hits = sum(1 for r in files if r.cached)
            self._cache.hits += hits
            self._cache.misses += len(files) - hits
        if self._progress is not None:
            self._progress.found(len(files), nbytes)
            self._progress.advance(len(files), nbytes)

    def _pump(self, *, timeout: float | None) -> bool:
        """Move tasks and answers through ready pipes; True while any worker is running."""
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
                    self._collect(worker.read_some(), from_worker=True)
        finally:
            selector.close()
        return True


__all__ = ["Progress", "TreeHasher", "default_workers", "plan"]
