"""``provenance env check``: a real virtual environment with a real install, then tampered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenance.deps.record import parse_record
from provenance.errors import FormatError
from tests.env_helpers import build_wheel, make_venv, run, schema_validate, site_packages

FILES = {
    "tinypkg/__init__.py": b"VALUE = 1\n",
    "tinypkg/core.py": b"def f():\n    return 42\n",
    "tinypkg/data.txt": b"hello\n",
    "tinypkg_hook.pth": b"import tinypkg\n",  # a .pth a RECORD claims is normal
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check")
    wheel = build_wheel(root / "wheels", "tinypkg", "1.0", FILES)
    make_venv(root / "venv", wheel)
    return root / "venv"


@pytest.fixture
def venv(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine environment each test may tamper with."""
    copy = tmp_path / "venv"
    shutil.copytree(pristine, copy, symlinks=True)
    # The copy's files are its own, but its RECORD still names the pristine paths nowhere:
    # RECORD paths are relative, so the copy checks exactly like the original.
    return copy


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert run(capsys, "init")[0] == 0
    return root


def _check(
    capsys: pytest.CaptureFixture[str], venv: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "env", "check", "--python", str(venv), "--format", "json", *extra)
    assert out, err
    document: dict[str, Any] = json.loads(out)
    schema_validate(document["statement"], "integrity.schema.json")
    return code, document


def test_a_clean_environment_passes_and_is_recorded(
    venv: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "env", "check", "--python", str(venv))
    assert code == 0
    assert out.startswith("PASSED: 0 finding(s), 0 warning(s); 1 distributions")
    assert "ledger entry 1" in out
    code, document = _check(capsys, venv, "--no-ledger")
    predicate = document["statement"]["predicate"]
    assert code == 0 and predicate["result"] == "PASSED"
    site = site_packages(venv).resolve()
    assert predicate["passedTests"] == ["record:tinypkg==1.0", f"site:{site}"]
    assert predicate["failedTests"] == [] and predicate["warnedTests"] == []
    figures = predicate["configuration"][0]["annotations"]
    assert figures["files"] == 9 and figures["distributions"] == 1  # 4 files + 5 metadata files
    # The subject is the environment digest env sbom prints for the same interpreter.
    code, out, _ = run(
        capsys, "env", "sbom", "--python", str(venv), "-o", "sbom.json", "--no-ledger"
    )
    assert document["subject"] == out.split()[0]
    code, out, _ = run(capsys, "log", "--format", "json")
    (entry,) = json.loads(out)
    assert entry["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    assert entry["subjects"][0]["digest"]["sha256"] == document["subject"].split(":")[1]


def test_a_modified_file_and_a_stray_pth_fail(
    venv: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_packages(venv)
    (site / "tinypkg" / "core.py").write_bytes(b"def f():\n    return 43\n")  # same size
    (site / "zzz-injected.pth").write_text("import os; os.system('true')\n")
    code, out, _ = run(capsys, "env", "check", "--python", str(venv))
    assert code == 1
    assert "modified     tinypkg==1.0  tinypkg/core.py (content differs from RECORD)" in out
    assert f"unclaimed    pth  {site.resolve() / 'zzz-injected.pth'}" in out
    assert out.splitlines()[-1].startswith("FAILED: 2 finding(s)")
    assert "ledger entry 1" in out  # a failed check is evidence too
    code, document = _check(capsys, venv, "--no-ledger")
    predicate = document["statement"]["predicate"]
    assert code == 1 and predicate["result"] == "FAILED"
    resolved = site.resolve()
    assert predicate["failedTests"] == [
        "record:tinypkg==1.0:modified:tinypkg/core.py",
        f"site:{resolved}:unclaimed-pth:zzz-injected.pth",
    ]
    assert predicate["passedTests"] == []


def test_missing_files_shadowing_modules_and_unclaimed_packages(
    venv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_packages(venv)
    (site / "tinypkg" / "data.txt").unlink()
    (site / "tinypkg" / "core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (site / "sitecustomize.py").write_text("print('hi')\n")
    (site / "planted").mkdir()
    (site / "planted" / "__init__.py").write_text("")
    (site / "tinypkg" / "notes.txt").write_text("a cache file\n")
    (site / "tinypkg" / "__pycache__").mkdir(exist_ok=True)
    (site / "tinypkg" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"cache")
    (site / "README.txt").write_text("not code\n")
    code, document = _check(capsys, venv, "--no-ledger")
    predicate = document["statement"]["predicate"]
    assert code == 1
    resolved = site.resolve()
    assert predicate["failedTests"] == [
        "record:tinypkg==1.0:missing:tinypkg/data.txt",
        f"site:{resolved}:unclaimed-package:planted/",
        f"site:{resolved}:unclaimed-module:sitecustomize.py",
        f"site:{resolved}:unclaimed-module:tinypkg/core.cpython-311-x86_64-linux-gnu.so",
    ]
    assert predicate["warnedTests"] == [
        f"site:{resolved}:unclaimed-file:README.txt",
        f"site:{resolved}:unclaimed-file:tinypkg/notes.txt",
    ]


def test_a_distribution_without_a_usable_record_cannot_pass(
    venv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_packages(venv)
    record = site / "tinypkg-1.0.dist-info" / "RECORD"
    rows = [
        "tinypkg/data.txt,md5=sZRqySSS0jR8YjW00mERhA,6" if r.startswith("tinypkg/data.txt,") else r
        for r in record.read_text().splitlines()
    ]
    record.write_text("\n".join(rows) + "\n")
    code, document = _check(capsys, venv, "--no-ledger")
    assert code == 1
    (failure,) = document["statement"]["predicate"]["failedTests"]
    assert failure.startswith("record:tinypkg==1.0:unverifiable:")
    record.unlink()
    code, document = _check(capsys, venv, "--no-ledger")
    failed = document["statement"]["predicate"]["failedTests"]
    assert code == 1
    assert failed[0].startswith("record:tinypkg==1.0:unverifiable:")
    # Without a RECORD nothing claims its files: they are unclaimed code too.
    assert any(":unclaimed-package:tinypkg" in f for f in failed)
    assert any(":unclaimed-pth:tinypkg_hook.pth" in f for f in failed)


def test_unhashed_rows_are_warnings_and_pyc_rows_are_skipped(
    venv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = site_packages(venv) / "tinypkg-1.0.dist-info" / "RECORD"
    record.write_text(
        record.read_text() + "tinypkg/extra.txt,,\ntinypkg/__pycache__/gone.cpython-311.pyc,,\n"
    )
    code, document = _check(capsys, venv, "--no-ledger")
    predicate = document["statement"]["predicate"]
    assert code == 0 and predicate["result"] == "WARNED"
    assert predicate["warnedTests"] == ["record:tinypkg==1.0:unhashed:tinypkg/extra.txt"]


def test_the_check_does_not_run_pth_files(
    venv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    (site_packages(venv) / "evil.pth").write_text(
        f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n"
    )
    code, _, _ = run(capsys, "env", "check", "--python", str(venv), "--no-ledger")
    assert code == 1 and not marker.exists()


def test_record_parsing() -> None:
    entries = parse_record(
        b'a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n"b,c.py",,\n', what="RECORD"
    )
    assert entries[0].digest == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert entries[0].accepted and entries[0].size == 0
    assert entries[1].path == "b,c.py" and not entries[1].accepted
    for bad in (b"a.py,sha256=!!,1\n", b"a.py,sha256=AAAA,1\n", b"a.py,sha256\n", b"a.py,,x\n"):
        with pytest.raises(FormatError):
            parse_record(bad, what="RECORD")


def test_the_user_site_directory_is_described_when_the_interpreter_would_use_it(
    tmp_path: Path,
) -> None:
    """``-I`` keeps the user site out of the probe; a command run normally imports from it."""
    import os
    import subprocess
    import sys

    from provenance.deps.inventory import PROBE

    base = Path(sys.base_prefix) / "bin" / "python3"
    if not base.is_file():
        pytest.skip(f"no base interpreter at {base}")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    user_site = tmp_path / "home" / ".local" / "lib" / version / "site-packages"
    user_site.mkdir(parents=True)
    environment = {**os.environ, "HOME": str(tmp_path / "home")}
    environment.pop("PYTHONUSERBASE", None)
    environment.pop("PYTHONNOUSERSITE", None)
    probe = [str(base), "-I", "-S", "-B", str(PROBE)]
    found = json.loads(
        subprocess.run(probe, capture_output=True, env=environment, check=True).stdout
    )
    assert str(user_site.resolve()) in found["siteDirs"]
    environment["PYTHONNOUSERSITE"] = "1"
    found = json.loads(
        subprocess.run(probe, capture_output=True, env=environment, check=True).stdout
    )
    assert str(user_site.resolve()) not in found["siteDirs"]
    # A virtual environment without the system site-packages never uses it.
    venv_python = Path(sys.prefix) / "bin" / "python"
    if sys.prefix != sys.base_prefix and venv_python.is_file():
        environment.pop("PYTHONNOUSERSITE")
        probe[0] = str(venv_python)
        found = json.loads(
            subprocess.run(probe, capture_output=True, env=environment, check=True).stdout
        )
        assert str(user_site.resolve()) not in found["siteDirs"]


def test_linked_packages_are_unclaimed_code(
    venv: Path, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A symbolic link to a directory imports like a package; neither one at the top of
    site-packages nor one inside a claimed package may pass as a mere file."""
    site = site_packages(venv)
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "__init__.py").write_text("import os\n")
    (site / "ujson").symlink_to(planted, target_is_directory=True)
    (site / "tinypkg" / "plugins").symlink_to(planted, target_is_directory=True)
    code, document = _check(capsys, venv, "--no-ledger")
    predicate = document["statement"]["predicate"]
    resolved = site.resolve()
    assert code == 1 and predicate["result"] == "FAILED"
    assert f"site:{resolved}:unclaimed-package:ujson/" in predicate["failedTests"]
    assert f"site:{resolved}:unclaimed-package:tinypkg/plugins/" in predicate["failedTests"]
