"""Hashing gives exactly the single-process answer whichever process runs which task, and a
failure inside a worker surfaces as the same error, never as a skipped file."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance import _filehash
from provenance._filehash import StatKey
from provenance.digest import (
    Algorithm,
    DirectoryEntry,
    IgnoreRules,
    StatCache,
    SymlinkEntry,
    build_manifest,
    digest_path,
    hashing,
)
from provenance.digest.hashing import TreeHasher, plan
from provenance.digest.protocol import (
    READY,
    TASK_DONE,
    AnswerParser,
    FieldReader,
    encode_error,
    encode_results,
    encode_task,
)
from provenance.digest.tasks import FileResult, FilesTask, HashConfig, Result, Task, TreeTask
from provenance.digest.walk import PlannedFile
from provenance.errors import ChangedWhileReadingError, Error, UnsupportedFileError
from tests.conftest import make_tree


def _reference(algorithm: Algorithm, data: bytes) -> str:
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256(data).hexdigest()
    return blake3.blake3(data).hexdigest()


@pytest.fixture
def early_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start worker processes after a few files instead of thousands, to test that path."""
    monkeypatch.setattr(hashing, "PROCESS_MIN_FILES", 8)
    monkeypatch.setattr(hashing, "PROCESS_MIN_BYTES", 1 << 10)


@pytest.fixture
def ready_workers(early_workers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wait for workers to be ready when they start, so the first tasks surely go to them."""
    original = hashing.TreeHasher._start_workers

    def start_and_wait(self: hashing.TreeHasher) -> None:
        original(self)
        while not all(w.ready for w in self._workers):
            self._pump(timeout=5)

    monkeypatch.setattr(hashing.TreeHasher, "_start_workers", start_and_wait)


def _tree(root: Path) -> dict[str, bytes]:
    tree = {f"d{i % 7}/s{i % 3}/f{i}": bytes([i % 256]) * (i * 37) for i in range(300)}
    tree["top.txt"] = b"top"
    tree["big"] = b"\x01" * (_filehash.BUFFER_SIZE * 3 + 12345)
    tree["d1/big2"] = b"\x02" * (_filehash.BUFFER_SIZE + 1)
    make_tree(root, tree)
    (root / "d2" / "empty").mkdir()
    return tree


@pytest.mark.usefixtures("early_workers")
@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_every_process_layout_gives_the_same_manifest(tmp_path: Path, algorithm: Algorithm) -> None:
    tree = _tree(tmp_path / "d")
    one = build_manifest(tmp_path / "d", algorithm=algorithm, workers=1)
    for workers in (2, 3):
        assert build_manifest(tmp_path / "d", algorithm=algorithm, workers=workers) == one
    by_path = {e.path: e for e in one.entries}
    assert isinstance(by_path["d2/empty"], DirectoryEntry)
    for rel in ("d3/s1/f10", "d0/s0/f0", "big", "d1/big2", "top.txt"):
        assert by_path[rel].digest == _reference(algorithm, tree[rel])  # type: ignore[union-attr]


def test_plan_cuts_the_top_of_the_tree_into_tasks(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "link").symlink_to("top.txt")
    config = HashConfig(str(tmp_path / "d"), Algorithm.SHA256, IgnoreRules().patterns, True)
    tasks, found = plan(config, IgnoreRules(), processes=2)
    trees = sorted(t.path for t in tasks if isinstance(t, TreeTask))
    files = sorted(f.path for t in tasks if isinstance(t, FilesTask) for f in t.files)
    assert trees == sorted([f"d{i}/s{j}" for i in range(7) for j in range(3)] + ["d2/empty"])
    assert files == ["big", "d1/big2", "top.txt"]
    # Few files in a directory: one task each, so large ones are hashed side by side.
    assert all(len(t.files) == 1 for t in tasks if isinstance(t, FilesTask))
    assert found == [SymlinkEntry("link", "top.txt")]


def test_large_file_with_multithreaded_blake3(tmp_path: Path) -> None:
    data = bytes(range(256)) * (_filehash.MULTITHREAD_BYTES // 256 * 3)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    result = digest_path(path, algorithm=Algorithm.BLAKE3)
    assert result.digest.value == blake3.blake3(data).hexdigest()


def _files_tasks(root: Path, count: int, per_task: int) -> list[FilesTask]:
    make_tree(root, {f"f{i:04d}": str(i).encode() for i in range(count)})
    files = [PlannedFile(f"f{i:04d}", str(root / f"f{i:04d}"), None) for i in range(count)]
    return [FilesTask(tuple(files[i : i + per_task])) for i in range(0, count, per_task)]


def _config(root: Path) -> HashConfig:
    return HashConfig(str(root), Algorithm.SHA256, IgnoreRules().patterns)


@pytest.mark.usefixtures("ready_workers")
def test_missing_file_is_an_error_from_a_worker(tmp_path: Path) -> None:
    tasks = _files_tasks(tmp_path / "d", 100, 10)
    gone = PlannedFile("gone", str(tmp_path / "d" / "gone"), None)
    tasks[0] = FilesTask((*tasks[0].files, gone))  # the front: sent to the ready worker
    with pytest.raises(ChangedWhileReadingError, match="disappeared before it was read: gone"):
        TreeHasher(_config(tmp_path / "d"), workers=2).run(tasks)


@pytest.mark.usefixtures("ready_workers")
def test_fifo_is_refused_not_blocked_on(tmp_path: Path) -> None:
    tasks = _files_tasks(tmp_path / "d", 100, 10)
    os.mkfifo(tmp_path / "d" / "pipe")
    pipe = PlannedFile("pipe", str(tmp_path / "d" / "pipe"), None)
    tasks[0] = FilesTask((*tasks[0].files, pipe))
    with pytest.raises(UnsupportedFileError, match="pipe is no longer a regular file"):
        TreeHasher(_config(tmp_path / "d"), workers=2).run(tasks)


@pytest.mark.usefixtures("ready_workers")
def test_a_crashed_worker_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = _files_tasks(tmp_path / "d", 200, 10)
    original = hashing._Worker.send

    def send_then_die(self: hashing._Worker, task: Task) -> None:
        original(self, task)
        self.process.kill()  # dies holding a task

    monkeypatch.setattr(hashing._Worker, "send", send_then_die)
    with pytest.raises(Error, match="hashing worker failed"):
        TreeHasher(_config(tmp_path / "d"), workers=2).run(tasks)


@pytest.mark.usefixtures("early_workers")
def test_workers_answer_from_the_stat_cache(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    cache = StatCache(tmp_path / "cache", racy_window_ns=0)
    first = build_manifest(tmp_path / "d", cache=cache, workers=2)
    files = first.file_count
    assert (cache.hits, cache.misses) == (0, files)
    assert build_manifest(tmp_path / "d", cache=cache, workers=2) == first
    assert (cache.hits, cache.misses) == (files, files)


paths = st.text(st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]), min_size=1)
results_strategy = st.lists(
    st.one_of(
        st.builds(
            FileResult,
            st.text(
                st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]), min_size=1
            ),
            st.integers(0, 2**53),
            st.text("0123456789abcdef", min_size=64, max_size=64),
            st.none() | st.builds(StatKey, *[st.integers(0, 2**63)] * 5),
            st.booleans(),
        ),
        st.builds(DirectoryEntry, paths),
        st.builds(SymlinkEntry, paths, paths),
    ),
    max_size=20,
)


@given(results_strategy, st.integers(1, 50))
def test_answers_survive_any_split_of_the_stream(results: list[Result], step: int) -> None:
    data = encode_results(results) + b"e\0"
    parser = AnswerParser()
    parsed: list[object] = []
    for i in range(0, len(data), step):
        parsed.extend(parser.feed(data[i : i + step]))
    assert parsed == [*results, TASK_DONE]


def test_worker_error_is_raised_with_its_class() -> None:
    data = encode_error(UnsupportedFileError("x is a FIFO\nsecond line"))
    with pytest.raises(UnsupportedFileError, match=r"^x is a FIFO second line$"):
        AnswerParser().feed(data)


def test_unknown_answer_is_a_protocol_error() -> None:
    with pytest.raises(Error, match="out of protocol"):
        AnswerParser().feed(b"zzz\0")


def test_tasks_round_trip_through_the_field_reader(tmp_path: Path) -> None:
    tasks = [
        TreeTask(str(tmp_path / "caf\u00e9"), "caf\u00e9"),
        FilesTask((PlannedFile("a b", "/x/a b", None), PlannedFile("n\nl", "/x/n\nl", None))),
    ]
    reader = FieldReader(io.BufferedReader(io.BytesIO(b"".join(map(encode_task, tasks)))))  # type: ignore[arg-type]
    assert [reader.task(), reader.task(), reader.task()] == [*tasks, None]


def test_worker_process_end_to_end(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", {"a/x": b"abc", "a/e/.keep": b""})
    config = _config(tmp_path / "d")
    stdin = config.to_bytes() + b"\0" + encode_task(TreeTask(str(tmp_path / "d" / "a"), "a"))
    result = subprocess.run(
        [sys.executable, "-m", "provenance.digest.worker"],
        input=stdin,
        capture_output=True,
        check=True,
    )
    parsed = AnswerParser().feed(result.stdout)
    assert parsed[0] is READY
    assert sorted(parsed[1:-1], key=str) == sorted(
        [
            FileResult("a/e/.keep", 0, hashlib.sha256(b"").hexdigest(), None, False),
            FileResult("a/x", 3, hashlib.sha256(b"abc").hexdigest(), None, False),
        ],
        key=str,
    )
    assert parsed[-1] is TASK_DONE


def test_worker_reports_a_refusal_in_its_subtree(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", {"a/x": b"abc"})
    (tmp_path / "d" / "a" / "link").symlink_to("x")
    stdin = (
        _config(tmp_path / "d").to_bytes()
        + b"\0"
        + encode_task(TreeTask(str(tmp_path / "d" / "a"), "a"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "provenance.digest.worker"],
        input=stdin,
        capture_output=True,
        check=True,
    )
    with pytest.raises(UnsupportedFileError, match="symbolic link found: a/link"):
        AnswerParser().feed(result.stdout)


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
@pytest.mark.usefixtures("early_workers")
def test_progress_accounts_for_every_file_and_byte(tmp_path: Path, workers: int) -> None:
    tree = _tree(tmp_path / "d")
    recorder = Recorder()
    build_manifest(tmp_path / "d", progress=recorder, workers=workers)
    total = sum(len(v) for v in tree.values())
    assert (recorder.found_files, recorder.files, recorder.bytes) == (len(tree), len(tree), total)
    assert recorder.finished
