"""The Manifest: what a directory contains, as data that hashes to one root digest.

A manifest lists every file under a root by relative POSIX path (NFC), size and digest, plus
empty directories and, when allowed, symbolic links with their targets. Entries are sorted by
the UTF-8 bytes of their path and the whole is encoded as RFC 8785 canonical JSON; the **root
digest** is the digest of those bytes. The bytes written to a manifest file are exactly those
bytes, so ``sha256sum manifest.json`` prints the root digest, and each file's entry is the value
``sha256sum`` prints for that file.

Empty directories are entries because a directory layout can carry meaning (an image-folder
dataset's class list is its directory names); directories that hold files are implied by them.

A manifest validates itself on construction, whether built from disk or parsed from a file:
a parsed manifest is untrusted input and must not be able to smuggle ``../`` paths, duplicates
or unsorted entries past the digest.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from provenance.digest.algorithms import Algorithm, Digest, is_lower_hex
from provenance.digest.canonical import MAX_SAFE_INTEGER, loads_strict
from provenance.digest.ignore import IgnoreRules
from provenance.digest.paths import (
    check_link_target,
    check_relative_path,
    display,
    resolve_link,
)
from provenance.errors import FormatError, InputError, UnsafePathError

MEDIA_TYPE = "application/vnd.ml-provenance.manifest.v1+json"

_string: Callable[[str], str] = json.encoder.encode_basestring
_HEX = re.compile("[0-9a-f]*")
# Paths of printable ASCII only, none needing a closer look, separated by NUL (see paths.py).
_SAFE_COMPONENT = r"(?!\.\.?(?:[/\x00]|$))[ -.0-\[\]-~]+"
_SAFE_PATH = rf"{_SAFE_COMPONENT}(?:/{_SAFE_COMPONENT})*"
_SAFE_PATH_LIST = re.compile(rf"{_SAFE_PATH}(?:\x00{_SAFE_PATH})*")


class FileEntry(NamedTuple):
    """A regular file: its size in bytes and the digest of its bytes."""

    path: str
    size: int
    digest: str


class DirectoryEntry(NamedTuple):
    """An empty directory (one that holds no entry of the manifest)."""

    path: str


class SymlinkEntry(NamedTuple):
    """A symbolic link, recorded with its target and never followed."""

    path: str
    target: str


# Entries are named tuples (cheap to build by the hundred thousand); their field counts
# differ, so entries of different kinds never compare equal.
Entry = FileEntry | DirectoryEntry | SymlinkEntry


def sort_key(entry: Entry) -> str:
    """Manifest order: the UTF-8 bytes of the path.

    UTF-8 preserves code-point order, so comparing the ``str`` paths gives the byte order
    without encoding each one (paths are valid Unicode without surrogates by construction).
    """
    return entry.path


def _entry_json(entry: Entry) -> dict[str, Any]:
    if isinstance(entry, FileEntry):
        return {"digest": entry.digest, "path": entry.path, "size": entry.size, "type": "file"}
    if isinstance(entry, DirectoryEntry):
        return {"path": entry.path, "type": "directory"}
    return {"path": entry.path, "target": entry.target, "type": "symlink"}


def _entry_canonical(entry: Entry) -> str:
    """One entry in RFC 8785 form (members in sorted order, minimal string escapes)."""
    if isinstance(entry, FileEntry):
        return (
            f'{{"digest":"{entry.digest}","path":{_string(entry.path)},'
            f'"size":{entry.size},"type":"file"}}'
        )
    if isinstance(entry, DirectoryEntry):
        return f'{{"path":{_string(entry.path)},"type":"directory"}}'
    return f'{{"path":{_string(entry.path)},"target":{_string(entry.target)},"type":"symlink"}}'


@dataclass(frozen=True)
class ManifestDiff:
    """Paths added, removed and changed between an old and a new manifest, each sorted."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """True when the two manifests list the same entries."""
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Manifest:
    """The validated content listing of a directory; see the module docstring."""

    algorithm: Algorithm
    entries: tuple[Entry, ...]
    ignore: IgnoreRules = field(default_factory=IgnoreRules)

    def __post_init__(self) -> None:
        # Checks run over whole columns where they can (one regular-expression pass over all
        # paths, one over all digests), falling back to entry-by-entry checks to name the
        # culprit: a 1M-file manifest must validate in well under a second.
        entries = self.entries
        paths = [e.path for e in entries]
        for previous, current in itertools.pairwise(paths):
            if previous >= current:
                if previous == current:
                    raise UnsafePathError(f"manifest lists {display(current)} twice")
                raise FormatError(
                    f"manifest entries are not sorted by path bytes at {display(current)}"
                )
        joined = "\0".join(paths)  # NUL separates: a NUL inside a path fails the count
        if paths and (
            joined.count("\0") != len(paths) - 1 or not _SAFE_PATH_LIST.fullmatch(joined)
        ):
            for path in paths:
                check_relative_path(path)
        files = [e for e in entries if isinstance(e, FileEntry)]
        self._check_files(files)
        self._check_no_entry_below_leaf(paths)
        links = {e.path: e.target for e in entries if isinstance(e, SymlinkEntry)}
        if links:
            self._check_links(links)

    def _check_links(self, links: dict[str, str]) -> None:
        """Each link must resolve inside the root, through the other links, to content the
        manifest covers: a link into an ignored directory would lead a reader to bytes that
        no digest describes."""
        for link, target in links.items():
            if check_link_target(link, target) != target:
                raise FormatError(f"link target not in NFC form: {display(link)}")
            reached = resolve_link(link, links)
            prefix = ""
            for part in reached.split("/"):
                prefix = f"{prefix}/{part}" if prefix else part
                if self.ignore.is_ignored(prefix, is_dir=True) or (
                    prefix == reached and self.ignore.is_ignored(prefix, is_dir=False)
                ):
                    raise UnsafePathError(
                        f"symbolic link leads to ignored content, which no digest covers: "
                        f"{display(link)} -> {display(target)}"
                    )

    def _check_files(self, files: list[FileEntry]) -> None:
        length = self.algorithm.hex_length
        digests = [f.digest for f in files]
        sizes = [f.size for f in files]
        if not files or (
            {type(d) for d in digests} == {str}
            and {len(d) for d in digests} == {length}
            and _HEX.fullmatch("".join(digests))
            and {type(s) for s in sizes} == {int}
            and min(sizes) >= 0
            and max(sizes) <= MAX_SAFE_INTEGER
        ):
            return
        for entry in files:
            if type(entry.size) is not int or not 0 <= entry.size <= MAX_SAFE_INTEGER:
                raise FormatError(f"invalid size for {display(entry.path)}: {entry.size!r}")
            if not isinstance(entry.digest, str) or not is_lower_hex(entry.digest, length):
                raise FormatError(
                    f"invalid {self.algorithm.value} digest for {display(entry.path)}"
                )

    @staticmethod
    def _check_no_entry_below_leaf(paths: list[str]) -> None:
        """A file, link or empty directory cannot also be a parent of another entry."""
        directories: set[str] = set()
        pending = {p.rpartition("/")[0] for p in paths} - {""}
        while pending:
            directory = pending.pop()
            if directory not in directories:
                directories.add(directory)
                parent = directory.rpartition("/")[0]
                if parent:
                    pending.add(parent)
        clash = directories.intersection(paths)
        if clash:
            leaf = min(clash)
            inside = next(p for p in paths if p.startswith(leaf + "/"))
            raise FormatError(
                f"manifest lists {display(inside)} inside {display(leaf)}, "
                "which is not a directory that holds entries"
            )

    @classmethod
    def from_entries(
        cls, algorithm: Algorithm, entries: Iterable[Entry], ignore: IgnoreRules | None = None
    ) -> Manifest:
        """Build a manifest from entries in any order; they are sorted here."""
        return cls(algorithm, tuple(sorted(entries, key=sort_key)), ignore or IgnoreRules())

    # -- encoding ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON object (before canonical encoding)."""
        return {
            "algorithm": self.algorithm.value,
            "entries": [_entry_json(e) for e in self.entries],
            "ignore": list(self.ignore.patterns),
            "mediaType": MEDIA_TYPE,
        }

    @functools.cached_property
    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes the root digest is computed over.

        Written out directly rather than through a generic encoder: the document's shape is
        fixed and its values were validated on construction (Unicode strings, small
        non-negative integers), so each member can be emitted in canonical order with the
        standard library's string escaping, which is RFC 8785's. Tests hold the result equal
        to an independent RFC 8785 implementation.
        """
        text = (
            f'{{"algorithm":"{self.algorithm.value}",'
            f'"entries":[{",".join(map(_entry_canonical, self.entries))}],'
            f'"ignore":[{",".join(map(_string, self.ignore.patterns))}],'
            f'"mediaType":"{MEDIA_TYPE}"}}'
        )
        return text.encode("utf-8")

    @functools.cached_property
    def root_digest(self) -> Digest:
        """Digest of :attr:`canonical_bytes`, with the manifest's own algorithm."""
        return Digest.of_bytes(self.algorithm, self.canonical_bytes)

    @property
    def file_count(self) -> int:
        """Number of regular files listed."""
        return sum(1 for e in self.entries if isinstance(e, FileEntry))

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of the regular files listed."""
        return sum(e.size for e in self.entries if isinstance(e, FileEntry))

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "manifest") -> Manifest:
        """Parse and validate a manifest document (canonical or not)."""
        document = loads_strict(data, what=source)
        try:
            return cls._from_document(document)
        except InputError as e:
            raise type(e)(f"{source}: {e.message}", hint=e.hint) from e

    @classmethod
    def _from_document(cls, document: Any) -> Manifest:
        if not isinstance(document, dict):
            raise FormatError("a manifest is a JSON object")
        _exact_keys(document, {"algorithm", "entries", "ignore", "mediaType"}, "manifest")
        if document["mediaType"] != MEDIA_TYPE:
            raise FormatError(f"unknown mediaType {document['mediaType']!r}")
        algorithm_name = document["algorithm"]
        if not isinstance(algorithm_name, str):
            raise FormatError("algorithm must be a string")
        algorithm = Algorithm.parse(algorithm_name)
        ignore = document["ignore"]
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise FormatError("ignore must be a list of strings")
        raw_entries = document["entries"]
        if not isinstance(raw_entries, list):
            raise FormatError("entries must be a list")
        entries = tuple(_parse_entry(item) for item in raw_entries)
        return cls(algorithm, entries, IgnoreRules(tuple(ignore)))

    # -- comparison -------------------------------------------------------------------------

    def diff(self, other: Manifest) -> ManifestDiff:
        """What changed from ``self`` (old) to ``other`` (new), by path.

        Digests of different algorithms cannot be compared, so that is an error rather than
        a report that every file changed.
        """
        if self.algorithm is not other.algorithm:
            raise InputError(
                f"cannot compare a {self.algorithm.value} manifest with a "
                f"{other.algorithm.value} manifest",
                hint="build both with the same --algorithm",
            )
        old: Mapping[str, Entry] = {e.path: e for e in self.entries}
        new: Mapping[str, Entry] = {e.path: e for e in other.entries}
        added = tuple(p for p in new if p not in old)
        removed = tuple(p for p in old if p not in new)
        changed = tuple(
            p for p, e in new.items() if p in old and (type(old[p]) is not type(e) or old[p] != e)
        )
        return ManifestDiff(added, removed, changed)


def _exact_keys(obj: dict[str, Any], required: set[str], what: str) -> None:
    keys = set(obj)
    if missing := sorted(required - keys):
        raise FormatError(f"{what} is missing {', '.join(missing)}")
    if unknown := sorted(keys - required):
        raise FormatError(f"{what} has unknown field(s) {', '.join(unknown)}")


def _parse_entry(item: Any) -> Entry:
    if not isinstance(item, dict):
        raise FormatError("each manifest entry is a JSON object")
    kind = item.get("type")
    path = item.get("path")
    if not isinstance(path, str):
        raise FormatError("manifest entry without a string path")
    if kind == "file":
        _exact_keys(item, {"digest", "path", "size", "type"}, f"entry {display(path)}")
        size, digest = item["size"], item["digest"]
        if not isinstance(size, int) or isinstance(size, bool):
            raise FormatError(f"size of {display(path)} is not an integer")
        if not isinstance(digest, str):
            raise FormatError(f"digest of {display(path)} is not a string")
        return FileEntry(path, size, digest)
    if kind == "directory":
        _exact_keys(item, {"path", "type"}, f"entry {display(path)}")
        return DirectoryEntry(path)
    if kind == "symlink":
        _exact_keys(item, {"path", "target", "type"}, f"entry {display(path)}")
        target = item["target"]
        if not isinstance(target, str):
            raise FormatError(f"target of {display(path)} is not a string")
        return SymlinkEntry(path, target)
    raise FormatError(f"entry {display(path)} has unknown type {kind!r}")
