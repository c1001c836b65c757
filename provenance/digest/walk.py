"""Listing a directory tree into what a manifest will hold, refusing what it cannot hold.

The walk decides *what* is in a dataset; hashing (in :mod:`provenance.digest.hashing`) decides
what the bytes are. Everything that can be refused without reading file contents is refused
here, before any hashing starts, and every refusal names the path: sockets, devices and FIFOs
(their "contents" are not data at rest), symbolic links unless allowed (and, when allowed, any
link whose target leaves the root), names that are not UTF-8, and two names that become equal
under Unicode NFC normalisation (they would be one manifest entry for two files).

The walk is iterative, so a deeply nested tree cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from pathlib import Path

from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import DirectoryEntry, SymlinkEntry
from provenance.digest.paths import check_link_target, display, name_from_os
from provenance.errors import (
    ChangedWhileReadingError,
    UnreadableError,
    UnsafePathError,
    UnsupportedFileError,
)


@dataclass(frozen=True, slots=True)
class StatKey:
    """What identifies one version of a file on disk without reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> StatKey:
        """The key of a ``stat`` result."""
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A regular file found by the walk and waiting to be hashed."""

    path: str  # manifest path (NFC, POSIX, root-relative)
    os_path: str  # path to open, as the OS spells it
    stat: StatKey


@dataclass
class WalkResult:
    """The files to hash plus the entries that need no hashing."""

    files: list[PlannedFile]
    others: list[DirectoryEntry | SymlinkEntry]


def _kind_of(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file, directory or link"


def _check_link(root_real: str, entry: os.DirEntry[str], rel: str) -> SymlinkEntry:
    try:
        target_os = os.readlink(entry.path)
    except OSError as e:
        raise UnreadableError(f"cannot read link {display(rel)}: {e.strerror}") from e
    target = check_link_target(rel, name_from_os(target_os, posixpath.dirname(rel)))
    # The lexical check above cannot see through other links on the way ("a/link/../.."):
    # resolve as the kernel does too, and require the result to stay inside the root.
    resolved = os.path.realpath(entry.path)
    if resolved != root_real and not resolved.startswith(root_real.rstrip(os.sep) + os.sep):
        raise UnsafePathError(
            f"symbolic link resolves outside the root: {display(rel)} -> {display(target)}"
        )
    return SymlinkEntry(rel, target)


def _list_directory(os_dir: str, rel_dir: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(os_dir) as iterator:
            return list(iterator)
    except FileNotFoundError as e:
        raise ChangedWhileReadingError(
            f"directory disappeared while listing: {display(rel_dir or '.')}"
        ) from e
    except OSError as e:
        raise UnreadableError(
            f"cannot list directory {display(rel_dir or '.')}: {e.strerror}"
        ) from e


def _lstat(child: os.DirEntry[str], rel: str) -> os.stat_result:
    try:
        return child.stat(follow_symlinks=False)
    except FileNotFoundError as e:
        raise ChangedWhileReadingError(f"file disappeared while listing: {display(rel)}") from e
    except OSError as e:
        raise UnreadableError(f"cannot stat {display(rel)}: {e.strerror}") from e


def walk_tree(root: Path, ignore: IgnoreRules, *, allow_symlinks: bool = False) -> WalkResult:
    """List ``root`` (a directory) into files to hash and link/empty-directory entries."""
    root_real = os.path.realpath(root)
    result = WalkResult([], [])
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        os_dir, rel_dir = stack.pop()
        included = 0
        for child in _list_directory(os_dir, rel_dir):
            name = name_from_os(child.name, rel_dir)
            rel = f"{rel_dir}/{name}" if rel_dir else name
            info = _lstat(child, rel)
            is_dir = stat.S_ISDIR(info.st_mode)
            if ignore.is_ignored(rel, is_dir=is_dir):
                continue
            included += 1
            if is_dir:
                stack.append((child.path, rel))
            elif stat.S_ISREG(info.st_mode):
                result.files.append(PlannedFile(rel, child.path, StatKey.of(info)))
            elif stat.S_ISLNK(info.st_mode) and allow_symlinks:
                result.others.append(_check_link(root_real, child, rel))
            elif stat.S_ISLNK(info.st_mode):
                raise UnsupportedFileError(
                    f"symbolic link found: {display(rel)}",
                    hint="pass --allow-symlinks to record links (they are never followed)",
                )
            else:
                raise UnsupportedFileError(f"{display(rel)} is {_kind_of(info.st_mode)}")
        if included == 0 and rel_dir:
            result.others.append(DirectoryEntry(rel_dir))
    return result
