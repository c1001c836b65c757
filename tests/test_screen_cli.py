"""``provenance screen`` end to end: exit codes, recorded evidence, sanitising with lineage,
policies that gate on the screening, drift by reference digest, harmful sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")
import numpy as np

from tests.screen_helpers import (
    FOLDER_SCHEMA,
    TABLE_SCHEMA,
    run,
    schema_validate,
    screen_json,
    start_project,
    table_rows,
    write_csv,
    write_folders,
)

SCREENING = "https://ml-provenance.dev/attestation/screening/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
DATASET = "https://ml-provenance.dev/attestation/dataset/v1"

# The policy example of attest/screening.md: a dataset needs a dataset attestation, a PASSED
# screening verdict and figures within limits, each signed by the project's key.
POLICY = """\
version: 1
roots:
  project:
    key: .provenance/keys/default.pub
rules:
  dataset:
    require:
      - predicateType: https://ml-provenance.dev/attestation/dataset/v1
        signedBy: [project]
      - predicateType: https://in-toto.io/attestation/test-result/v0.1
        signedBy: [project]
        conditions:
          - 'predicate.result == "PASSED"'
          - 'predicate.configuration.exists(c, c.uri == "https://ml-provenance.dev/checks/data-screening/v1")'
      - predicateType: https://ml-provenance.dev/attestation/screening/v1
        signedBy: [project]
        conditions:
          - 'predicate.checks.label_conflicts.flagged <= 0'
          - 'predicate.checks.duplicates.flagged <= 10'
"""


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    root = start_project(tmp_path / "proj", monkeypatch, capsys)
    (root / "schema.yaml").write_text(TABLE_SCHEMA)
    (root / "policy.yaml").write_text(POLICY)
    return root


def add(capsys: pytest.CaptureFixture[str], path: Path | str, name: str, *extra: str) -> str:
    code, out, err = run(capsys, "dataset", "add", str(path), "--name", name, *extra)
    assert code == 0, err
    return out.split()[0]


def dirty_rows() -> list[list[Any]]:
    rows = table_rows(100)
    rows.append(list(rows[0]))  # an exact copy
    conflict = list(rows[2])
    conflict[4] = "a" if conflict[4] == "b" else "b"
    rows.append(conflict)  # same features, other label
    return rows


def log(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out, _ = run(capsys, "log", "--format", "json")
    assert code == 0
    entries: list[dict[str, Any]] = json.loads(out)
    return entries


def test_a_clean_dataset_passes_and_both_statements_are_recorded(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "clean" / "t.csv", table_rows())
    digest = add(capsys, "clean", "clean")
    code, out, err = run(capsys, "screen", "clean", "--schema", "schema.yaml")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("PASSED: 0 failed, 0 warned, 7 passed")
    assert "ledger entry 2, ledger entry 3" in out
    entries = log(capsys)
    assert [e["predicateType"] for e in entries] == [DATASET, SCREENING, TEST_RESULT]
    code, document = screen_json(capsys, "clean", "--schema", "schema.yaml")
    verdict = document["statements"]["testResult"]["predicate"]
    assert code == 0 and document["subject"] == digest and verdict["result"] == "PASSED"
    assert "schema" in verdict["passedTests"] and verdict["failedTests"] == []
    # The verdict names its figures by attestation id: the one the ledger recorded.
    figures_id = document["recorded"]["screening"]["id"]
    assert f"sha256:{verdict['configuration'][0]['digest']['sha256']}" == figures_id
    assert figures_id in [e["id"] for e in log(capsys)]
    code, document = screen_json(capsys, "clean", "--schema", "schema.yaml", "--no-ledger")
    assert code == 0 and document["recorded"] == {}
    assert run(capsys, "ledger", "check")[0] == 0


def test_a_failed_check_exits_one_and_is_still_recorded(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "dirty" / "t.csv", dirty_rows())
    add(capsys, "dirty", "dirty")
    code, document = screen_json(capsys, "dirty", "--schema", "schema.yaml")
    assert code == 1
    verdict = document["statements"]["testResult"]["predicate"]
    assert verdict["result"] == "FAILED" and verdict["failedTests"] == ["label_conflicts"]
    assert verdict["warnedTests"] == ["duplicates"]
    figures = document["statements"]["screening"]["predicate"]
    assert figures["checks"]["label_conflicts"]["indices"] == [2, 101]
    assert figures["checks"]["duplicates"]["indices"] == [100]
    assert figures["sanitize"]["indices"] == [2, 100, 101]
    assert set(document["recorded"]) == {"screening", "testResult"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TABLE_SCHEMA + "mx: 3\n", "unknown key(s) mx"),
        (TABLE_SCHEMA.replace("min: -100, max: 100}", "min: 5, max: 1}", 1), "min is greater"),
        (TABLE_SCHEMA + "checks:\n  outliers: {zz: 1}\n", "checks.outliers: unknown key(s) zz"),
        (TABLE_SCHEMA + "checks:\n  drift: {warn: 0.5, fail: 0.1}\n", "wrong way round"),
        ("version: 1\nformat: table\ncolumns: {a: {type: float}}\nlabel: b\n", "not a declared"),
        ("version: 1\nformat: [\n", "not valid YAML"),
        ("version: 1\nformat: table\nformat: arrays\n", "duplicate key 'format'"),
        ("version: 2\nformat: table\n", "version must be 1"),
    ],
)
def test_a_malformed_schema_is_one_line_and_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    write_csv(project / "clean" / "t.csv", table_rows(20))
    add(capsys, "clean", "clean")
    (project / "bad.yaml").write_text(text)
    code, out, err = run(capsys, "screen", "clean", "--schema", "bad.yaml")
    assert code == 2 and out == ""
    assert err.startswith("provenance: error: bad.yaml: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unattested_dataset_is_refused_unless_nothing_is_recorded(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "new" / "t.csv", table_rows(40))
    code, _, err = run(capsys, "screen", "new", "--schema", "schema.yaml")
    assert code == 2 and "is not attested as a dataset" in err and "dataset add" in err
    assert run(capsys, "screen", "new", "--schema", "schema.yaml", "--no-ledger")[0] == 0
    code, _, err = run(capsys, "screen", "missing", "--schema", "schema.yaml")
    assert code == 2 and "does not exist" in err


def test_sanitize_writes_an_attested_child_naming_parent_and_screening(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "dirty" / "t.csv", dirty_rows())
    (project / "dirty" / "README.txt").write_text("kept as it is\n")
    parent = add(capsys, "dirty", "dirty")
    code, out, err = run(
        capsys, "screen", "dirty", "--schema", "schema.yaml", "--sanitize", "clean"
    )
    assert code == 1, err  # the verdict is the screened dataset's
    assert "3 samples removed" in out
    rows = (project / "clean" / "t.csv").read_text().splitlines()
    assert len(rows) == 1 + 102 - 3
    assert (project / "clean" / "README.txt").read_text() == "kept as it is\n"
    entries = log(capsys)
    screening_id, verdict_id = entries[1]["id"], entries[2]["id"]
    code, out, _ = run(capsys, "show", "clean", "--format", "json")
    (child,) = json.loads(out)["attestations"]
    predicate = child["predicate"]
    assert predicate["name"] == "dirty-sanitized"
    assert predicate["parents"] == [{"digest": {"sha256": parent.split(":")[1]}}]
    assert predicate["transformation"]["attestations"] == [
        {"id": screening_id, "predicateType": SCREENING},
        {"id": verdict_id, "predicateType": TEST_RESULT},
    ]
    assert predicate["transformation"]["command"][:3] == ["provenance", "screen", "dirty"]
    schema_validate(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": child["subjects"],
            "predicateType": DATASET,
            "predicate": predicate,
        },
        "dataset.schema.json",
    )
    # The copy screens clean, and its chain verifies down to the parent.
    assert run(capsys, "screen", "clean", "--schema", "schema.yaml")[0] == 0
    assert run(capsys, "verify", "clean", "--policy", ".provenance/policy.yaml")[0] == 0
    code, _, err = run(capsys, "screen", "dirty", "--schema", "schema.yaml", "--sanitize", "clean")
    assert code == 2 and "already exists" in err


def test_a_policy_gates_training_on_a_passed_screening(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "clean" / "t.csv", table_rows())
    write_csv(project / "dirty" / "t.csv", dirty_rows())
    add(capsys, "clean", "clean")
    add(capsys, "dirty", "dirty")
    code, out, _ = run(capsys, "verify", "clean", "--policy", "policy.yaml")
    assert code == 1 and "no https://in-toto.io/attestation/test-result/v0.1" in out
    assert run(capsys, "screen", "clean", "--schema", "schema.yaml")[0] == 0
    assert run(capsys, "screen", "dirty", "--schema", "schema.yaml")[0] == 1
    code, out, _ = run(capsys, "verify", "clean", "--policy", "policy.yaml")
    assert code == 0, out
    code, out, _ = run(capsys, "verify", "dirty", "--policy", "policy.yaml")
    assert code == 1
    assert 'condition false: predicate.result == "PASSED"' in out
    assert "condition false: predicate.checks.label_conflicts.flagged <= 0" in out


def test_drift_against_a_reference_by_digest_uses_its_signed_profile(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(project / "ref" / "t.csv", table_rows(400, seed=1))
    write_csv(project / "new" / "t.csv", table_rows(400, seed=2, shift=1.5))
    reference = add(capsys, "ref", "ref")
    add(capsys, "new", "new")
    code, _, err = run(capsys, "screen", "new", "--schema", "schema.yaml", "--reference", reference)
    assert code == 2 and "no screening attestation with a profile" in err
    assert run(capsys, "screen", "ref", "--schema", "schema.yaml")[0] == 0
    code, document = screen_json(
        capsys, "new", "--schema", "schema.yaml", "--reference", reference, "--no-ledger"
    )
    figures = document["statements"]["screening"]["predicate"]
    assert code == 1 and figures["checks"]["drift"]["result"] == "FAILED"
    assert figures["reference"] == {
        "digest": {"sha256": reference.split(":")[1]},
        "profileFrom": "attestation",
    }
    code, document = screen_json(
        capsys, "new", "--schema", "schema.yaml", "--reference", "ref", "--no-ledger"
    )
    figures = document["statements"]["screening"]["predicate"]
    assert figures["reference"]["profileFrom"] == "data"
    assert figures["checks"]["drift"]["result"] == "FAILED"
    code, _, err = run(
        capsys, "screen", "new", "--schema", "schema.yaml", "--reference", "sha256:" + "ab" * 32
    )
    assert code == 2 and "not attested as a dataset" in err


def test_a_harmful_source_is_found_and_its_samples_removed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    parents = []
    for i in range(3):
        rows = table_rows(120, seed=10 + i)
        if i == 2:
            for row in rows:
                if rng.random() < 0.4:
                    row[4] = "a" if row[4] == "b" else "b"
        write_csv(project / f"s{i}" / "t.csv", rows)
        parents.append(add(capsys, f"s{i}", f"source-{i}"))
        write_csv(project / "all" / f"part-{i}.csv", rows)
    write_csv(project / "val" / "t.csv", table_rows(200, seed=20))
    add(capsys, "val", "validation")
    add(capsys, "all", "all", *[w for p in parents for w in ("--parent", p)])
    code, document = screen_json(
        capsys,
        "all",
        "--schema",
        "schema.yaml",
        "--sources",
        "s0",
        "s1",
        "s2",
        "--validation",
        "val",
        "--no-ledger",
        "--sanitize",
        "kept",
    )
    figures = document["statements"]["screening"]["predicate"]
    sources = figures["checks"]["sources"]
    assert sources["result"] == "FAILED" and sources["details"]["harmful"] == ["source-2"]
    assert sources["flagged"] == 120 and sources["indices"] == list(range(240, 360))
    assert document["sanitized"]["removed"] >= 120
    assert not (project / "kept" / "part-2.csv").read_text().strip().count("\n")
    write_csv(project / "stranger" / "t.csv", table_rows(50, seed=99))
    add(capsys, "stranger", "stranger")
    code, _, err = run(
        capsys,
        "screen",
        "all",
        "--schema",
        "schema.yaml",
        "--sources",
        "s0",
        "stranger",
        "--validation",
        "val",
        "--no-ledger",
    )
    assert code == 2 and "is not a parent" in err


def test_image_folders_sanitize_by_leaving_files_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_folders(project / "imgs")
    (root / "0" / "copy.npy").write_bytes((root / "0" / "000.npy").read_bytes())
    (project / "folders.yaml").write_text(FOLDER_SCHEMA)
    add(capsys, "imgs", "imgs")
    code, document = screen_json(capsys, "imgs", "--schema", "folders.yaml", "--sanitize", "out")
    assert code == 0  # one duplicate only warns
    figures = document["statements"]["screening"]["predicate"]
    assert figures["checks"]["duplicates"]["result"] == "WARNED"
    assert not (project / "out" / "0" / "copy.npy").exists()
    assert (project / "out" / "0" / "000.npy").exists()
    assert len(list((project / "out").rglob("*.npy"))) == 90


def test_parquet_and_single_files_are_screened_and_sanitized(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = dirty_rows()
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            name: list(values)
            for name, values in zip(["x1", "x2", "x3", "colour", "label"], columns, strict=True)
        }
    )
    (project / "pq").mkdir()
    pq.write_table(table, project / "pq" / "t.parquet")
    add(capsys, "pq", "pq")
    code, document = screen_json(capsys, "pq", "--schema", "schema.yaml", "--sanitize", "pq-out")
    assert code == 1 and document["sanitized"]["removed"] == 3
    assert pq.read_table(project / "pq-out" / "t.parquet").num_rows == 99
    write_csv(project / "one.csv", dirty_rows())
    add(capsys, "one.csv", "one")
    code, document = screen_json(
        capsys, "one.csv", "--schema", "schema.yaml", "--sanitize", "one-clean.csv"
    )
    assert code == 1 and document["sanitized"]["recorded"].startswith("ledger entry")
    assert len((project / "one-clean.csv").read_text().splitlines()) == 100


def test_a_reference_by_digest_must_verify_under_the_policy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under --policy the reference's chain is verified and its profile must be signed by a
    root of the policy; one attested only by an untrusted key is refused."""
    write_csv(project / "ref" / "t.csv", table_rows(400, seed=1))
    write_csv(project / "new" / "t.csv", table_rows(400, seed=2))
    assert run(capsys, "key", "generate", "outsider")[0] == 0
    reference = add(capsys, "ref", "ref", "--key", ".provenance/keys/outsider.key")
    add(capsys, "new", "new")
    (project / "policy.yaml").write_text(
        "version: 1\nroots:\n  project:\n    key: .provenance/keys/default.pub\nrules:\n"
        "  dataset:\n    require:\n"
        "      - predicateType: https://ml-provenance.dev/attestation/dataset/v1\n"
        "        signedBy: [project]\n"
    )
    code, _, err = run(
        capsys,
        "screen",
        "new",
        "--schema",
        "schema.yaml",
        "--reference",
        reference,
        "--policy",
        "policy.yaml",
        "--no-ledger",
    )
    assert code == 1 and "does not verify under the policy" in err
