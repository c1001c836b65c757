"""Parallel hashing gives exactly the single-threaded answer, for both algorithms."""

from __future__ import annotations

import hashlib
from pathlib import Path

import blake3
import pytest

from provenance.digest import Algorithm, build_manifest, digest_path
from provenance.digest.hashing import BATCH_BYTES, BATCH_FILES, _batches
from provenance.digest.walk import PlannedFile, StatKey
from tests.conftest import make_tree


def _planned(sizes: list[int]) -> list[PlannedFile]:
    return [PlannedFile(str(i), str(i), StatKey(0, i, s, 0, 0)) for i, s in enumerate(sizes)]


def test_batches_cover_every_file_once() -> None:
    files = _planned([1] * (BATCH_FILES * 2 + 3) + [BATCH_BYTES * 2] + [10] * 5)
    batches = _batches(files)
    covered = [i for b in batches for i in b]
    assert covered == list(range(len(files)))
    assert all(len(b) <= BATCH_FILES for b in batches)


def test_batches_of_nothing() -> None:
    assert _batches([]) == []


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_workers_do_not_change_the_result(tmp_path: Path, algorithm: Algorithm) -> None:
    tree = {f"d{i % 7}/f{i}": bytes([i % 256]) * (i * 37) for i in range(1200)}
    tree["big"] = b"\x01" * (BATCH_BYTES + 12345)
    root = make_tree(tmp_path / "d", tree)
    one = build_manifest(root, algorithm=algorithm, workers=1)
    many = build_manifest(root, algorithm=algorithm, workers=4)
    assert one == many
    reference = hashlib.sha256 if algorithm is Algorithm.SHA256 else blake3.blake3
    by_path = {e.path: e for e in many.entries}
    for rel in ("d3/f10", "big"):
        assert by_path[rel].digest == reference(tree[rel]).hexdigest()  # type: ignore[union-attr]


def test_large_file_with_multithreaded_blake3(tmp_path: Path) -> None:
    data = bytes(range(256)) * (BATCH_BYTES // 256 * 3)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    result = digest_path(path, algorithm=Algorithm.BLAKE3)
    assert result.digest.value == blake3.blake3(data).hexdigest()


class Recorder:
    def __init__(self) -> None:
        self.started: tuple[int, int] | None = None
        self.files = 0
        self.bytes = 0
        self.finished = False

    def start(self, total_files: int, total_bytes: int) -> None:
        self.started = (total_files, total_bytes)

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        self.bytes += nbytes

    def finish(self) -> None:
        self.finished = True


def test_progress_accounts_for_every_file_and_byte(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "d", {f"f{i}": b"x" * i for i in range(50)})
    recorder = Recorder()
    build_manifest(root, progress=recorder, workers=2)
    total = sum(range(50))
    assert recorder.started == (50, total)
    assert (recorder.files, recorder.bytes, recorder.finished) == (50, total, True)
