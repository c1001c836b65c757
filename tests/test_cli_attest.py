"""init, keys, dataset add, attest, log, show and the ledger commands, end to end via main()."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from provenance.cli import main
from tests.conftest import make_tree


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert run(capsys, "init")[0] == 0
    make_tree(root / "data", {"train/a.csv": b"x,y\n1,0\n", "test/b.csv": b"x,y\n2,1\n"})
    return root


def test_init_creates_a_project_once(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = project / ".provenance"
    assert (state / "ledger.db").is_file()
    assert stat.S_IMODE((state / "keys" / "default.key").stat().st_mode) == 0o600
    policy = (state / "policy.yaml").read_text()
    assert "keys/default.pub" in policy
    code, _, err = run(capsys, "init")
    assert code == 2
    assert "never overwritten" in err


def test_dataset_add_log_show_and_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dataset", "add", "data", "--name", "toy", "--license", "MIT")
    assert code == 0
    digest = out.split()[0]
    assert digest.startswith("sha256:")
    code, out, _ = run(capsys, "log", "--format", "json")
    entries = json.loads(out)
    assert [e["predicateType"] for e in entries] == [
        "https://ml-provenance.dev/attestation/dataset/v1"
    ]
    code, out, _ = run(capsys, "show", "data", "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["subject"] == digest
    assert shown["attestations"][0]["predicate"]["license"] == "MIT"
    assert run(capsys, "ledger", "check")[0] == 0
    # the same dataset again is already recorded, not a second entry
    assert "already in the ledger" not in run(capsys, "dataset", "add", "data", "--name", "toy")[1]


def test_show_of_an_unattested_subject_exits_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "show", "data")
    assert code == 1
    assert "0 attestation(s)" in out


def test_an_edited_ledger_fails_the_check(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "dataset", "add", "data", "--name", "toy")
    db = sqlite3.connect(project / ".provenance" / "ledger.db", isolation_level=None)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET signer = 'key:someone-else'")
    db.close()
    code, out, _ = run(capsys, "ledger", "check")
    assert code == 1
    assert "entry 1 was edited" in out


def test_generic_attestation(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pred.json").write_text('{"result": "PASSED", "accuracy": 0.97}')
    code, _out, _ = run(
        capsys,
        "attest",
        "data",
        "--predicate-type",
        "https://example.com/eval/v1",
        "--predicate",
        "pred.json",
    )
    assert code == 0
    (project / "bad.json").write_text("[1, 2]")
    code, _, err = run(capsys, "attest", "data", "--predicate-type", "x", "--predicate", "bad.json")
    assert code == 2 and "a predicate is a JSON object" in err


def test_export_and_import_into_another_project(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(capsys, "dataset", "add", "data", "--name", "toy")
    run(capsys, "ledger", "export", "-o", str(tmp_path / "chain.jsonl"))
    lines = (tmp_path / "chain.jsonl").read_bytes().splitlines()
    assert len(lines) == 2  # the attestation and its manifest

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    run(capsys, "init", "--no-key")
    code, out, err = run(capsys, "ledger", "import", str(tmp_path / "chain.jsonl"))
    assert code == 1 and "not trusted" in err and "1 refused" in out
    trust = str(project / ".provenance" / "keys" / "default.pub")
    code, out, _ = run(
        capsys, "ledger", "import", str(tmp_path / "chain.jsonl"), "--trust-key", trust
    )
    assert code == 0 and "1 imported" in out
    code, out, _ = run(
        capsys, "ledger", "import", str(tmp_path / "chain.jsonl"), "--trust-key", trust
    )
    assert "0 imported, 1 already present" in out

    tampered = json.loads(lines[0])
    tampered["dsseEnvelope"]["signatures"][0]["sig"] = (
        "A" + tampered["dsseEnvelope"]["signatures"][0]["sig"][1:]
    )
    (tmp_path / "bad.jsonl").write_text(json.dumps(tampered) + "\nnot json\n")
    code, out, _ = run(
        capsys, "ledger", "import", str(tmp_path / "bad.jsonl"), "--trust-key", trust
    )
    assert code == 1 and "2 refused" in out


def test_keys(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "key", "generate", "../escape")[0] == 2
    monkeypatch.setenv("PROVENANCE_KEY_PASSPHRASE", "s3cret")
    assert run(capsys, "key", "generate", "team", "--type", "ed25519")[0] == 0
    assert run(capsys, "key", "generate", "team")[0] == 2  # never overwritten
    code, out, _ = run(capsys, "key", "list", "--format", "json")
    names = {k["name"]: k for k in json.loads(out)}
    assert names["team"]["type"] == "ed25519"
    key = str(project / ".provenance" / "keys" / "team.key")
    assert run(capsys, "dataset", "add", "data", "--name", "toy", "--key", key)[0] == 0
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE")
    code, _, err = run(capsys, "dataset", "add", "data", "--name", "toy2", "--key", key)
    assert code == 2 and "PROVENANCE_KEY_PASSPHRASE" in err


def test_signer_uri_needs_its_public_key(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "dataset", "add", "data", "--name", "t", "--key", "gcpkms:projects/p/k"
    )
    assert code == 2 and "--public-key" in err


def test_commands_outside_a_project_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "log")
    assert code == 2 and "provenance init" in err


@pytest.mark.parametrize(
    "line",
    [b'{"mediaType": []}', b"[" * 100_000 + b"]" * 100_000, b'{"mediaType": "x"}', b"42"],
)
def test_crafted_import_lines_are_refused_cleanly(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: bytes
) -> None:
    (tmp_path / "crafted.jsonl").write_bytes(line + b"\n")
    code, out, err = run(capsys, "ledger", "import", str(tmp_path / "crafted.jsonl"))
    assert code == 1 and "1 refused" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "predicate",
    [
        '{"x": 1e400}',
        '{"x": 18446744073709551616}',
        '{"x": "\\ud800"}',
        '{"\\ud800": 1}',
        '{"x": ' + "[" * 500 + "]" * 500 + "}",
    ],
)
def test_predicates_without_one_reading_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str], predicate: str
) -> None:
    (project / "p.json").write_text(predicate)
    code, _, err = run(capsys, "attest", "data", "--predicate-type", "x", "--predicate", "p.json")
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1


def test_empty_passphrase_and_empty_subject_are_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENANCE_KEY_PASSPHRASE", "")
    assert run(capsys, "key", "generate", "k2")[0] == 2
    assert not (project / ".provenance" / "keys" / "k2.key").exists()
    assert run(capsys, "show", "")[0] == 2


def test_verify_trusts_then_refuses_after_tampering(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "dataset", "add", "data", "--name", "toy")
    policy = str(project / ".provenance" / "policy.yaml")
    code, out, _ = run(capsys, "verify", "data", "--policy", policy)
    assert code == 0 and out.strip().endswith("TRUSTED")
    (project / "data" / "train" / "a.csv").write_bytes(b"x,y\n1,1\n")
    (project / "data" / "new.csv").write_bytes(b"")
    code, out, _ = run(capsys, "verify", "data", "--policy", policy)
    assert code == 1
    assert "no attestation names this artifact" in out
    assert "  ~ train/a.csv" in out and "  + new.csv" in out
    code, out, _ = run(capsys, "verify", "data", "--policy", policy, "--format", "json")
    report = json.loads(out)
    assert report["trusted"] is False
    assert report["localDiff"]["changed"] == ["train/a.csv"]
    assert report["failures"][0]["found"] == "no attestation names this artifact"


def test_verify_from_a_portable_bundle_without_a_ledger(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "dataset", "add", "data", "--name", "toy")
    digest = out.split()[0]
    run(capsys, "ledger", "export", "--for", digest, "-o", str(tmp_path / "chain.jsonl"))
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    policy = str(project / ".provenance" / "policy.yaml")
    code, out, _ = run(
        capsys, "verify", digest, "--policy", policy, "--bundle", str(tmp_path / "chain.jsonl")
    )
    assert code == 0, out


@pytest.mark.parametrize(
    ("policy_text", "fragment"),
    [
        ("version: 1\nroots: {}\nrules: {}\n", "at least one trust root"),
        ("version: [1", "not valid YAML"),
    ],
)
def test_verify_with_a_malformed_policy_is_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], policy_text: str, fragment: str
) -> None:
    (project / "bad.yaml").write_text(policy_text)
    code, _, err = run(capsys, "verify", "data", "--policy", "bad.yaml")
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_verify_of_a_missing_path_is_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = str(project / ".provenance" / "policy.yaml")
    code, _, err = run(capsys, "verify", "no-such-dir", "--policy", policy)
    assert code == 2 and "no such file" in err


def test_verify_sarif_lists_each_failure(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(project / ".provenance" / "policy.yaml")
    code, out, _ = run(capsys, "verify", "data", "--policy", policy, "--format", "sarif")
    sarif = json.loads(out)
    assert code == 1
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["PROV001"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "data"
    rule_ids = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rule_ids
    run(capsys, "dataset", "add", "data", "--name", "toy")
    code, out, _ = run(capsys, "verify", "data", "--policy", policy, "--format", "sarif")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []


def test_verify_at_a_time(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "dataset", "add", "data", "--name", "toy")
    text = (project / ".provenance" / "policy.yaml").read_text() + "maxAge: 1d\n"
    (project / "aged.yaml").write_text(
        text.replace("keys/default.pub", ".provenance/keys/default.pub")
    )
    assert run(capsys, "verify", "data", "--policy", "aged.yaml")[0] == 0
    code, out, _ = run(
        capsys, "verify", "data", "--policy", "aged.yaml", "--at", "2099-01-01T00:00:00Z"
    )
    assert code == 1 and "older than maxAge" in out
    assert run(capsys, "verify", "data", "--policy", "aged.yaml", "--at", "yesterday")[0] == 2
