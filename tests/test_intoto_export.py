"""provenance export in-toto: a signed root layout and links that the reference in-toto-verify
(the installed console script) accepts on the real artifacts and rejects after any change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chain_helpers import (
    Chain,
    attest_evaluation,
    attest_test_result,
    attestation_id,
    build_chain,
    cli,
)

IN_TOTO_VERIFY = Path(sys.executable).parent / "in-toto-verify"
pytestmark = pytest.mark.skipif(
    not IN_TOTO_VERIFY.exists(), reason="in-toto is not installed in this environment"
)


@pytest.fixture
def chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Chain:
    return build_chain(tmp_path / "proj", monkeypatch, capsys)


def export(capsys: pytest.CaptureFixture[str], out: Path, *extra: str) -> dict[str, object]:
    code, stdout, err = cli(
        capsys, "export", "in-toto", "model.bin", "--out", str(out), "--format", "json", *extra
    )
    assert code == 0, err
    document: dict[str, object] = json.loads(stdout)
    return document


def released(chain: Chain, directory: Path) -> Path:
    """A directory holding exactly the artifacts: the dataset and the model, as trained."""
    directory.mkdir()
    shutil.copytree(chain.data, directory / "data")
    shutil.copy(chain.model, directory / "model.bin")
    return directory


def in_toto_verify(where: Path, out: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(IN_TOTO_VERIFY),
            "--layout",
            str(out / "root.layout"),
            "--verification-keys",
            str(key),
            "--link-dir",
            str(out),
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_in_toto_verify_passes_on_the_artifacts_and_fails_on_any_change(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "in-toto"
    document = export(capsys, out)
    assert document["steps"] == ["ingest", "train"]
    names = sorted(p.name for p in out.iterdir())
    keyid = str(document["keyid"])
    assert names == ["ingest." + keyid[:8] + ".link", "root.layout", "train." + keyid[:8] + ".link"]

    good = released(chain, tmp_path / "good")
    result = in_toto_verify(good, out, chain.public_key)
    assert result.returncode == 0, result.stderr
    assert in_toto_verify(good, out, chain.public_key).returncode == 0  # and again

    def fails(change: str) -> None:
        action, path = change.split()
        where = released(chain, tmp_path / f"{action}-{path.replace('/', '-')}")
        target = where / path
        if action == "edit":
            target.write_bytes(target.read_bytes() + b"9,9\n")
        elif action == "remove":
            target.unlink()
        else:
            target.write_bytes(b"x,label\n4,1\n")
        result = in_toto_verify(where, out, chain.public_key)
        assert result.returncode == 1, (change, result.stderr)

    fails("edit data/train/0.csv")
    fails("edit model.bin")
    fails("remove data/test/0.csv")
    fails("add data/train/extra.csv")

    # Another key cannot stand in for the layout's.
    code, _, _ = cli(capsys, "key", "generate", "other")
    assert code == 0
    result = in_toto_verify(good, out, chain.root / ".provenance" / "keys" / "other.pub")
    assert result.returncode == 1


def test_the_layout_chains_each_step_to_the_one_before(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attest_test_result(capsys, "data", "PASSED")  # screening
    attest_evaluation(capsys, "model.bin", collapsed=False)
    out = tmp_path / "in-toto"
    document = export(capsys, out)
    assert document["steps"] == ["ingest", "screen", "train", "evaluate"]
    layout = json.loads((out / "root.layout").read_text())["signed"]
    steps = {s["name"]: s for s in layout["steps"]}
    for step in steps.values():
        assert step["expected_materials"][-1] == ["DISALLOW", "*"]
        assert step["expected_products"][-1] == ["DISALLOW", "*"]
        assert step["pubkeys"] == [document["keyid"]]
    assert ["MATCH", "*", "IN", "data", "WITH", "PRODUCTS", "IN", "data", "FROM", "ingest"] in (
        steps["screen"]["expected_materials"]
    )
    assert ["MATCH", "*", "IN", "data", "WITH", "PRODUCTS", "IN", "data", "FROM", "screen"] in (
        steps["train"]["expected_materials"]
    )
    assert ["MATCH", "model.bin", "WITH", "PRODUCTS", "FROM", "train"] in (
        steps["evaluate"]["expected_materials"]
    )
    (inspection,) = layout["inspect"]
    assert inspection["expected_materials"][-1] == ["DISALLOW", "*"]
    link = json.loads(next(out.glob("train.*.link")).read_text())["signed"]
    assert sorted(link["materials"]) == ["data/test/0.csv", "data/train/0.csv", "data/train/1.csv"]
    assert list(link["products"]) == ["model.bin"]
    good = released(chain, tmp_path / "good")
    result = in_toto_verify(good, out, chain.public_key)
    assert result.returncode == 0, result.stderr


def test_a_chain_that_does_not_verify_is_not_exported(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = attestation_id(capsys, "https://ml-provenance.dev/attestation/dataset/v1")
    policy = tmp_path / "revoked.yaml"
    policy.write_text(
        chain.policy.read_text().replace("keys/default.pub", str(chain.public_key))
        + f"revoked:\n  attestations: ['{revoked}']\n"
    )
    out = tmp_path / "in-toto"
    code, _, err = cli(
        capsys, "export", "in-toto", "model.bin", "--out", str(out), "--policy", str(policy)
    )
    assert code == 1 and "does not verify" in err
    assert not out.exists()


def test_hostile_paths_in_training_provenance_are_refused(
    chain: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Provenance naming a material by a path outside the working directory (signed by the
    trusted key, so it is accepted) cannot become a link path."""
    digest = json.loads(
        cli(capsys, "verify", "model.bin", "--policy", str(chain.policy), "--format", "json")[1]
    )["root"]["inputs"][0]["digest"]
    algorithm, value = digest.split(":")
    # Newer than the real provenance and accepted by the policy, so it is the one exported.
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    predicate = {
        "buildDefinition": {
            "buildType": "https://ml-provenance.dev/buildtypes/training/v1",
            "externalParameters": {},
            "resolvedDependencies": [
                {
                    "name": "../../etc",
                    "digest": {algorithm: value},
                    "annotations": {"role": "material"},
                },
                {
                    "name": "source",
                    "digest": {"gitCommit": commit},
                    "annotations": {"role": "source", "dirty": False},
                },
            ],
        },
        "runDetails": {
            "builder": {"id": "https://example.org/builder"},
            "metadata": {"finishedOn": "2099-01-01T00:00:00Z"},
        },
    }
    (tmp_path / "p.json").write_text(json.dumps(predicate))
    code, _, err = cli(
        capsys,
        "attest",
        "model.bin",
        "--predicate-type",
        "https://slsa.dev/provenance/v1",
        "--predicate",
        str(tmp_path / "p.json"),
    )
    assert code == 0, err
    code, _, err = cli(capsys, "export", "in-toto", "model.bin", "--out", str(tmp_path / "o"))
    assert code == 2 and "not a safe relative path" in err
    assert not (tmp_path / "o").exists()


def test_steps_come_only_from_the_newest_successful_results(
    chain: Chain, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A later failed screening, an evaluation whose probe collapsed a class, or a test result
    of another check are no step done well: the layout leaves those steps out."""
    attest_test_result(capsys, "data", "PASSED")
    attest_test_result(capsys, "data", "FAILED")  # newer: supersedes the pass
    attest_evaluation(capsys, "model.bin", collapsed=True)
    assert export(capsys, tmp_path / "x")["steps"] == ["ingest", "train"]
