"""policies/strict.yaml end to end: a model trained under 'provenance run' in an environment
whose SBOM, audit and integrity check are attested; a HIGH finding in the audit refuses it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from provenance.cli import main
from tests.conftest import make_tree

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "osv"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def osv_dump(tmp_path: Path, name: str, package: str, version: str) -> Path:
    """A local OSV dump, current as of now, with one HIGH advisory against ``package``."""
    record = {
        "schema_version": "1.6.0",
        "id": "TEST-2026-0001",
        "modified": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "summary": "a planted advisory for this test",
        "affected": [{"package": {"ecosystem": "PyPI", "name": package}, "versions": [version]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
    }
    directory = tmp_path / name
    directory.mkdir()
    (directory / "TEST-2026-0001.json").write_text(json.dumps(record))
    return directory


def test_strict_policy_needs_a_clean_audited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert cli(capsys, "init")[0] == 0
    make_tree(root / "data", {"a.csv": b"x,y\n1,0\n"})
    (root / ".gitignore").write_text("model.bin\n")
    assert cli(capsys, "dataset", "add", "data", "--name", "d")[0] == 0
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)
    policy = tmp_path / "strict.yaml"
    policy.write_text(
        (ROOT / "policies" / "strict.yaml")
        .read_text()
        .replace("key: keys/project.pub", f"key: {root / '.provenance/keys/default.pub'}")
    )

    code, _, err = cli(capsys, "env", "sbom", "-o", str(tmp_path / "sbom.json"))
    assert code == 0, err
    assert cli(capsys, "env", "check")[0] == 0
    installed = osv_dump(tmp_path, "osv-high", "pyyaml", metadata.version("PyYAML"))
    code, out, _ = cli(capsys, "env", "audit", "--osv-db", str(installed))
    assert code == 1 and "TEST-2026-0001" in out
    train = [sys.executable, "-c", "open('model.bin', 'wb').write(b'w')"]
    # Trained under the starter policy; the model is then judged under strict.yaml.
    starter = ".provenance/policy.yaml"
    base = ["run", "--policy", starter, "--material", "data", "--product", "model.bin"]
    code, _, err = cli(capsys, *base, "--", *train)
    assert code == 0, err
    assert "no SBOM attestation" not in err
    from provenance.ledger import Ledger

    with Ledger(root / ".provenance" / "ledger.db") as ledger:
        (entry,) = ledger.find(predicate_type="https://slsa.dev/provenance/v1")
        statement = entry.parsed().statement.to_json()
    schema = json.loads((ROOT / "attest" / "training.schema.json").read_text())
    jsonschema.validate(statement, schema, format_checker=jsonschema.FormatChecker())
    roles = [
        d["annotations"]["role"]
        for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    ]
    assert roles.count("environment-sbom") == 1

    code, out, _ = cli(capsys, "verify", "model.bin", "--policy", str(policy), "--format", "json")
    assert code == 1
    report = json.loads(out)
    environment = report["root"]["inputs"][-1]
    assert environment["kind"] == "environment"
    failed = [c for c in environment["checks"] if not c["ok"]]
    assert len(failed) == 1 and "vulns" in failed[0]["requirement"]
    assert "condition false" in failed[0]["detail"]

    # Stale advisory data does not make a clean audit: the recorded real advisories (2018)
    # affect no installed version, but they are years older than the audit.
    assert cli(capsys, "env", "audit", "--osv-db", str(FIXTURES))[0] == 0
    code, out, _ = cli(capsys, "verify", "model.bin", "--policy", str(policy))
    assert code == 1 and "lastUpdate" in out
    # Current data with no advisory for anything installed: the newest audit is clean, and
    # the environment is trusted; what strict.yaml still asks is the dataset's screening and
    # the model's evaluation (the demo provides both and is trusted under strict.yaml).
    current = osv_dump(tmp_path, "osv-current", "not-installed-here", "1.0")
    assert cli(capsys, "env", "audit", "--osv-db", str(current))[0] == 0
    code, out, _ = cli(capsys, "verify", "model.bin", "--policy", str(policy), "--format", "json")
    report = json.loads(out)
    environment = report["root"]["inputs"][-1]
    assert environment["kind"] == "environment" and environment["trusted"] is True
    failed = sorted(f["requirement"].split(" ")[0] for f in report["failures"])
    assert failed == [
        "https://in-toto.io/attestation/test-result/v0.1",  # the dataset was not screened
        "https://ml-provenance.dev/attestation/evaluation/v1",  # the model was not evaluated
    ]
    assert code == 1
