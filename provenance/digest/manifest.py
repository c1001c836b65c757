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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provenance.digest.algorithms import Algorithm, Digest, is_lower_hex
from provenance.digest.canonical import MAX_SAFE_INTEGER, canonical_json, loads_strict
from provenance.digest.ignore import IgnoreRules
from provenance.digest.paths import check_link_target, check_relative_path, display
from provenance.errors import FormatError, InputError, UnsafePathError

MEDIA_TYPE = "application/vnd.ml-provenance.manifest.v1+json"


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file: its size in bytes and the digest of its bytes."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """An empty directory (one that holds no entry of the manifest)."""

    path: str


@dataclass(frozen=True, slots=True)
class SymlinkEntry:
    """A symbolic link, recorded with its target and never followed."""

    path: str
    target: str


Entry = FileEntry | DirectoryEntry | SymlinkEntry


def sort_key(entry: Entry) -> bytes:
    """Manifest order: the UTF-8 bytes of the path."""
    return entry.path.encode("utf-8")


def _entry_json(entry: Entry) -> dict[str, Any]:
    if isinstance(entry, FileEntry):
        return {"digest": entry.digest, "path": entry.path, "size": entry.size, "type": "file"}
    if isinstance(entry, DirectoryEntry):
        return {"path": entry.path, "type": "directory"}
    return {"path": entry.path, "target": entry.target, "type": "symlink"}


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
        previous: bytes | None = None
        length = self.algorithm.hex_length
        for entry in self.entries:
            check_relative_path(entry.path)
            key = sort_key(entry)
            if previous is not None and key <= previous:
                if key == previous:
                    raise UnsafePathError(f"manifest lists {display(entry.path)} twice")
                raise FormatError(
                    f"manifest entries are not sorted by path bytes at {display(entry.path)}"
                )
            previous = key
            if isinstance(entry, FileEntry):
                if not 0 <= entry.size <= MAX_SAFE_INTEGER:
                    raise FormatError(f"invalid size for {display(entry.path)}: {entry.size}")
                if not is_lower_hex(entry.digest, length):
                    raise FormatError(
                        f"invalid {self.algorithm.value} digest for {display(entry.path)}"
                    )
            elif (
                isinstance(entry, SymlinkEntry)
                and check_link_target(entry.path, entry.target) != entry.target
            ):
                raise FormatError(f"link target not in NFC form: {display(entry.path)}")
        self._check_no_entry_below_leaf()

    def _check_no_entry_below_leaf(self) -> None:
        """A file, link or empty directory cannot also be a parent of another entry."""
        leaves = {e.path for e in self.entries}
        for entry in self.entries:
            parent, sep, _ = entry.path.rpartition("/")
            while sep:
                if parent in leaves:
                    raise FormatError(
                        f"manifest lists {display(entry.path)} inside {display(parent)}, "
                        "which is not a directory that holds entries"
                    )
                parent, sep, _ = parent.rpartition("/")

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
        """The RFC 8785 bytes the root digest is computed over."""
        return canonical_json(self.to_json())

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
        changed = tuple(p for p, e in new.items() if p in old and old[p] != e)
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
