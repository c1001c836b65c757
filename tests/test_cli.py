"""The CLI end to end through ``main()``: outputs, exit codes and one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from provenance import __version__
from provenance.cli import main
from provenance.digest import Manifest, build_manifest
from tests.conftest import make_tree


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("provenance: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"provenance {__version__}")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage:" in err


def test_digest_directory_text(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    code, out, _ = run(capsys, "digest", str(dataset))
    expected = build_manifest(dataset)
    assert code == 0
    assert out.startswith(f"{expected.root_digest}  {dataset}  (directory, 4 files, ")


def test_digest_file_json_matches_sha256sum(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"weights" * 1000)
    code, out, _ = run(capsys, "digest", "--format", "json", str(path))
    assert code == 0
    assert json.loads(out) == {
        "path": str(path),
        "kind": "file",
        "digest": "sha256:" + hashlib.sha256(b"weights" * 1000).hexdigest(),
        "algorithm": "sha256",
        "files": 1,
        "bytes": 7000,
    }


def test_digest_blake3(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    code, out, _ = run(capsys, "digest", "--algorithm", "blake3", "--format", "json", str(dataset))
    assert code == 0
    assert json.loads(out)["digest"].startswith("blake3:")


def test_unknown_algorithm_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], dataset: Path
) -> None:
    code, _, err = run(capsys, "digest", "--algorithm", "md5", str(dataset))
    assert code == 2
    assert "invalid choice: 'md5'" in err


def test_manifest_written_is_canonical_and_hashes_to_the_root(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "m.json"
    code, out, _ = run(capsys, "manifest", str(dataset), "-o", str(out_file))
    assert code == 0
    data = out_file.read_bytes()
    root = build_manifest(dataset).root_digest
    assert hashlib.sha256(data).hexdigest() == root.value
    assert out.startswith(str(root))
    # `manifest create` is the long form of the same command.
    code, _, _ = run(capsys, "manifest", "create", str(dataset), "-o", str(tmp_path / "m2.json"))
    assert (tmp_path / "m2.json").read_bytes() == data


def test_manifest_to_stdout(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    code = main(["manifest", str(dataset)])
    captured = capsys.readouterr()
    assert code == 0
    assert Manifest.from_bytes(captured.out.encode()) == build_manifest(dataset)
    assert "4 files" in captured.err


def test_diff_identical_exits_zero(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    run(capsys, "manifest", str(dataset), "-o", str(tmp_path / "m.json"))
    code, out, _ = run(capsys, "manifest", "diff", str(tmp_path / "m.json"), str(dataset))
    assert code == 0
    assert out.startswith("identical: sha256:")


def test_diff_lists_changes_and_exits_one(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    run(capsys, "manifest", str(dataset), "-o", str(tmp_path / "m.json"))
    (dataset / "train" / "0.csv").write_bytes(b"x,label\n1,1\n")
    (dataset / "test" / "0.csv").unlink()
    (dataset / "train" / "new\nline.csv").write_bytes(b"")
    code, out, _ = run(capsys, "manifest", "diff", str(tmp_path / "m.json"), str(dataset))
    assert code == 1
    assert out.splitlines() == [
        "+ test",  # test/ is now an empty directory
        "+ 'train/new\\nline.csv'",
        "- test/0.csv",
        "~ train/0.csv",
        "2 added, 1 removed, 1 changed",
    ]
    code, out, _ = run(
        capsys, "manifest", "diff", "--format", "json", str(tmp_path / "m.json"), str(dataset)
    )
    report = json.loads(out)
    assert code == 1
    assert report["identical"] is False
    assert report["changed"] == ["train/0.csv"]
    assert report["added"] == ["test", "train/new\nline.csv"]


def test_diff_two_directories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = make_tree(tmp_path / "old", {"a": b"1", "b": b"2"})
    new = make_tree(tmp_path / "new", {"a": b"1", "c": b"3"})
    code, out, _ = run(capsys, "manifest", "diff", str(old), str(new))
    assert code == 1
    assert out.splitlines()[:2] == ["+ c", "- b"]


def test_diff_directory_uses_the_manifests_recorded_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = make_tree(tmp_path / "d", {".provenanceignore": b"*.log\n", "x.log": b"", "y": b"1"})
    run(capsys, "manifest", str(root), "-o", str(tmp_path / "m.json"))
    (root / ".provenanceignore").write_bytes(b"*.log\ny\n")  # try to hide y
    (root / "y").write_bytes(b"2")
    code, out, _ = run(capsys, "manifest", "diff", str(tmp_path / "m.json"), str(root))
    assert code == 1
    assert "~ y" in out.splitlines()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b'{"algorithm":"md5"}', "missing"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid UTF-8"),
    ],
)
def test_bad_manifest_file_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str],
    dataset: Path,
    tmp_path: Path,
    content: bytes,
    fragment: str,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, _, err = run(capsys, "manifest", "diff", str(bad), str(dataset))
    assert code == 2
    assert_one_line_error(err, fragment)


def test_truncated_manifest_is_refused(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    data = build_manifest(dataset).canonical_bytes
    (tmp_path / "m.json").write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "manifest", "diff", str(tmp_path / "m.json"), str(dataset))
    assert code == 2
    assert_one_line_error(err, "not valid JSON")


def test_manifest_with_traversal_path_is_refused(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    data = build_manifest(dataset).canonical_bytes.replace(b'"empty.txt"', b'"../../etc/x"')
    (tmp_path / "m.json").write_bytes(data)
    code, _, err = run(capsys, "manifest", "diff", str(tmp_path / "m.json"), str(dataset))
    assert code == 2
    assert_one_line_error(err, "'..' component")


def test_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "digest", str(tmp_path / "nope"))
    assert code == 2
    assert_one_line_error(err, "no such file or directory")


def test_refusal_in_tree_is_one_line(capsys: pytest.CaptureFixture[str], dataset: Path) -> None:
    (dataset / "link").symlink_to("train")
    code, _, err = run(capsys, "digest", str(dataset))
    assert code == 2
    assert_one_line_error(err, "symbolic link found: link")
    code, _, _ = run(capsys, "digest", "--allow-symlinks", str(dataset))
    assert code == 0


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--debug", "digest", str(tmp_path / "nope"))
    assert code == 2
    assert "Traceback" in err


def test_output_write_failure_leaves_the_old_file(
    capsys: pytest.CaptureFixture[str], dataset: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "manifest", str(dataset), "-o", str(tmp_path / "no" / "m.json"))
    assert code == 2
    assert_one_line_error(err, "cannot write in")


def test_cache_needs_a_project(
    capsys: pytest.CaptureFixture[str], dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dataset)
    code, _, err = run(capsys, "digest", "--cache", str(dataset))
    assert code == 2
    assert_one_line_error(err, "no .provenance/ directory")
    (dataset / ".provenance").mkdir()
    code, out, _ = run(capsys, "digest", "--cache", "--format", "json", str(dataset))
    assert code == 0
    assert (dataset / ".provenance" / "cache" / "stat-cache.sqlite").is_file()
    # The state directory is never part of the dataset it lives in.
    assert json.loads(out)["files"] == 4


def test_python_dash_m_entry_point(dataset: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provenance", "digest", str(dataset)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sha256:")


def test_cli_algorithm_names_match_the_allow_list() -> None:
    from provenance.cli.manifests import ALGORITHMS
    from provenance.digest import Algorithm

    assert tuple(a.value for a in Algorithm) == ALGORITHMS


def test_help_does_not_import_the_digest_machinery() -> None:
    code = (
        "import sys; from provenance.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('provenance.digest', 'pathspec', "
        "'blake3', 'sqlite3', 'rich'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_terminal_progress_draws_a_bar(dataset: Path) -> None:
    import io

    from provenance.cli.progress import TerminalProgress
    from provenance.digest import build_manifest as build

    stream = io.StringIO()
    progress = TerminalProgress("hashing", stream, force_terminal=True)
    manifest = build(dataset, progress=progress)
    assert manifest.file_count == 4
    assert "hashing" in stream.getvalue()
    assert progress._task is None  # finished and stopped


def test_no_progress_bar_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from provenance.cli.progress import progress_for

    assert progress_for("x", quiet=False) is None  # pytest's stderr is not a TTY
    assert progress_for("x", quiet=True) is None


def test_worker_start_failure_is_one_line(tmp_path: Path) -> None:
    import resource

    root = make_tree(tmp_path / "d", {f"f{i}": b"" for i in range(1100)})

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    result = subprocess.run(
        [sys.executable, "-m", "provenance", "digest", "-j", "16", str(root)],
        capture_output=True,
        text=True,
        preexec_fn=few_descriptors,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("provenance: error: cannot start a hashing worker")
    assert "Traceback" not in result.stderr


def test_verify_imports_no_data_science_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every CI gate runs ``provenance verify``: it must not pay for pandas, numpy, torch or
    scikit-learn (installed by the extras) when the policy and chain need none of them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    make_tree(tmp_path / "data", {"x.csv": b"x,label\n1,0\n"})
    assert main(["init"]) == 0
    assert main(["dataset", "add", "data", "--name", "tiny", "--license", "CC0-1.0"]) == 0
    heavy = ("pandas", "numpy", "torch", "sklearn", "sqlite_utils", "pyarrow")
    code = (
        "import sys; from provenance.cli import main; "
        "code = main(['verify', 'data', '--policy', '.provenance/policy.yaml', '-q']); "
        f"print(code, sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip().splitlines()[-1] == "0 []"
