"""Units of hashing work, run identically in this process and in hashing worker processes.

A *tree task* lists and hashes a whole subtree; a *files task* hashes given files. Either way
the outcome is a stream of results -- file digests, empty directories, links -- produced in
batches so that the process running a task can do other work (feed workers, read their
answers) between batches. :class:`TaskRunner` is the one implementation: the parent process
calls it directly, and :mod:`provenance.digest.worker` calls it in a child.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from provenance._filehash import StatKey, hash_small_files
from provenance.digest.algorithms import Algorithm
from provenance.digest.cache import RACY_WINDOW_NS, StatCache
from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import DirectoryEntry, SymlinkEntry
from provenance.digest.paths import display
from provenance.digest.walk import PlannedFile, iter_tree
from provenance.errors import ChangedWhileReadingError, UnreadableError

BATCH_FILES = 256  # files hashed between two chances to do other work


@dataclass(frozen=True)
class HashConfig:
    """Everything a process needs to run tasks for one tree; sent to workers as JSON."""

    root: str
    algorithm: Algorithm
    ignore: tuple[str, ...]
    allow_symlinks: bool = False
    cache_dir: str | None = None
    racy_window_ns: int = RACY_WINDOW_NS

    def to_bytes(self) -> bytes:
        """JSON for the worker protocol."""
        return json.dumps(
            {
                "root": self.root,
                "algorithm": self.algorithm.value,
                "ignore": list(self.ignore),
                "allow_symlinks": self.allow_symlinks,
                "cache_dir": self.cache_dir,
                "racy_window_ns": self.racy_window_ns,
            }
        ).encode("utf-8", "surrogateescape")

    @classmethod
    def from_bytes(cls, data: bytes) -> HashConfig:
        """Inverse of :meth:`to_bytes`."""
        raw = json.loads(data.decode("utf-8", "surrogateescape"))
        return cls(
            root=raw["root"],
            algorithm=Algorithm(raw["algorithm"]),
            ignore=tuple(raw["ignore"]),
            allow_symlinks=raw["allow_symlinks"],
            cache_dir=raw["cache_dir"],
            racy_window_ns=raw["racy_window_ns"],
        )


class TreeTask(NamedTuple):
    """List and hash the subtree at ``os_path`` (manifest path ``path``)."""

    os_path: str
    path: str


class FilesTask(NamedTuple):
    """Hash these files."""

    files: tuple[PlannedFile, ...]


Task = TreeTask | FilesTask


class FileResult(NamedTuple):
    """A hashed (or cache-answered) file.

    ``stat`` is the key of the version that was hashed, when a stat cache should record it.
    """

    path: str
    size: int
    digest: str
    stat: StatKey | None
    cached: bool


Result = FileResult | DirectoryEntry | SymlinkEntry


def cache_path(root: str, path: str) -> str:
    """The stat-cache key of the file at manifest ``path`` under ``root``.

    Built from the manifest path rather than the OS spelling of the name, so that the parent
    (which records) and a worker (which looks up) agree on it from the results alone.
    """
    return os.path.join(os.path.abspath(root), path)


class TaskRunner:
    """Runs tasks for one process: ignore rules compiled and the cache opened once."""

    def __init__(self, config: HashConfig, cache: StatCache | None = None) -> None:
        self.config = config
        self.root = Path(config.root)
        self.ignore = IgnoreRules(config.ignore)
        self.cache = cache

    def run(self, task: Task) -> Iterator[list[Result]]:
        """Results of ``task``, in batches of at most :data:`BATCH_FILES` files."""
        if isinstance(task, FilesTask):
            for start in range(0, len(task.files), BATCH_FILES):
                yield list(self._hash(task.files[start : start + BATCH_FILES]))
            return
        pending: list[PlannedFile] = []
        listings = iter_tree(
            self.root,
            self.ignore,
            allow_symlinks=self.config.allow_symlinks,
            stat_files=self.cache is not None,
            start=(task.os_path, task.path),
        )
        for listing in listings:
            if listing.others:
                yield list(listing.others)
            pending.extend(listing.files)
            while len(pending) >= BATCH_FILES:
                yield list(self._hash(pending[:BATCH_FILES]))
                del pending[:BATCH_FILES]
        if pending:
            yield list(self._hash(pending))

    def _hash(self, files: Sequence[PlannedFile]) -> Iterator[FileResult]:
        algorithm = self.config.algorithm
        cache = self.cache
        if cache is None:
            items = [(f.os_path, display(f.path)) for f in files]
            hashed = hash_small_files(items, algorithm.value, with_stat=False)
            for planned, result in zip(files, hashed, strict=True):
                yield FileResult(planned.path, result.size, result.digest, None, False)
            return
        misses: list[PlannedFile] = []
        for planned in files:
            info = planned.info if planned.info is not None else _lstat(planned)
            digest = cache.lookup(
                cache_path(self.config.root, planned.path), algorithm, StatKey.of(info)
            )
            if digest is None:
                misses.append(planned)
            else:
                yield FileResult(planned.path, info.st_size, digest, None, True)
        items = [(f.os_path, display(f.path)) for f in misses]
        hashed = hash_small_files(items, algorithm.value, with_stat=True)
        for planned, result in zip(misses, hashed, strict=True):
            yield FileResult(planned.path, result.size, result.digest, result.stat, False)


def _lstat(planned: PlannedFile) -> os.stat_result:
    try:
        return os.lstat(planned.os_path)
    except FileNotFoundError as e:
        raise ChangedWhileReadingError(
            f"file disappeared before it was read: {display(planned.path)}"
        ) from e
    except OSError as e:
        raise UnreadableError(f"cannot stat {display(planned.path)}: {e.strerror}") from e
