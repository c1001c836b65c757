"""A manifest file is untrusted input: everything malformed or unsafe is refused on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenance.digest import (
    MEDIA_TYPE,
    Algorithm,
    DirectoryEntry,
    FileEntry,
    Manifest,
    SymlinkEntry,
    build_manifest,
)
from provenance.errors import FormatError, InputError, UnsafePathError, UnsupportedAlgorithmError

HEX = "0" * 64


def document(items: list[Any], **overrides: Any) -> bytes:
    doc: dict[str, Any] = {
        "algorithm": "sha256",
        "entries": items,
        "ignore": [".git/", ".provenance/"],
        "mediaType": MEDIA_TYPE,
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


def file(path: str, size: int = 1, digest: str = HEX) -> dict[str, Any]:
    return {"type": "file", "path": path, "size": size, "digest": digest}


def test_round_trip_through_bytes(dataset: Path) -> None:
    manifest = build_manifest(dataset)
    again = Manifest.from_bytes(manifest.canonical_bytes)
    assert again == manifest
    assert again.root_digest == manifest.root_digest


def test_pretty_printed_manifest_has_the_same_root_digest(dataset: Path) -> None:
    manifest = build_manifest(dataset)
    pretty = json.dumps(json.loads(manifest.canonical_bytes), indent=4).encode()
    assert Manifest.from_bytes(pretty).root_digest == manifest.root_digest


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../b", "/etc/passwd", "a//b", "./a", "a/.", "a\\..\\b", "a\x00b", ""],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError):
        Manifest.from_bytes(document([file(path)]))


def test_non_nfc_path_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="NFC"):
        Manifest.from_bytes(document([file("cafe\u0301")]))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("b"), file("a")], "not sorted"),
        ([file("a"), file("a")], "twice"),
        ([file("a", size=-1)], "invalid size"),
        ([file("a", digest="0" * 63)], "invalid sha256 digest"),
        ([file("a", digest="A" * 64)], "invalid sha256 digest"),
        ([{**file("a"), "size": True}], "not an integer"),
        ([{**file("a"), "size": 1.0}], "floating-point"),
        ([{**file("a"), "mode": 493}], "unknown field"),
        ([{"type": "file", "path": "a", "size": 1}], "missing digest"),
        ([{"type": "fifo", "path": "a"}], "unknown type"),
        ([file("a"), file("a/b")], "not a directory"),
        ([{"type": "directory", "path": "d"}, file("d/x")], "not a directory"),
        ([{"type": "symlink", "path": "l", "target": "../x"}], "outside the root"),
        ([{"type": "symlink", "path": "l", "target": "/etc"}], "outside the root"),
        (["a"], "JSON object"),
    ],
)
def test_malformed_entries_are_refused(entries: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Manifest.from_bytes(document(entries))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"algorithm": "md5"}, UnsupportedAlgorithmError, "not collision-resistant"),
        ({"algorithm": "sha512"}, UnsupportedAlgorithmError, "unknown"),
        ({"mediaType": "application/json"}, FormatError, "mediaType"),
        ({"ignore": ["*.tmp"]}, FormatError, "built-in"),
        ({"extra": 1}, FormatError, "unknown field"),
        ({"entries": {}}, FormatError, "must be a list"),
    ],
)
def test_malformed_documents_are_refused(
    overrides: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Manifest.from_bytes(document([], **overrides))


def test_duplicate_keys_are_refused() -> None:
    data = document([file("a")]).replace(b'"size": 1', b'"size": 1, "size": 2')
    with pytest.raises(FormatError, match="duplicate"):
        Manifest.from_bytes(data, source="m.json")


def test_error_names_the_source() -> None:
    with pytest.raises(FormatError, match=r"^m\.json: "):
        Manifest.from_bytes(b"[]", source="m.json")


def test_diff_reports_added_removed_and_changed() -> None:
    old = Manifest.from_entries(
        Algorithm.SHA256,
        [FileEntry("same", 1, HEX), FileEntry("gone", 1, HEX), FileEntry("edit", 1, HEX)],
    )
    new = Manifest.from_entries(
        Algorithm.SHA256,
        [
            FileEntry("same", 1, HEX),
            FileEntry("edit", 1, "1" * 64),
            FileEntry("new", 1, HEX),
            DirectoryEntry("empty"),
            SymlinkEntry("link", "same"),
        ],
    )
    changes = old.diff(new)
    assert changes.added == ("empty", "link", "new")
    assert changes.removed == ("gone",)
    assert changes.changed == ("edit",)
    assert not changes.identical
    assert old.diff(old).identical


def test_a_file_replaced_by_a_link_is_a_change() -> None:
    old = Manifest.from_entries(Algorithm.SHA256, [FileEntry("x", 1, HEX), FileEntry("y", 1, HEX)])
    new = Manifest.from_entries(Algorithm.SHA256, [SymlinkEntry("x", "y"), FileEntry("y", 1, HEX)])
    assert old.diff(new).changed == ("x",)


def test_diff_of_different_algorithms_is_an_error() -> None:
    a = Manifest.from_entries(Algorithm.SHA256, [])
    b = Manifest.from_entries(Algorithm.BLAKE3, [])
    with pytest.raises(InputError, match="cannot compare"):
        a.diff(b)


def _link(path: str, target: str) -> dict[str, Any]:
    return {"type": "symlink", "path": path, "target": target}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        # Textually inside ("a/l/../../x" is "x"), but a/l is itself a link one level up.
        (
            [_link("a/l", "../b"), {"type": "directory", "path": "b"}, _link("m", "a/l/../../x")],
            "outside the root",
        ),
        ([_link("a", "b"), _link("b", "a")], "loops"),
        ([_link("l", ".git/config")], "ignored content"),
        ([_link("l", "x\ud800")], "not valid Unicode"),
    ],
)
def test_unsafe_links_in_a_loaded_manifest_are_refused(items: list[Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Manifest.from_bytes(document(items))


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        ([".git/", ".provenance/", "[z-a]"], "invalid pattern"),
        ([".git/", ".provenance/", "x\ud800"], "not valid Unicode"),
    ],
)
def test_bad_ignore_patterns_are_refused(ignore: list[str], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Manifest.from_bytes(document([], ignore=ignore))


def test_integer_beyond_the_parser_limit_is_a_format_error() -> None:
    data = document([file("a")]).replace(b'"size": 1', b'"size": ' + b"9" * 5000)
    with pytest.raises(FormatError):
        Manifest.from_bytes(data)
