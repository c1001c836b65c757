"""An optional stat cache: skip re-hashing files that have not changed since last time.

A digest is reused only when the file's (device, inode, size, mtime_ns, ctime_ns) are all the
same as when it was hashed, and the file was not modified within :data:`RACY_WINDOW_NS` before
that hashing started. The second rule is git's "racily clean" rule: a write that lands in the
same timestamp tick as the hash leaves the stat unchanged, so such an entry is re-hashed.

The cache is a convenience for people re-hashing large datasets they control. It trusts the
file system's metadata, which anyone who can write the files can also forge; verification
therefore never uses it unless it is asked to explicitly.

Stored as SQLite (the standard library's ``sqlite3``) under a project's ``.provenance/cache/``.
A cache that cannot be opened or read is reported and ignored: it can only save work, never
change a result.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from provenance._filehash import StatKey
from provenance.digest.algorithms import Algorithm, is_lower_hex

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

RACY_WINDOW_NS = 2_000_000_000
CACHE_FILE = "stat-cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat_cache (
    path BLOB NOT NULL,
    algorithm TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL,
    PRIMARY KEY (path, algorithm)
)
"""


class StatCache:
    """Digests of files keyed by absolute path, algorithm and stat; see the module docstring."""

    def __init__(
        self, directory: Path, *, racy_window_ns: int = RACY_WINDOW_NS, read_only: bool = False
    ) -> None:
        """Open (creating unless ``read_only``) the cache in ``directory``.

        Hashing worker processes open it read-only: they look digests up, and the parent
        process alone records new ones.
        """
        self.directory = directory
        self.path = directory / CACHE_FILE
        self.racy_window_ns = racy_window_ns
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        import sqlite3  # only runs that use the cache pay for it

        self._sqlite_error: type[Exception] = sqlite3.Error
        try:
            if read_only:
                uri = f"{self.path.absolute().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
                return
            directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self._db = db
        except (OSError, sqlite3.Error) as e:
            log.warning("stat cache %s unusable, hashing everything: %s", self.path, e)

    @staticmethod
    def _key(path: str) -> bytes:
        return os.fsencode(os.path.abspath(path))

    def lookup(self, path: str, algorithm: Algorithm, key: StatKey) -> str | None:
        """The cached digest of the file at ``path`` if still valid for ``key``, else None."""
        if self._db is None:
            self.misses += 1
            return None
        try:
            row = self._db.execute(
                "SELECT device, inode, size, mtime_ns, ctime_ns, digest, hashed_at_ns "
                "FROM stat_cache WHERE path = ? AND algorithm = ?",
                (self._key(path), algorithm.value),
            ).fetchone()
        except self._sqlite_error as e:
            log.warning("stat cache %s unreadable, hashing everything: %s", self.path, e)
            self._db = None
            row = None
        # SQLite columns are not typed: a row edited by hand may hold anything, and is a miss.
        if row is not None and all(type(v) is int for v in row[:5] + row[6:]):
            digest, hashed_at = row[5], row[6]
            fresh = max(key.mtime_ns, key.ctime_ns) < hashed_at - self.racy_window_ns
            valid = isinstance(digest, str) and is_lower_hex(digest, algorithm.hex_length)
            if StatKey(*row[:5]) == key and fresh and valid:
                self.hits += 1
                return str(digest)
        self.misses += 1
        return None

    def store(
        self, algorithm: Algorithm, items: Iterable[tuple[str, StatKey, str]], hashed_at_ns: int
    ) -> None:
        """Record ``(path, stat, digest)`` triples hashed from ``hashed_at_ns`` on."""
        if self._db is None:
            return
        rows = [
            (
                self._key(p),
                algorithm.value,
                k.device,
                k.inode,
                k.size,
                k.mtime_ns,
                k.ctime_ns,
                d,
                hashed_at_ns,
            )
            for p, k, d in items
        ]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except self._sqlite_error as e:
            log.warning("stat cache %s not updated: %s", self.path, e)

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    def now_ns() -> int:
        """The clock the racy-entry rule compares file timestamps with."""
        return time.time_ns()
