"""The pipe protocol between the hashing scheduler and its worker processes.

Every record is a sequence of NUL-terminated fields (NUL cannot occur in a path). OS paths are
sent as the OS spells them (bytes); manifest paths and link targets as UTF-8.

Parent to worker: first the :class:`~provenance.digest.tasks.HashConfig` as JSON, then tasks:
``T <os path> <path>`` (a subtree) or ``F <count>`` followed by ``<os path> <path>`` pairs.

Worker to parent: ``f <path> <hex> <size> <stat> <cached>`` per file (``stat`` empty or
``device inode size mtime_ns ctime_ns``; ``cached`` 1 or 0), ``d <path>`` per empty directory,
``l <path> <target>`` per link, ``e`` when a task is done, ``r`` once when it is ready for
tasks (started and configured), and ``x <ErrorClass> <message>`` at the first failure, after
which the worker exits.
"""

from __future__ import annotations

import collections
import functools
import io
import os
from collections.abc import Callable

from provenance import errors
from provenance._filehash import StatKey
from provenance.digest.manifest import DirectoryEntry, SymlinkEntry
from provenance.digest.tasks import FileResult, FilesTask, Result, Task, TreeTask
from provenance.digest.walk import PlannedFile

TASK_DONE = object()  # markers in the parsed answer stream
READY = object()

# Errors a worker may report, rebuilt in the parent under the same class.
WORKER_ERRORS: dict[str, type[errors.Error]] = {
    cls.__name__: cls
    for cls in (
        errors.ChangedWhileReadingError,
        errors.FormatError,
        errors.InputError,
        errors.UnreadableError,
        errors.UnsafePathError,
        errors.UnsupportedFileError,
        errors.UnsupportedAlgorithmError,
    )
}

_WIDTH = {b"f": 6, b"d": 2, b"l": 3, b"e": 1, b"r": 1, b"x": 3}

# Builds a FileResult without the named tuple's Python-level constructor (hot path).
_new_file_result: Callable[[tuple[str, int, str, StatKey | None, bool]], FileResult] = (
    functools.partial(tuple.__new__, FileResult)
)


def encode_task(task: Task) -> bytes:
    """A task as parent-to-worker fields."""
    if isinstance(task, TreeTask):
        return b"T\0" + os.fsencode(task.os_path) + b"\0" + task.path.encode() + b"\0"
    text = "".join(f"{f.os_path}\0{f.path}\0" for f in task.files)
    return b"F\0%d\0" % len(task.files) + text.encode("utf-8", "surrogateescape")


def encode_results(results: list[Result]) -> bytes:
    """A batch of results as worker-to-parent fields."""
    parts: list[str] = []
    for r in results:
        if isinstance(r, FileResult):
            key = "" if r.stat is None else "%d %d %d %d %d" % r.stat  # noqa: UP031
            parts.append(f"f\0{r.path}\0{r.digest}\0{r.size}\0{key}\0{1 if r.cached else 0}\0")
        elif isinstance(r, DirectoryEntry):
            parts.append(f"d\0{r.path}\0")
        else:
            parts.append(f"l\0{r.path}\0{r.target}\0")
    return "".join(parts).encode()


def encode_error(error: errors.Error) -> bytes:
    """The worker's last record: the failure, to be raised again in the parent."""
    message = " ".join(error.message.replace("\0", " ").split())
    return f"x\0{type(error).__name__}\0{message}\0".encode()


class AnswerParser:
    """Turns the worker's output bytes, fed as they arrive, into results and markers."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # complete fields of a record not yet complete
        self._tail = b""  # an incomplete field

    def feed(self, data: bytes) -> list[Result | object]:
        """Parse what ``data`` completes; raise the worker's error or a protocol error."""
        fields = (self._tail + data).split(b"\0")
        self._tail = fields.pop()
        if self._pending:
            fields[:0] = self._pending
        out: list[Result | object] = []
        append = out.append
        i, n = 0, len(fields)
        while i < n:
            kind = fields[i]
            width = _WIDTH.get(kind)
            if width is None:
                raise errors.Error(f"hashing worker answered out of protocol: {kind[:40]!r}")
            if i + width > n:
                break
            if kind == b"f":
                stat = fields[i + 4]
                key = StatKey(*map(int, stat.split())) if stat else None
                append(
                    _new_file_result(
                        (
                            fields[i + 1].decode(),
                            int(fields[i + 3]),
                            fields[i + 2].decode("ascii"),
                            key,
                            fields[i + 5] == b"1",
                        )
                    )
                )
            elif kind == b"d":
                append(DirectoryEntry(fields[i + 1].decode()))
            elif kind == b"l":
                append(SymlinkEntry(fields[i + 1].decode(), fields[i + 2].decode()))
            elif kind == b"e":
                append(TASK_DONE)
            elif kind == b"r":
                append(READY)
            else:
                name, message = fields[i + 1].decode(), fields[i + 2].decode()
                raise WORKER_ERRORS.get(name, errors.InputError)(message)
            i += width
        self._pending = fields[i:]
        return out


class FieldReader:
    """Reads NUL-terminated fields from a stream as they arrive (the worker's input side)."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self._stream = stream
        self._fields: collections.deque[bytes] = collections.deque()
        self._tail = b""
        self._eof = False

    def next(self) -> bytes | None:
        """The next field, or None at the end of input between records."""
        while not self._fields:
            if self._eof:
                if self._tail:
                    raise errors.InputError("hashing worker input ended inside a field")
                return None
            block = self._stream.read1(1 << 16)
            if not block:
                self._eof = True
                continue
            parts = (self._tail + block).split(b"\0")
            self._tail = parts.pop()
            self._fields.extend(parts)
        return self._fields.popleft()

    def require(self) -> bytes:
        """The next field, which must exist (the input is inside a record)."""
        field = self.next()
        if field is None:
            raise errors.InputError("hashing worker input ended inside a record")
        return field

    def task(self) -> Task | None:
        """The next task, or None when the parent has no more."""
        kind = self.next()
        if kind is None:
            return None
        if kind == b"T":
            return TreeTask(os.fsdecode(self.require()), self.require().decode())
        if kind == b"F":
            count = int(self.require())
            files = []
            for _ in range(count):
                os_path = os.fsdecode(self.require())
                files.append(PlannedFile(self.require().decode(), os_path, None))
            return FilesTask(tuple(files))
        raise errors.InputError(f"hashing worker received an unknown task kind {kind[:20]!r}")
