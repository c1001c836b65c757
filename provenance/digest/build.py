"""From a path on disk to a Manifest or an artifact digest: walk, (cache,) hash, assemble.

A *file* artifact is named by the digest of its bytes (what ``sha256sum`` prints, and what an
in-toto subject carries for a file). A *directory* artifact is named by its manifest's root
digest. :func:`digest_path` returns whichever applies; :func:`build_manifest` always returns a
manifest (a file's manifest has one entry, named after the file).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from provenance._filehash import HashedFile, hash_file
from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.cache import RACY_WINDOW_NS, StatCache
from provenance.digest.hashing import Progress, TreeHasher, plan
from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import Entry, FileEntry, Manifest, sort_key
from provenance.digest.paths import display, name_from_os
from provenance.digest.tasks import FileResult, HashConfig, cache_path
from provenance.errors import InputError, UnreadableError, UnsupportedFileError


class ArtifactKind(Enum):
    """Whether an artifact is one file or a directory tree."""

    FILE = "file"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class ArtifactDigest:
    """The digest that names an artifact, with what it covers."""

    kind: ArtifactKind
    digest: Digest
    files: int
    bytes: int
    manifest: Manifest | None  # for directories


def _stat_root(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError as e:
        raise InputError(f"no such file or directory: {path}") from e
    except OSError as e:
        raise UnreadableError(f"cannot access {path}: {e.strerror}") from e


def _hash_single(
    path: Path, info: os.stat_result, algorithm: Algorithm, progress: Progress | None
) -> HashedFile:
    if progress is not None:
        progress.found(1, info.st_size)
    # The caller named this path, so a link here is followed (entries inside trees never are).
    real = os.path.realpath(path)
    advance = progress.advance if progress is not None else None
    try:
        return hash_file(real, algorithm.value, label=display(str(path)), advance=advance)
    finally:
        if progress is not None:
            progress.finish()


def build_manifest(
    root: Path,
    *,
    algorithm: Algorithm = Algorithm.SHA256,
    ignore: IgnoreRules | None = None,
    allow_symlinks: bool = False,
    cache: StatCache | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Hash ``root`` (a directory, or a single file) into a :class:`Manifest`.

    ``ignore`` defaults to the root's own rules (built-ins plus ``.provenanceignore``); a
    verifier passes the rules recorded in the manifest it checks against instead. The tree is
    cut into tasks shared between this process and, for large trees, worker processes (see
    :mod:`provenance.digest.hashing`); a refusal anywhere stops all of it.
    """
    info = _stat_root(root)
    if stat.S_ISREG(info.st_mode):
        hashed = _hash_single(root, info, algorithm, progress)
        entry = FileEntry(name_from_os(root.name, ""), hashed.size, hashed.digest)
        return Manifest.from_entries(algorithm, [entry], ignore)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsupportedFileError(f"{root} is neither a regular file nor a directory")
    rules = ignore if ignore is not None else IgnoreRules.for_directory(root)
    config = HashConfig(
        root=os.fspath(root),
        algorithm=algorithm,
        ignore=rules.patterns,
        allow_symlinks=allow_symlinks,
        cache_dir=os.fspath(cache.directory) if cache is not None else None,
        racy_window_ns=cache.racy_window_ns if cache is not None else RACY_WINDOW_NS,
    )
    hashed_at = StatCache.now_ns()  # before any file is read: the racy-entry rule needs it
    hasher = TreeHasher(config, workers=workers, progress=progress, cache=cache)
    try:
        tasks, found = plan(config, rules, processes=hasher.processes)
        results = hasher.run(tasks)
    finally:
        if progress is not None:
            progress.finish()
    entries: list[Entry] = list(found)
    entries.extend(
        FileEntry(r.path, r.size, r.digest) if isinstance(r, FileResult) else r for r in results
    )
    if cache is not None:
        cache.store(
            algorithm,
            (
                (cache_path(config.root, r.path), r.stat, r.digest)
                for r in results
                if isinstance(r, FileResult) and r.stat is not None
            ),
            hashed_at,
        )
    entries.sort(key=sort_key)
    return Manifest(algorithm, tuple(entries), rules)


def digest_path(
    path: Path,
    *,
    algorithm: Algorithm = Algorithm.SHA256,
    allow_symlinks: bool = False,
    cache: StatCache | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> ArtifactDigest:
    """The digest that names ``path``: its bytes' digest for a file, its root digest for a tree."""
    info = _stat_root(path)
    if stat.S_ISREG(info.st_mode):
        hashed = _hash_single(path, info, algorithm, progress)
        return ArtifactDigest(
            ArtifactKind.FILE, Digest(algorithm, hashed.digest), 1, hashed.size, None
        )
    manifest = build_manifest(
        path,
        algorithm=algorithm,
        allow_symlinks=allow_symlinks,
        cache=cache,
        workers=workers,
        progress=progress,
    )
    return ArtifactDigest(
        ArtifactKind.DIRECTORY,
        manifest.root_digest,
        manifest.file_count,
        manifest.total_bytes,
        manifest,
    )


__all__ = [
    "ArtifactDigest",
    "ArtifactKind",
    "build_manifest",
    "digest_path",
]
