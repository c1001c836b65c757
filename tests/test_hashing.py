"""Hashing gives exactly the single-threaded answer whichever path runs: in-process, threads
for large files, or worker processes fed over pipes, and failures inside a worker surface as
the same errors, never as a skipped file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from provenance import _filehash
from provenance.digest import Algorithm, build_manifest, digest_path, hashing
from provenance.digest.hashing import HashScheduler
from provenance.digest.walk import PlannedFile
from provenance.errors import ChangedWhileReadingError, Error, UnsupportedFileError
from tests.conftest import make_tree


def _reference(algorithm: Algorithm, data: bytes) -> str:
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256(data).hexdigest()
    return blake3.blake3(data).hexdigest()


@pytest.fixture
def few_files_for_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start worker processes after 64 files instead of thousands, to test that path quickly."""
    monkeypatch.setattr(hashing, "PROCESS_MIN_FILES", 64)
    monkeypatch.setattr(hashing, "CHUNK_FILES", 16)


def _tree(root: Path) -> dict[str, bytes]:
    tree = {f"d{i % 7}/f{i}": bytes([i % 256]) * (i * 37) for i in range(300)}
    tree["big"] = b"\x01" * (_filehash.BUFFER_SIZE * 3 + 12345)
    tree["big2"] = b"\x02" * (_filehash.BUFFER_SIZE + 1)
    make_tree(root, tree)
    return tree


@pytest.mark.usefixtures("few_files_for_processes")
@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_every_hashing_path_gives_the_same_manifest(tmp_path: Path, algorithm: Algorithm) -> None:
    tree = _tree(tmp_path / "d")
    in_process = build_manifest(tmp_path / "d", algorithm=algorithm, workers=1)
    processes = build_manifest(tmp_path / "d", algorithm=algorithm, workers=2)
    assert in_process == processes
    by_path = {e.path: e for e in processes.entries}
    for rel in ("d3/f10", "d0/f0", "big", "big2"):
        assert by_path[rel].digest == _reference(algorithm, tree[rel])  # type: ignore[union-attr]


def test_small_tree_with_large_files_uses_threads(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "d")
    manifest = build_manifest(tmp_path / "d", workers=4)
    by_path = {e.path: e for e in manifest.entries}
    assert by_path["big"].digest == hashlib.sha256(tree["big"]).hexdigest()  # type: ignore[union-attr]


def test_large_file_with_multithreaded_blake3(tmp_path: Path) -> None:
    data = bytes(range(256)) * (_filehash.MULTITHREAD_BYTES // 256 * 3)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    result = digest_path(path, algorithm=Algorithm.BLAKE3)
    assert result.digest.value == blake3.blake3(data).hexdigest()


def _planned(root: Path, count: int) -> list[PlannedFile]:
    make_tree(root, {f"f{i:04d}": str(i).encode() for i in range(count)})
    return [PlannedFile(f"f{i:04d}", str(root / f"f{i:04d}"), None) for i in range(count)]


@pytest.mark.usefixtures("few_files_for_processes")
def test_missing_file_in_a_worker_is_an_error(tmp_path: Path) -> None:
    files = _planned(tmp_path / "d", 100)
    files.insert(80, PlannedFile("gone", str(tmp_path / "d" / "gone"), None))
    with (
        pytest.raises(ChangedWhileReadingError, match="disappeared before it was read: gone"),
        HashScheduler(Algorithm.SHA256, workers=2) as scheduler,
    ):
        for planned in files:
            scheduler.add(planned)
        scheduler.finish()


@pytest.mark.usefixtures("few_files_for_processes")
def test_fifo_in_a_worker_is_refused_not_blocked_on(tmp_path: Path) -> None:
    files = _planned(tmp_path / "d", 100)
    os.mkfifo(tmp_path / "d" / "pipe")
    files.append(PlannedFile("pipe", str(tmp_path / "d" / "pipe"), None))
    with (
        pytest.raises(UnsupportedFileError, match="pipe is no longer a regular file"),
        HashScheduler(Algorithm.SHA256, workers=2) as scheduler,
    ):
        for planned in files:
            scheduler.add(planned)
        scheduler.finish()


@pytest.mark.usefixtures("few_files_for_processes")
def test_a_crashed_worker_is_an_error(tmp_path: Path) -> None:
    files = _planned(tmp_path / "d", 200)
    with (
        pytest.raises(Error, match="hashing worker failed"),
        HashScheduler(Algorithm.SHA256, workers=2) as scheduler,
    ):
        for planned in files:
            scheduler.add(planned)
        for worker in scheduler._workers:
            worker.process.kill()
        scheduler.finish()


def _worker(stdin: bytes, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "provenance._filehash", *args],
        input=stdin,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()


def test_worker_protocol(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").write_bytes(b"")
    records = f"{tmp_path / 'a'}\0a\0{tmp_path / 'b'}\0b\0".encode()
    lines = _worker(records, "sha256").splitlines()
    assert lines == [
        f"OK {hashlib.sha256(b'abc').hexdigest()} 3",
        f"OK {hashlib.sha256(b'').hexdigest()} 0",
    ]
    with_stat = _worker(records, "sha256", "stat").splitlines()[0].split()
    info = (tmp_path / "a").stat()
    assert with_stat[3:] == [
        str(info.st_dev),
        str(info.st_ino),
        str(info.st_mtime_ns),
        str(info.st_ctime_ns),
    ]


def test_worker_reports_the_first_error_and_stops(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    records = f"{tmp_path / 'missing'}\0missing\0{tmp_path / 'a'}\0a\0".encode()
    assert _worker(records, "sha256") == (
        "ERR\tChangedWhileReadingError\tfile disappeared before it was read: missing\n"
    )


def test_worker_refuses_a_truncated_record(tmp_path: Path) -> None:
    assert _worker(b"/etc/hostname\0hostname", "sha256").startswith("ERR\tInputError\t")


class Recorder:
    def __init__(self) -> None:
        self.found_files = 0
        self.files = 0
        self.bytes = 0
        self.finished = False

    def found(self, files: int, nbytes: int) -> None:
        self.found_files += files

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        self.bytes += nbytes

    def finish(self) -> None:
        self.finished = True


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.usefixtures("few_files_for_processes")
def test_progress_accounts_for_every_file_and_byte(tmp_path: Path, workers: int) -> None:
    tree = _tree(tmp_path / "d")
    recorder = Recorder()
    build_manifest(tmp_path / "d", progress=recorder, workers=workers)
    total = sum(len(v) for v in tree.values())
    assert (recorder.found_files, recorder.files, recorder.bytes) == (len(tree), len(tree), total)
    assert recorder.finished
