"""Rules for the relative paths a manifest may contain.

A manifest is read back by verifiers on other machines and, later, used to open files under a
dataset root. Every path in it must therefore name a place *inside* that root: relative, no
``.`` or ``..`` components, no empty components, no backslash, no NUL, valid Unicode in NFC form
(so the same name typed on macOS and on Linux is the same entry). Paths are POSIX paths: names
that only Windows treats specially (drive prefixes such as ``C:``, reserved device names) are
valid file names here, so a tool that materialises a manifest on Windows must refuse them
itself. These checks run both when a manifest is built and when one is loaded from a file,
because a loaded manifest is untrusted input.
"""

from __future__ import annotations

import collections
import posixpath
import re
import unicodedata
from collections.abc import Mapping

from provenance._filehash import display
from provenance.errors import UnsafePathError

# Printable ASCII without backslash, in components that are neither empty, "." nor "..".
_SAFE_ASCII = re.compile(r"(?!\.\.?(?:/|$))[ -.0-\[\]-~]+(?:/(?!\.\.?(?:/|$))[ -.0-\[\]-~]+)*")


MAX_LINK_HOPS = 40  # as Linux's limit on links followed in one lookup

__all__ = [
    "check_link_target",
    "check_relative_path",
    "check_text",
    "display",
    "name_from_os",
    "resolve_link",
]


def check_text(text: str, what: str) -> str:
    """Return ``text`` if it is valid Unicode (encodable as UTF-8), else refuse it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UnsafePathError(f"{what} is not valid Unicode: {text!a}") from e
    return text


def name_from_os(name: str, parent: str) -> str:
    """Turn a file name read from the OS into its manifest form (NFC), refusing non-UTF-8.

    ``parent`` is the manifest path of the containing directory, for the error message.
    """
    if name.isascii():  # ASCII is valid UTF-8 and already NFC: the common case, made cheap
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raw = name.encode("utf-8", "surrogateescape")
        where = posixpath.join(parent, raw.decode("utf-8", "backslashreplace"))
        raise UnsafePathError(
            f"file name is not valid UTF-8: {display(where)}",
            hint="rename the file; manifests record names as UTF-8 text",
        ) from e
    return unicodedata.normalize("NFC", name)


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a safe manifest path, else raise :class:`UnsafePathError`."""
    if not path:
        raise UnsafePathError("empty path in manifest")
    if _SAFE_ASCII.fullmatch(path):  # the common case: no character needs a closer look
        return path
    shown = display(path)
    if "\x00" in path:
        raise UnsafePathError(f"path contains a NUL character: {shown}")
    if path.startswith("/"):
        raise UnsafePathError(f"absolute path is not allowed: {shown}")
    if "\\" in path:
        raise UnsafePathError(
            f"path contains a backslash, a separator on Windows: {shown}",
            hint="rename the file",
        )
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(
                f"path escapes or is not normalised ({part!r} component): {shown}"
            )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UnsafePathError(f"path is not valid Unicode: {shown}") from e
    if unicodedata.normalize("NFC", path) != path:
        raise UnsafePathError(f"path is not in Unicode NFC form: {shown}")
    return path


def check_link_target(link: str, target: str) -> str:
    """Return ``target`` if a symlink at ``link`` pointing to it stays inside the root.

    Both are manifest (POSIX, root-relative) paths; the target is resolved lexically from the
    link's directory, which is how the kernel resolves it when no component is itself a link.
    """
    shown = f"{display(link)} -> {display(target)}"
    if not target:
        raise UnsafePathError(f"symbolic link has an empty target: {shown}")
    if target.startswith("/"):
        raise UnsafePathError(f"symbolic link points outside the root (absolute): {shown}")
    if "\x00" in target or "\\" in target:
        raise UnsafePathError(f"symbolic link target is not portable: {shown}")
    check_text(target, f"symbolic link target of {display(link)}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafePathError(f"symbolic link points outside the root: {shown}")
    if resolved == ".":
        raise UnsafePathError(f"symbolic link points at the root itself: {shown}")
    return unicodedata.normalize("NFC", target)


def resolve_link(link: str, links: Mapping[str, str]) -> str:
    """Where the link at ``link`` leads, resolved through every link in ``links``.

    ``links`` maps the manifest path of each link to its target. Resolution follows the
    kernel's: component by component from the link's directory, a component that is itself a
    link replaced by its target. A purely textual check cannot see that ``a/l/../../x`` leaves
    the root when ``a/l`` is a link to ``../b``; this can. Returns the root-relative path
    reached (which need not exist); refuses a path that leaves the root or loops.
    """
    directory = posixpath.dirname(link)
    pending = collections.deque(
        (directory.split("/") if directory else []) + links[link].split("/")
    )
    parts: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePathError(
                    f"symbolic link resolves outside the root: {display(link)} -> "
                    f"{display(links[link])}"
                )
            parts.pop()
            continue
        parts.append(part)
        target = links.get("/".join(parts))
        if target is not None:
            hops += 1
            if hops > MAX_LINK_HOPS or target.startswith("/"):
                raise UnsafePathError(f"symbolic link loops or leaves the root: {display(link)}")
            parts.pop()
            pending.extendleft(reversed(target.split("/")))
    if not parts:
        raise UnsafePathError(f"symbolic link resolves to the root itself: {display(link)}")
    return "/".join(parts)
