"""The stat cache saves work on unchanged files and never hides a change."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from provenance.digest import Algorithm, StatCache, build_manifest
from tests.conftest import make_tree


def _age(path: Path, seconds: int = 3600) -> None:
    """Move a file's mtime into the past (its ctime becomes now; see the racy tests)."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - seconds * 10**9))


def test_unchanged_files_are_not_rehashed(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1", "b/c": b"2"})
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    first = build_manifest(root, cache=cache)
    assert (cache.hits, cache.misses) == (0, 2)
    second = build_manifest(root, cache=cache)
    assert (cache.hits, cache.misses) == (2, 2)
    assert second == first


def test_a_changed_file_is_rehashed_even_with_the_same_size(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1", "b": b"2"})
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    build_manifest(root, cache=cache)
    (root / "a").write_bytes(b"9")
    manifest = build_manifest(root, cache=cache)
    assert cache.hits == 1  # only b
    assert manifest == build_manifest(root)  # the uncached result


def test_a_file_restored_with_its_old_mtime_is_still_rehashed(tmp_path: Path) -> None:
    # Forging mtime does not fool the cache: the write changes ctime, which cannot be set.
    root = make_tree(tmp_path / "d", {"a": b"original"})
    _age(root / "a")
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    build_manifest(root, cache=cache)
    info = (root / "a").stat()
    (root / "a").write_bytes(b"poisoned")
    os.utime(root / "a", ns=(info.st_atime_ns, info.st_mtime_ns))
    manifest = build_manifest(root, cache=cache)
    assert cache.hits == 0
    assert manifest == build_manifest(root)


def test_racily_clean_entries_are_rehashed(tmp_path: Path) -> None:
    # A file modified within the racy window before it was hashed is never trusted from cache.
    root = make_tree(tmp_path / "d", {"a": b"1"})
    cache = StatCache(tmp_path / "cache")  # default window: seconds
    build_manifest(root, cache=cache)
    build_manifest(root, cache=cache)
    assert cache.hits == 0


def test_algorithms_are_cached_separately(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1"})
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    build_manifest(root, cache=cache)
    blake = build_manifest(root, cache=cache, algorithm=Algorithm.BLAKE3)
    assert cache.hits == 0
    assert blake == build_manifest(root, algorithm=Algorithm.BLAKE3)


def test_a_corrupt_cache_is_ignored_not_trusted(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1"})
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "stat-cache.sqlite").write_bytes(b"this is not a database" * 100)
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    assert build_manifest(root, cache=cache) == build_manifest(root)
    assert cache.hits == 0


def test_a_forged_cache_row_with_a_bad_digest_is_not_used(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1"})
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    expected = build_manifest(root, cache=cache)
    cache.close()
    with sqlite3.connect(tmp_path / "cache" / "stat-cache.sqlite") as db:
        db.execute("UPDATE stat_cache SET digest = 'not-hex'")
    db.close()
    again = StatCache(tmp_path / "cache", racy_window_ns=0)
    assert build_manifest(root, cache=again) == expected
    assert again.hits == 0


def test_a_row_of_the_wrong_types_is_a_miss(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b"1"})
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    expected = build_manifest(root, cache=cache)
    cache.close()
    with sqlite3.connect(tmp_path / "cache" / "stat-cache.sqlite") as db:
        db.execute("UPDATE stat_cache SET hashed_at_ns = 'x', digest = x'00'")
    db.close()
    again = StatCache(tmp_path / "cache", racy_window_ns=0)
    assert build_manifest(root, cache=again) == expected
    assert again.hits == 0
