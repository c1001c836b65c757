"""Which paths under a root are not part of its manifest.

Two directories are never part of a dataset: ``.git/`` (version-control state) and
``.provenance/`` (this tool's own state). A root may add gitignore-syntax patterns in a
``.provenanceignore`` file at its top. The full list used is written into the manifest, so a
verifier that re-hashes the directory later applies exactly the same rules instead of trusting
whatever ``.provenanceignore`` says by then.

Ignored files are outside the dataset: a loader that reads them reads unverified data. Loaders
should enumerate files from the verified manifest, not from the directory.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provenance.errors import FormatError, UnreadableError, UnsupportedFileError

if TYPE_CHECKING:
    import pathspec

IGNORE_FILE = ".provenanceignore"
BUILTIN_PATTERNS: tuple[str, ...] = (".git/", ".provenance/")
MAX_IGNORE_FILE_BYTES = 1 << 20
_BUILTIN_DIRS = frozenset(p.rstrip("/") for p in BUILTIN_PATTERNS)


def _compile(patterns: tuple[str, ...], source: str) -> pathspec.GitIgnoreSpec:
    import pathspec  # only rules beyond the built-ins need the matcher

    for number, line in enumerate(patterns, start=1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except (ValueError, TypeError, re.error, pathspec.RecursionError) as e:
            raise FormatError(f"{source}: invalid pattern on line {number}: {line!r} ({e})") from e
    return pathspec.GitIgnoreSpec.from_lines(list(patterns))


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered list of gitignore patterns, the built-in ones first."""

    patterns: tuple[str, ...] = BUILTIN_PATTERNS
    _spec: pathspec.GitIgnoreSpec | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.patterns[: len(BUILTIN_PATTERNS)] != BUILTIN_PATTERNS:
            raise FormatError(
                "ignore list must begin with the built-in patterns " + ", ".join(BUILTIN_PATTERNS)
            )
        for line in self.patterns:
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as e:
                raise FormatError(f"ignore pattern is not valid Unicode: {line!a}") from e
            if not line.strip() or line.lstrip().startswith("#") or "\n" in line:
                raise FormatError(
                    f"ignore list holds a blank, comment or multi-line entry: {line!r}"
                )
        extra = len(self.patterns) > len(BUILTIN_PATTERNS)
        object.__setattr__(self, "_spec", _compile(self.patterns, "ignore list") if extra else None)

    @classmethod
    def from_lines(cls, lines: list[str], *, source: str = IGNORE_FILE) -> IgnoreRules:
        """Rules from the lines of an ignore file: blanks and comments dropped, order kept."""
        kept: list[str] = []
        for line in lines:
            stripped = line.rstrip("\r\n")
            if not stripped.strip() or stripped.lstrip().startswith("#"):
                continue
            kept.append(stripped)
        _compile(tuple(kept), source)
        return cls(BUILTIN_PATTERNS + tuple(kept))

    @classmethod
    def for_directory(cls, root: Path) -> IgnoreRules:
        """The rules for ``root``: the built-ins plus its ``.provenanceignore``, if it has one."""
        path = root / IGNORE_FILE
        try:
            info = path.lstat()
        except FileNotFoundError:
            return cls()
        except OSError as e:
            raise UnreadableError(f"cannot read {path}: {e.strerror}") from e
        if not stat.S_ISREG(info.st_mode):
            raise UnsupportedFileError(f"{path} is not a regular file")
        if info.st_size > MAX_IGNORE_FILE_BYTES:
            raise FormatError(f"{path} is larger than {MAX_IGNORE_FILE_BYTES} bytes")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                data = handle.read(MAX_IGNORE_FILE_BYTES + 1)
        except OSError as e:
            raise UnreadableError(f"cannot read {path}: {e.strerror}") from e
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"{path} is not valid UTF-8") from e
        return cls.from_lines(text.split("\n"), source=str(path))

    @property
    def builtin_only(self) -> bool:
        """True when no pattern beyond the built-ins applies (the walk's fast path)."""
        return len(self.patterns) == len(BUILTIN_PATTERNS)

    def is_ignored(self, path: str, *, is_dir: bool) -> bool:
        """Whether the root-relative POSIX ``path`` is excluded from the manifest."""
        if self._spec is None:  # the built-ins: a directory named .git or .provenance
            return is_dir and path.rpartition("/")[2] in _BUILTIN_DIRS
        return self._spec.match_file(path + "/" if is_dir else path)


def find_ignored(root: Path, rules: IgnoreRules, *, limit: int = 20) -> list[str]:
    """Up to ``limit`` root-relative paths under ``root`` that ``rules`` leave out of its
    manifest (an ignored directory counts once, not its contents).

    A digest covers none of these bytes, yet a program that walks the directory -- a training
    loader, ``os.walk``, an image-folder dataset -- reads them as readily as the rest: callers
    that hand the directory to such a program ask this first. The ignore file itself is not
    listed; symbolic links are not followed.
    """
    found: list[str] = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        for name in sorted(dirs):
            if rules.is_ignored(prefix + name, is_dir=True):
                found.append(prefix + name + "/")
        dirs[:] = sorted(d for d in dirs if not rules.is_ignored(prefix + d, is_dir=True))
        found += [
            prefix + name
            for name in sorted(files)
            if not (prefix == "" and name == IGNORE_FILE)
            and rules.is_ignored(prefix + name, is_dir=False)
        ]
        if len(found) >= limit:
            return found[:limit]
    return found
