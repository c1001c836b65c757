"""From a path on disk to a Manifest or an artifact digest: walk, (cache,) hash, assemble.

A *file* artifact is named by the digest of its bytes (what ``sha256sum`` prints, and what an
in-toto subject carries for a file). A *directory* artifact is named by its manifest's root
digest. :func:`digest_path` returns whichever applies; :func:`build_manifest` always returns a
manifest (a file's manifest has one entry, named after the file).
"""

from __future__ import annotations

import itertools
import os
import stat
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.cache import StatCache
from provenance.digest.hashing import HashedFile, Progress, hash_file, hash_files
from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import Entry, FileEntry, Manifest, sort_key
from provenance.digest.paths import display, name_from_os
from provenance.digest.walk import PlannedFile, StatKey, WalkResult, walk_tree
from provenance.errors import InputError, UnreadableError, UnsafePathError, UnsupportedFileError


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
        progress.start(1, info.st_size)
    # The caller named this path, so a link here is followed (entries inside trees never are).
    real = os.path.realpath(path)
    hashed = hash_file(real, algorithm, label=str(path), progress=progress)
    if progress is not None:
        progress.finish()
    return hashed


def _hash_with_cache(
    files: list[PlannedFile],
    algorithm: Algorithm,
    cache: StatCache | None,
    workers: int | None,
    progress: Progress | None,
) -> list[HashedFile]:
    if cache is None:
        if progress is not None:
            progress.start(len(files), sum(f.stat.size for f in files))
        return hash_files(files, algorithm, workers=workers, progress=progress)
    results: list[HashedFile | None] = []
    todo: list[PlannedFile] = []
    for planned in files:
        cached = cache.lookup(planned.os_path, algorithm, planned.stat)
        if cached is None:
            todo.append(planned)
            results.append(None)
        else:
            results.append(HashedFile(cached, planned.stat.size, planned.stat))
    if progress is not None:
        progress.start(len(todo), sum(f.stat.size for f in todo))
    hashed_at = cache.now_ns()
    fresh = hash_files(todo, algorithm, workers=workers, progress=progress)
    cache.store(
        algorithm,
        ((p.os_path, h.stat, h.digest) for p, h in zip(todo, fresh, strict=True)),
        hashed_at,
    )
    new = iter(fresh)
    return [r if r is not None else next(new) for r in results]


def _check_nfc_collisions(walked: WalkResult) -> None:
    """Refuse two OS names that normalise to the same manifest path, before any hashing."""
    paths = sorted(
        [f.path for f in walked.files] + [o.path for o in walked.others],
        key=lambda p: p.encode("utf-8"),
    )
    for previous, current in itertools.pairwise(paths):
        if previous == current:
            spellings = sorted(ascii(f.os_path) for f in walked.files if f.path == current)
            raise UnsafePathError(
                f"two names are the same after Unicode NFC normalisation: {display(current)}"
                + (f" ({', '.join(spellings)})" if spellings else ""),
                hint="rename one of them",
            )


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
    verifier passes the rules recorded in the manifest it checks against instead.
    """
    info = _stat_root(root)
    if stat.S_ISREG(info.st_mode):
        hashed = _hash_single(root, info, algorithm, progress)
        entry = FileEntry(name_from_os(root.name, ""), hashed.size, hashed.digest)
        return Manifest.from_entries(algorithm, [entry], ignore)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsupportedFileError(f"{root} is neither a regular file nor a directory")
    rules = ignore if ignore is not None else IgnoreRules.for_directory(root)
    walked = walk_tree(root, rules, allow_symlinks=allow_symlinks)
    _check_nfc_collisions(walked)
    walked.files.sort(key=lambda f: f.path.encode("utf-8"))
    hashed_files = _hash_with_cache(walked.files, algorithm, cache, workers, progress)
    entries: list[Entry] = [
        FileEntry(p.path, h.size, h.digest) for p, h in zip(walked.files, hashed_files, strict=True)
    ]
    entries.extend(walked.others)
    entries.sort(key=sort_key)
    if progress is not None:
        progress.finish()
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
    "StatKey",
    "build_manifest",
    "digest_path",
]
