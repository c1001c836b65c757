"""Golden manifest vectors, each checked by a computation independent of the code under test.

The expected manifest bytes are written out literally here (RFC 8785: sorted keys, no spaces,
entries sorted by path bytes) from digests computed with ``hashlib`` directly; the expected root
digest is both hard-coded (so an accidental format change fails loudly) and recomputed with
``hashlib`` from the literal bytes.
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import blake3

from provenance.digest import Algorithm, Manifest, build_manifest, digest_path
from tests.conftest import make_tree

GOLDEN_SHA256_ROOT = "d4a414878bc3e1e451c041502aba8b6cf3e0dbe8c5afbf7ba5237e8c02930aad"

NFD_NAME = unicodedata.normalize("NFD", "caf\u00e9.txt")


def _golden_tree(root: Path) -> Path:
    return make_tree(
        root,
        {
            "a.txt": b"hello\n",
            "sub/b.bin": bytes(range(256)),
            "empty": None,
            NFD_NAME: b"",  # written with a decomposed name, recorded in NFC
            "with space/new\nline": b"x",
        },
    )


def _expected() -> bytes:
    def h(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    entries = [
        # sorted by UTF-8 bytes of the path: "a.txt" < "caf\xc3\xa9.txt" < "empty" < "sub/..."
        # < "with space/..."
        '{"digest":"%s","path":"a.txt","size":6,"type":"file"}' % h(b"hello\n"),
        '{"digest":"%s","path":"caf\u00e9.txt","size":0,"type":"file"}' % h(b""),
        '{"path":"empty","type":"directory"}',
        '{"digest":"%s","path":"sub/b.bin","size":256,"type":"file"}' % h(bytes(range(256))),
        '{"digest":"%s","path":"with space/new\\nline","size":1,"type":"file"}' % h(b"x"),
    ]
    text = (
        '{"algorithm":"sha256","entries":['
        + ",".join(entries)
        + '],"ignore":[".git/",".provenance/"],'
        + '"mediaType":"application/vnd.ml-provenance.manifest.v1+json"}'
    )
    return text.encode("utf-8")


def test_golden_sha256_manifest(tmp_path: Path) -> None:
    manifest = build_manifest(_golden_tree(tmp_path / "d"))
    expected = _expected()
    assert manifest.canonical_bytes == expected
    assert manifest.root_digest.value == hashlib.sha256(expected).hexdigest()
    assert manifest.root_digest.value == GOLDEN_SHA256_ROOT
    assert manifest.file_count == 4
    assert manifest.total_bytes == 6 + 0 + 256 + 1


def test_golden_manifest_parses_back_to_the_same_digest(tmp_path: Path) -> None:
    parsed = Manifest.from_bytes(_expected())
    assert str(parsed.root_digest) == f"sha256:{GOLDEN_SHA256_ROOT}"
    assert parsed == build_manifest(_golden_tree(tmp_path / "d"))


def test_blake3_manifest_uses_blake3_throughout(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {"x": b"abc", "y/z": b""})
    manifest = build_manifest(root, algorithm=Algorithm.BLAKE3)
    expected = (
        '{"algorithm":"blake3","entries":['
        '{"digest":"%s","path":"x","size":3,"type":"file"},'
        '{"digest":"%s","path":"y/z","size":0,"type":"file"}],'
        '"ignore":[".git/",".provenance/"],'
        '"mediaType":"application/vnd.ml-provenance.manifest.v1+json"}'
        % (blake3.blake3(b"abc").hexdigest(), blake3.blake3(b"").hexdigest())
    ).encode()
    assert manifest.canonical_bytes == expected
    assert manifest.root_digest.value == blake3.blake3(expected).hexdigest()


def test_file_digest_is_what_sha256sum_prints(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00" * 3_000_000)
    result = digest_path(path)
    assert result.digest.value == hashlib.sha256(b"\x00" * 3_000_000).hexdigest()
    assert (result.files, result.bytes, result.manifest) == (1, 3_000_000, None)


def test_empty_directory_has_a_stable_manifest(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    expected = (
        b'{"algorithm":"sha256","entries":[],"ignore":[".git/",".provenance/"],'
        b'"mediaType":"application/vnd.ml-provenance.manifest.v1+json"}'
    )
    assert build_manifest(root).canonical_bytes == expected
