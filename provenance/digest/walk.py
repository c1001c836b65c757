"""Listing a directory tree into what a manifest will hold, refusing what it cannot hold.

The walk decides *what* is in a dataset; hashing (:mod:`provenance._filehash`) decides what the
bytes are. Everything that can be refused without reading file contents is refused here, as
each directory is listed, and every refusal names the path: sockets, devices and FIFOs
(their "contents" are not data at rest), symbolic links unless allowed (and, when allowed, any
link whose target leaves the root), names that are not UTF-8, and two names that become equal
under Unicode NFC normalisation (they would be one manifest entry for two files).

The walk is iterative, so a deeply nested tree cannot exhaust Python's recursion limit.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from provenance.digest.ignore import IgnoreRules
from provenance.digest.manifest import DirectoryEntry, SymlinkEntry
from provenance.digest.paths import check_link_target, display, name_from_os
from provenance.errors import (
    ChangedWhileReadingError,
    UnreadableError,
    UnsafePathError,
    UnsupportedFileError,
)


class PlannedFile(NamedTuple):
    """A regular file found by the walk and waiting to be hashed."""

    path: str  # manifest path (NFC, POSIX, root-relative)
    os_path: str  # path to open, as the OS spells it
    info: os.stat_result | None  # the listing's lstat, when asked for (stat cache, sizes)


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


def _stat_error(error: OSError, rel: str) -> Exception:
    if isinstance(error, FileNotFoundError):
        return ChangedWhileReadingError(f"file disappeared while listing: {display(rel)}")
    return UnreadableError(f"cannot stat {display(rel)}: {error.strerror}")


def _check_nfc_unique(children: list[os.DirEntry[str]], rel_dir: str) -> None:
    """Refuse two names in one directory that are equal after NFC normalisation.

    They would be one manifest entry for two files. Collisions can only arise between
    siblings (paths share their parent's normalised name), so checking each directory that
    has a non-ASCII name covers the whole tree; an ASCII name can collide too (KELVIN SIGN
    normalises to "K").
    """
    seen: dict[str, str] = {}
    for child in children:
        name = name_from_os(child.name, rel_dir)
        if name in seen:
            where = f"{rel_dir}/{name}" if rel_dir else name
            raise UnsafePathError(
                f"two names are the same after Unicode NFC normalisation: {display(where)} "
                f"({seen[name]!a} and {child.name!a})",
                hint="rename one of them",
            )
        seen[name] = child.name


def _lstat(child: os.DirEntry[str], rel: str) -> os.stat_result:
    try:
        return child.stat(follow_symlinks=False)
    except OSError as e:
        raise _stat_error(e, rel) from e


def _classify(child: os.DirEntry[str], rel: str) -> int:
    """The file-type bits of ``child``, from the directory listing when it has them."""
    try:
        if child.is_file(follow_symlinks=False):
            return stat.S_IFREG
        if child.is_dir(follow_symlinks=False):
            return stat.S_IFDIR
        if child.is_symlink():
            return stat.S_IFLNK
        return stat.S_IFMT(child.stat(follow_symlinks=False).st_mode)
    except OSError as e:
        raise _stat_error(e, rel) from e


class DirectoryListing(NamedTuple):
    """One directory's children, sorted out: files to hash, directories to enter, and entries
    needing no hashing (links, and the directory itself when nothing in it is included)."""

    files: list[PlannedFile]
    subdirectories: list[tuple[str, str]]  # (OS path, manifest path)
    others: list[DirectoryEntry | SymlinkEntry]


def list_directory(
    os_dir: str,
    rel_dir: str,
    ignore: IgnoreRules,
    *,
    root_real: str,
    allow_symlinks: bool = False,
    stat_files: bool = False,
) -> DirectoryListing:
    """List one directory of a tree rooted at ``root_real``, refusing what cannot be held.

    File types come from the listing itself where the file system provides them, so a file
    costs no ``lstat`` unless ``stat_files`` asks for one (the stat cache needs it); hashing
    checks the type again on the open file in any case.
    """
    # With only the built-in rules (the common case) no file is ever ignored, and a directory
    # is ignored by its name alone: skip the pattern matcher on the hot path.
    match_files = not ignore.builtin_only
    prefix = rel_dir + "/" if rel_dir else ""
    listing = DirectoryListing([], [], [])
    children = _list_directory(os_dir, rel_dir)
    if not all(child.name.isascii() for child in children):
        _check_nfc_unique(children, rel_dir)
    included = 0
    for child in children:
        name = child.name
        rel = prefix + (name if name.isascii() else name_from_os(name, rel_dir))
        kind = _classify(child, rel)
        if kind == stat.S_IFREG:
            if match_files and ignore.is_ignored(rel, is_dir=False):
                continue
            info = _lstat(child, rel) if stat_files else None
            listing.files.append(PlannedFile(rel, child.path, info))
        elif kind == stat.S_IFDIR:
            if ignore.is_ignored(rel, is_dir=True):
                continue
            listing.subdirectories.append((child.path, rel))
        elif ignore.is_ignored(rel, is_dir=False):
            continue
        elif kind == stat.S_IFLNK and allow_symlinks:
            listing.others.append(_check_link(root_real, child, rel))
        elif kind == stat.S_IFLNK:
            raise UnsupportedFileError(
                f"symbolic link found: {display(rel)}",
                hint="pass --allow-symlinks to record links (they are never followed)",
            )
        else:
            raise UnsupportedFileError(f"{display(rel)} is {_kind_of(kind)}")
        included += 1
    if included == 0 and rel_dir:
        listing.others.append(DirectoryEntry(rel_dir))
    return listing


def iter_tree(
    root: Path,
    ignore: IgnoreRules,
    *,
    allow_symlinks: bool = False,
    stat_files: bool = False,
    start: tuple[str, str] | None = None,
) -> Iterator[DirectoryListing]:
    """List ``root`` (a directory) one directory at a time, depth first.

    ``start`` -- an (OS path, manifest path) pair inside the root -- lists only that subtree,
    still judging links and ignore rules against the whole root. The walk is iterative, so a
    deeply nested tree cannot exhaust Python's recursion limit.
    """
    root_real = os.path.realpath(root)
    stack: list[tuple[str, str]] = [start or (os.fspath(root), "")]
    while stack:
        os_dir, rel_dir = stack.pop()
        listing = list_directory(
            os_dir,
            rel_dir,
            ignore,
            root_real=root_real,
            allow_symlinks=allow_symlinks,
            stat_files=stat_files,
        )
        stack.extend(listing.subdirectories)
        yield listing
