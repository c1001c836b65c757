"""``provenance env sbom``: a reproducible, valid CycloneDX 1.6 SBOM of a real environment."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from provenance.deps.inventory import InstalledDistribution, inspect
from provenance.deps.sbom import build_sbom, licenses
from tests.env_helpers import build_wheel, make_venv, run, site_packages


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sbom")
    wheels = root / "wheels"
    tiny = build_wheel(
        wheels,
        "tiny-pkg",
        "1.0",
        {"tiny_pkg/__init__.py": b"X = 1\n"},
        metadata="License-Expression: MIT OR Apache-2.0\n",
    )
    classic = build_wheel(
        wheels,
        "Classic",
        "2.3.post1",
        {"classic.py": b"Y = 2\n"},
        metadata="Classifier: License :: OSI Approved :: MIT License\nLicense: MIT\n",
    )
    make_venv(root / "venv", tiny, classic)
    return root / "venv"


def _validate(data: bytes) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode("utf-8"))
    assert error is None, error


def test_sbom_is_reproducible_valid_and_complete(
    venv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for name in ("a.json", "b.json"):
        code, out, _ = run(
            capsys, "env", "sbom", "--python", str(venv), "-o", str(tmp_path / name), "--no-ledger"
        )
        assert code == 0
        outputs.append((tmp_path / name).read_bytes())
        digest = out.split()[0]
        assert digest == "sha256:" + hashlib.sha256(outputs[-1]).hexdigest()
        assert "2 components, not recorded" in out
    assert outputs[0] == outputs[1]
    _validate(outputs[0])
    bom = json.loads(outputs[0])
    assert "serialNumber" not in bom and "timestamp" not in bom["metadata"]
    assert bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["name"] == "python-environment"
    by_name = {c["name"]: c for c in bom["components"]}
    assert set(by_name) == {"tiny-pkg", "Classic"}
    tiny, classic = by_name["tiny-pkg"], by_name["Classic"]
    assert tiny["purl"] == "pkg:pypi/tiny-pkg@1.0" and tiny["version"] == "1.0"
    assert tiny["licenses"] == [{"expression": "MIT OR Apache-2.0", "acknowledgement": "declared"}]
    assert classic["purl"] == "pkg:pypi/classic@2.3.post1"
    assert [lic["license"]["id"] for lic in classic["licenses"]] == ["MIT"]
    record = site_packages(venv) / "tiny_pkg-1.0.dist-info" / "RECORD"
    assert tiny["hashes"] == [
        {"alg": "SHA-256", "content": hashlib.sha256(record.read_bytes()).hexdigest()}
    ]


def test_sbom_goes_to_stdout_without_output(venv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "env", "sbom", "--python", str(venv), "--no-ledger")
    assert code == 0
    assert err.split()[0] == "sha256:" + hashlib.sha256(out.encode()).hexdigest()
    assert json.loads(out)["bomFormat"] == "CycloneDX"


def test_a_changed_install_changes_the_digest(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "w", "one", "1.0", {"one.py": b""})
    python = make_venv(tmp_path / "venv", wheel)
    before = build_sbom(inspect(str(python))).digest
    record = site_packages(tmp_path / "venv") / "one-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "evil.py,,\n")
    assert build_sbom(inspect(str(python))).digest != before


def test_pth_import_lines_do_not_run_while_describing(tmp_path: Path) -> None:
    make_venv(tmp_path / "venv")
    marker = tmp_path / "ran"
    extra = tmp_path / "extra"
    build_wheel(tmp_path / "w", "elsewhere", "0.1", {})  # a dist-info to unpack by hand
    (extra / "elsewhere-0.1.dist-info").mkdir(parents=True)
    (extra / "elsewhere-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: elsewhere\nVersion: 0.1\n"
    )
    (site_packages(tmp_path / "venv") / "hook.pth").write_text(
        f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n{extra}\n"
    )
    environment = inspect(str(tmp_path / "venv"))
    assert not marker.exists()
    # The path line was followed: the distribution it points at is part of the environment.
    assert [d.name for d in environment.distributions] == ["elsewhere"]


def test_this_interpreter_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, default = run(capsys, "env", "sbom", "--no-ledger")
    assert code == 0
    code, _, explicit = run(capsys, "env", "sbom", "--no-ledger", "--python", sys.executable)
    assert default.split()[0] == explicit.split()[0]


def test_sbom_is_signed_into_the_ledger(
    venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    code, _, err = run(capsys, "env", "sbom", "--python", str(venv), "-o", "sbom.json")
    assert code == 0 and "not in a project, nothing recorded" in err
    assert run(capsys, "init")[0] == 0
    code, out, _ = run(capsys, "env", "sbom", "--python", str(venv), "-o", "sbom.json")
    assert code == 0 and "ledger entry 1" in out
    digest = out.split()[0]
    code, out, _ = run(capsys, "show", digest, "--format", "json")
    (shown,) = json.loads(out)["attestations"]
    assert shown["predicateType"] == "https://cyclonedx.org/bom"
    assert shown["subjects"] == [
        {"digest": {"sha256": digest.split(":")[1]}, "name": "python-environment"}
    ]
    assert shown["predicate"] == json.loads((project / "sbom.json").read_bytes())
    assert run(capsys, "ledger", "check")[0] == 0


def _dist(**fields: object) -> InstalledDistribution:
    return InstalledDistribution(name="x", version="1", metadata_dir=None, **fields)  # type: ignore[arg-type]


def test_licences_from_metadata() -> None:
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    factory = LicenseFactory()
    (only,) = licenses(_dist(license_expression="Apache-2.0", license="GPL"), factory)
    assert isinstance(only, DisjunctiveLicense) and only.id == "Apache-2.0"
    (expression,) = licenses(_dist(license_expression="MIT OR BSD-3-Clause"), factory)
    assert isinstance(expression, LicenseExpression)
    named = licenses(
        _dist(classifiers=("License :: OSI Approved :: BSD License",), license="BSD"), factory
    )
    assert {(lic.id, lic.name) for lic in named if isinstance(lic, DisjunctiveLicense)} == {
        (None, "OSI Approved :: BSD License"),
        (None, "BSD"),
    }
    assert licenses(_dist(license="line one\nline two of a licence text"), factory) == []
    assert licenses(_dist(license="UNKNOWN"), factory) == []
