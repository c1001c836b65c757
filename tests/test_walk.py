"""What goes into a manifest, and every refusal of what cannot, tested on real trees."""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import unicodedata
from pathlib import Path

import pytest

from provenance.digest import (
    DirectoryEntry,
    FileEntry,
    IgnoreRules,
    SymlinkEntry,
    build_manifest,
    digest_path,
)
from provenance.errors import (
    ChangedWhileReadingError,
    Error,
    FormatError,
    UnreadableError,
    UnsafePathError,
    UnsupportedFileError,
)
from tests.conftest import make_tree


def paths(root: Path, **kwargs: object) -> list[str]:
    return [e.path for e in build_manifest(root, **kwargs).entries]  # type: ignore[arg-type]


def test_awkward_names_are_recorded_exactly(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "d",
        {
            "with space.txt": b"1",
            "new\nline.txt": b"2",
            "tab\there": b"3",
            "\u65e5\u672c/\u8a9e.txt": b"4",
            "emoji-\U0001f600": b"5",
            "empty-file": b"",
        },
    )
    manifest = build_manifest(root)
    by_path = {e.path: e for e in manifest.entries}
    assert set(by_path) == {
        "with space.txt",
        "new\nline.txt",
        "tab\there",
        "\u65e5\u672c/\u8a9e.txt",
        "emoji-\U0001f600",
        "empty-file",
    }
    empty = by_path["empty-file"]
    assert isinstance(empty, FileEntry) and empty.size == 0
    # Entries are sorted by the UTF-8 bytes of their path.
    keys = [e.path.encode() for e in manifest.entries]
    assert keys == sorted(keys)


def test_nfd_names_are_recorded_in_nfc(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "r\u00e9sum\u00e9")
    root = make_tree(tmp_path / "d", {f"{nfd}/{nfd}.txt": b"x"})
    assert paths(root) == ["r\u00e9sum\u00e9/r\u00e9sum\u00e9.txt"]


def test_names_equal_after_nfc_are_refused(tmp_path: Path) -> None:
    nfc = "caf\u00e9"
    nfd = unicodedata.normalize("NFD", nfc)
    root = make_tree(tmp_path / "d", {nfc: b"one", nfd: b"two"})
    with pytest.raises(UnsafePathError, match="same after Unicode NFC") as caught:
        build_manifest(root)
    assert "caf\u00e9" in caught.value.message


def test_nfc_collision_between_an_empty_directory_and_a_file(tmp_path: Path) -> None:
    nfc = "caf\u00e9"
    root = make_tree(tmp_path / "d", {nfc: None, unicodedata.normalize("NFD", nfc): b"x"})
    with pytest.raises(UnsafePathError, match="NFC"):
        build_manifest(root)


def test_empty_directories_are_entries_and_non_empty_ones_are_implied(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a/b/c": None, "a/x.txt": b"", "z": None})
    manifest = build_manifest(root)
    assert manifest.entries == (
        DirectoryEntry("a/b/c"),
        FileEntry("a/x.txt", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        DirectoryEntry("z"),
    )


def test_deep_nesting_does_not_hit_recursion_limits(tmp_path: Path) -> None:
    depth = 1500  # beyond Python's default recursion limit; path stays under PATH_MAX
    current = tmp_path / "deep"
    current.mkdir()
    root = current
    for _ in range(depth):
        current = current / "d"
        os.mkdir(current)  # iteratively: Path.mkdir(parents=True) would recurse
    (current / "leaf.txt").write_bytes(b"deep")
    try:
        assert paths(root) == ["/".join(["d"] * depth) + "/leaf.txt"]
    finally:  # remove bottom-up: shutil.rmtree (pytest's clean-up) recurses per level
        (current / "leaf.txt").unlink()
        while current != root:
            current.rmdir()
            current = current.parent


def test_git_and_provenance_directories_are_ignored_everywhere(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "d",
        {
            "keep.txt": b"k",
            ".git/HEAD": b"ref",
            "sub/.git/config": b"c",
            ".provenance/ledger.db": b"l",
            ".gitignore": b"not ignored: a file, not the .git directory",
        },
    )
    # sub/ holds only ignored content, so it is recorded as an empty directory.
    assert paths(root) == [".gitignore", "keep.txt", "sub"]


def test_provenanceignore_is_applied_and_recorded(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "d",
        {
            ".provenanceignore": b"# caches\n*.tmp\n\nlogs/\n!keep.tmp\n",
            "a.tmp": b"",
            "keep.tmp": b"",
            "logs/run.log": b"",
            "data.csv": b"1",
        },
    )
    manifest = build_manifest(root)
    assert [e.path for e in manifest.entries] == [".provenanceignore", "data.csv", "keep.tmp"]
    assert manifest.ignore.patterns == (".git/", ".provenance/", "*.tmp", "logs/", "!keep.tmp")


def test_recorded_rules_are_reapplied_instead_of_the_current_ignore_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {".provenanceignore": b"*.bin\n", "x.bin": b"", "y": b""})
    first = build_manifest(root)
    # An attacker widens the ignore file to hide a file from a later check ...
    (root / ".provenanceignore").write_text("*.bin\ny\n")
    (root / "y").write_bytes(b"poisoned")
    # ... but a verifier re-hashing with the recorded rules still sees y change.
    again = build_manifest(root, ignore=first.ignore)
    assert "y" in again.diff(first).changed or "y" in first.diff(again).changed


def test_invalid_ignore_file_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {".provenanceignore": b"\xff\xfe"})
    with pytest.raises(FormatError, match="not valid UTF-8"):
        build_manifest(root)


def test_ignore_rules_must_start_with_the_builtins() -> None:
    with pytest.raises(FormatError, match="built-in"):
        IgnoreRules(("*.tmp",))


def test_symlinks_are_refused_by_default(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"real.txt": b"x"})
    (root / "link").symlink_to("real.txt")
    with pytest.raises(UnsupportedFileError, match="symbolic link found: link") as caught:
        build_manifest(root)
    assert "--allow-symlinks" in caught.value.diagnostics()


def test_allowed_symlinks_are_recorded_not_followed(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"real/x.txt": b"x"})
    (root / "link-to-file").symlink_to("real/x.txt")
    (root / "link-to-dir").symlink_to("real")
    (root / "real" / "dangling").symlink_to("missing")
    manifest = build_manifest(root, allow_symlinks=True)
    assert manifest.entries == (
        SymlinkEntry("link-to-dir", "real"),
        SymlinkEntry("link-to-file", "real/x.txt"),
        SymlinkEntry("real/dangling", "missing"),
        FileEntry("real/x.txt", 1, manifest.entries[3].digest),  # type: ignore[union-attr]
    )


@pytest.mark.parametrize(
    "target",
    ["../outside.txt", "sub/../../outside.txt", "/etc/passwd", ".."],
)
def test_symlinks_leaving_the_root_are_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    root = make_tree(tmp_path / "d", {"sub/x": b""})
    (root / "escape").symlink_to(target)
    with pytest.raises(UnsafePathError, match="outside the root"):
        build_manifest(root, allow_symlinks=True)


def test_symlink_escaping_through_another_link_is_refused(tmp_path: Path) -> None:
    # Lexically "a/b/hop/../.." is "a", inside the root; but hop is itself a link to a/, so
    # the kernel resolves it to the root's parent.
    root = make_tree(tmp_path / "d", {"a/b/x": b""})
    (root / "a" / "b" / "hop").symlink_to("..")
    (root / "escape").symlink_to("a/b/hop/../..")
    with pytest.raises(UnsafePathError, match="resolves outside the root"):
        build_manifest(root, allow_symlinks=True)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"a": b""})
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsupportedFileError, match="pipe is a FIFO"):
        build_manifest(root)


def test_socket_is_refused(tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="sock"))  # short path: AF_UNIX names are limited
    try:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(root / "s"))
        try:
            with pytest.raises(UnsupportedFileError, match="s is a socket"):
                build_manifest(root)
        finally:
            server.close()
    finally:
        (root / "s").unlink()
        root.rmdir()


def test_device_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {})
    try:
        os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(UnsupportedFileError, match="null is a character device"):
        build_manifest(root)


def test_non_utf8_name_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {})
    (Path(os.fsencode(root).decode()) / os.fsdecode(b"bad\xff.txt")).write_bytes(b"")
    with pytest.raises(UnsafePathError, match="not valid UTF-8"):
        build_manifest(root)


def _as_nobody(root: Path) -> str:
    """Build ``root``'s manifest in a forked child running as nobody; return its error."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            build_manifest(root)
        except Error as e:
            message = f"{type(e).__name__}: {e.message}"
        except BaseException as e:
            message = f"unexpected {type(e).__name__}: {e}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = pipe.read().decode()
    os.waitpid(pid, 0)
    return result


@pytest.fixture
def shared_dir() -> Path:
    """A directory another user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="provenance-perm-"))
    path.chmod(0o755)
    return path


def _unreadable_error(root: Path) -> str:
    if os.geteuid() == 0:
        return _as_nobody(root)
    try:
        build_manifest(root)
    except Error as e:
        return f"{type(e).__name__}: {e.message}"
    return "no error"


def test_unreadable_file_is_refused_by_name(shared_dir: Path) -> None:
    root = make_tree(shared_dir / "d", {"ok.txt": b"", "secret.txt": b"x"})
    for p in (root, shared_dir / "d"):
        p.chmod(0o755)
    (root / "ok.txt").chmod(0o644)
    (root / "secret.txt").chmod(0o000)
    assert _unreadable_error(root) == (
        f"{UnreadableError.__name__}: cannot open secret.txt: Permission denied"
    )


def test_unreadable_directory_is_refused_by_name(shared_dir: Path) -> None:
    root = make_tree(shared_dir / "d", {"locked/x": b""})
    root.chmod(0o755)
    (root / "locked").chmod(0o000)
    assert _unreadable_error(root) == (
        f"{UnreadableError.__name__}: cannot list directory locked: Permission denied"
    )


def test_file_changed_while_hashing_is_refused(tmp_path: Path) -> None:
    from provenance._filehash import PROGRESS_STEP

    root = make_tree(tmp_path / "d", {"big.bin": b"\x00" * (2 * PROGRESS_STEP + 10)})
    target = root / "big.bin"

    class Appender:
        """Appends to the file from the progress callback, i.e. in the middle of hashing."""

        def found(self, files: int, nbytes: int) -> None:
            pass

        def advance(self, files: int, nbytes: int) -> None:
            if files == 0:  # a report in the middle of the file
                with target.open("ab") as handle:
                    handle.write(b"poison")

        def finish(self) -> None:
            pass

    with pytest.raises(ChangedWhileReadingError, match="changed while it was being hashed"):
        digest_path(target, progress=Appender())


def test_root_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(Error, match="no such file or directory"):
        build_manifest(tmp_path / "missing")


def test_nfc_collision_with_an_ascii_name(tmp_path: Path) -> None:
    # KELVIN SIGN (U+212A) normalises to the ASCII letter K.
    root = make_tree(tmp_path / "d", {"K": b"1", "\u212a": b"2"})
    with pytest.raises(UnsafePathError, match="same after Unicode NFC"):
        build_manifest(root)


def test_nfc_collision_between_a_file_and_a_directory_with_files(tmp_path: Path) -> None:
    nfc = "caf\u00e9"
    root = make_tree(tmp_path / "d", {nfc: b"x", unicodedata.normalize("NFD", nfc) + "/y": b""})
    with pytest.raises(UnsafePathError, match="same after Unicode NFC"):
        build_manifest(root)


@pytest.mark.parametrize("target", [".git/config", ".provenance", "sub/.git", "logs/run.log"])
def test_links_into_ignored_content_are_refused(tmp_path: Path, target: str) -> None:
    root = make_tree(
        tmp_path / "d",
        {
            ".git/config": b"c",
            ".provenance/x": b"",
            "sub/.git/HEAD": b"",
            "sub/keep": b"",
            "logs/run.log": b"",
            ".provenanceignore": b"logs/\n",
        },
    )
    (root / "link").symlink_to(target)
    with pytest.raises(UnsafePathError, match="leads to ignored content"):
        build_manifest(root, allow_symlinks=True)


def test_link_loops_are_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"x": b""})
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with pytest.raises(UnsafePathError, match="loops"):
        build_manifest(root, allow_symlinks=True)
