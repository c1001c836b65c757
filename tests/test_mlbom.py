"""provenance bom: a CycloneDX 1.6 ML-BOM of a trained model, only from a verified chain.

One real chain is built once (a project in a git work tree: two signed datasets, this
interpreter's environment SBOM, ``provenance run`` training a model from one dataset, an
evaluation statement on the other); tests that add to the ledger work on a copy of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.cli import main
from provenance.interop.mlbom import BomSchemaError, flatten_metrics, validate_bom
from tests.conftest import make_tree

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
EVALUATION = "https://ml-provenance.dev/attestation/evaluation/v1"
TRAIN = (
    "import pathlib; pathlib.Path('model.bin').write_bytes(b'weights');"
    "pathlib.Path('export').mkdir(); pathlib.Path('export/w.bin').write_bytes(b'w')"
)
METRICS = {
    "n": 10,
    "correct": 9,
    "accuracy": 0.9,
    "perClass": [
        {"label": 0, "support": 5, "predicted": 6, "precision": 0.75, "recall": 0.8},
        {"label": 1, "support": 5, "predicted": 4, "precision": 0.5, "recall": 1.0},
    ],
}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def strictly_valid(data: bytes) -> dict[str, Any]:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode("utf-8"))
    assert error is None, error
    document: dict[str, Any] = json.loads(data)
    return document


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digest_of(path: str) -> str:
    """The digest ``provenance digest`` prints (a directory's manifest root digest)."""
    from provenance.digest import digest_path

    return str(digest_path(Path(path)).digest)


def evaluation_predicate(dataset: str, name: str) -> dict[str, Any]:
    algorithm, value = dataset.split(":")
    return {
        "model": {"name": "model.bin"},
        "dataset": {"digest": {algorithm: value}, "path": name, "name": name},
        "metrics": METRICS,
        "probe": None,
        "baseline": None,
        "regression": {},
        "evaluatedAt": "2026-11-27T20:00:00Z",
        "loader": None,
        "tools": {},
    }


def attest_evaluation(root: Path, dataset: str, name: str, *key: str) -> None:
    path = root / f"evaluation-{name}.json"
    path.write_text(json.dumps(evaluation_predicate(dataset, name)))
    argv = ["attest", "model.bin", "--predicate-type", EVALUATION, "--predicate", str(path)]
    assert main([*argv, "--name", "model.bin", *key]) == 0


def policy_requiring_evaluations(root: Path) -> Path:
    """The project's starter policy, with an evaluation required of models."""
    text = (root / ".provenance" / "policy.yaml").read_text()
    training = (
        "      - predicateType: https://slsa.dev/provenance/v1\n        signedBy: [project]\n"
    )
    assert text.count(training) == 1
    evaluation = f"      - predicateType: {EVALUATION}\n        signedBy: [project]\n"
    path = root / ".provenance" / "evaluated.yaml"
    rule_end = "  environment:\n"  # the model rule's requirements end where the next rule starts
    assert text.count(rule_end) == 1
    path.write_text(text.replace(rule_end, evaluation + rule_end))
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("mlbom") / "proj"
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name, value in GIT_ENV.items():
            patch.setenv(name, value)
        patch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
        assert main(["init"]) == 0
        make_tree(root / "data", {"train/a.csv": b"x,y\n1,0\n", "train/b.csv": b"x,y\n2,1\n"})
        make_tree(root / "heldout", {"test/c.csv": b"x,y\n3,0\n"})
        (root / ".gitignore").write_text("model.bin\nexport/\n*.json\n")
        add = ["dataset", "add", "data", "--name", "digits-train", "--license", "CC0-1.0"]
        assert main([*add, "--source", "https://example.org/digits.tar"]) == 0
        assert main(["dataset", "add", "heldout", "--name", "digits-test"]) == 0
        assert main(["env", "sbom", "-o", "sbom.json"]) == 0
        for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
            subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)
        run = ["run", "--policy", ".provenance/policy.yaml", "--material", "data"]
        products = ["--product", "model.bin", "--product", "export"]
        assert main([*run, *products, "--", sys.executable, "-c", TRAIN]) == 0
        attest_evaluation(root, digest_of("heldout"), "digits-test")
        policy_requiring_evaluations(root)
    yield root


@pytest.fixture
def project(chain: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The chain's project as the working directory (not to be added to)."""
    monkeypatch.chdir(chain)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    return chain


@pytest.fixture
def copy(chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the chain's project to add to."""
    root = tmp_path / "proj"
    shutil.copytree(chain, root, symlinks=True)
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    return root


def bom(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict[str, Any], bytes, str]:
    code, _, err = cli(capsys, "bom", *argv, "-o", "bom.json")
    assert code == 0, err
    data = Path("bom.json").read_bytes()
    return strictly_valid(data), data, err


def by_ref(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document["components"]}


def properties(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def test_the_bom_describes_model_datasets_evaluation_and_environment(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document, data, err = bom(capsys, "model.bin", "--policy", ".provenance/evaluated.yaml")
    assert err == ""  # nothing was left out
    assert document["specVersion"] == "1.6"
    assert "serialNumber" not in document and "timestamp" not in document["metadata"]
    model = document["metadata"]["component"]
    model_ref = "sha256:" + sha256(project / "model.bin")
    assert model["type"] == "machine-learning-model" and model["name"] == "model.bin"
    assert model["bom-ref"] == model["version"] == model_ref
    assert model["hashes"] == [{"alg": "SHA-256", "content": sha256(project / "model.bin")}]
    assert properties(model, "ml-provenance:digest-of") == ["file"]
    assert properties(model, "ml-provenance:source-dirty") == ["false"]
    train, test = digest_of("data"), digest_of("heldout")
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": r} for r in sorted([train, test])]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "accuracy", "value": "0.9", "slice": test} in metrics
    assert {"type": "perClass.1.recall", "value": "1", "slice": test} in metrics
    assert not any(m["type"].endswith(".label") for m in metrics)

    components = by_ref(document)
    assert len(components) == len(document["components"])  # bom-refs are unique
    dataset = components[train]
    assert dataset["type"] == "data" and dataset["name"] == "digits-train"
    assert dataset["hashes"] == [{"alg": "SHA-256", "content": train.split(":")[1]}]
    assert dataset["data"] == [
        {
            "type": "dataset",
            "name": "digits-train",
            "contents": {"url": "https://example.org/digits.tar"},
        }
    ]
    assert dataset["licenses"] == [{"license": {"id": "CC0-1.0"}}]
    (source,) = dataset["externalReferences"]
    assert source["type"] == "distribution" and source["url"] == "https://example.org/digits.tar"
    assert properties(dataset, "ml-provenance:role") == ["training"]
    assert properties(dataset, "ml-provenance:files") == ["2"]
    code, out, _ = cli(capsys, "show", "data", "--format", "json")
    (shown,) = json.loads(out)["attestations"]
    assert properties(dataset, "ml-provenance:attestation-id") == [shown["id"]]
    assert components[test]["data"] == [{"type": "dataset", "name": "digits-test"}]
    assert properties(components[test], "ml-provenance:role") == ["evaluation"]

    environment = "sha256:" + sha256(project / "sbom.json")
    assert properties(model, "ml-provenance:environment") == [environment]
    platform = components[environment]
    assert platform["type"] == "platform" and platform["name"] == "python-environment"
    assert platform["hashes"] == [{"alg": "SHA-256", "content": environment.split(":")[1]}]
    sbom = json.loads((project / "sbom.json").read_bytes())
    libraries = {ref: c for ref, c in components.items() if ref.startswith(environment + "/")}
    assert len(libraries) == len(sbom["components"]) > 10
    assert {c["purl"] for c in libraries.values()} == {c["purl"] for c in sbom["components"]}

    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph[model_ref] == {train, environment}  # not the evaluation set
    assert graph[environment] == set(libraries)
    assert set(graph) <= set(components) | {model_ref}
    # The same chain always gives the same bytes.
    code, out, _ = cli(capsys, "bom", "model.bin", "--policy", ".provenance/evaluated.yaml")
    assert code == 0 and out.encode() == data


def test_a_directory_model_is_hashed_by_its_manifest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document, _, _ = bom(capsys, "export", "--policy", ".provenance/policy.yaml")
    model = document["metadata"]["component"]
    assert model["name"] == "export" and model["bom-ref"] == digest_of("export")
    assert properties(model, "ml-provenance:digest-of") == ["manifest"]


def test_evaluations_the_policy_does_not_accept_are_left_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document, _, err = bom(capsys, "model.bin", "--policy", ".provenance/policy.yaml")
    assert "1 evaluation attestation(s) left out" in err
    card = document["metadata"]["component"]["modelCard"]
    assert "quantitativeAnalysis" not in card
    assert card["modelParameters"]["datasets"] == [{"ref": digest_of("data")}]
    assert digest_of("heldout") not in by_ref(document)


def test_a_bundle_file_gives_the_same_bom_outside_the_project(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = ".provenance/evaluated.yaml"
    _, from_ledger, _ = bom(capsys, "model.bin", "--policy", policy)
    chain = tmp_path / "chain.jsonl"
    assert cli(capsys, "ledger", "export", "--for", "model.bin", "-o", str(chain))[0] == 0
    model = "sha256:" + sha256(project / "model.bin")
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(
        capsys, "bom", model, "--policy", str(project / policy), "--bundle", str(chain)
    )
    assert code == 0 and out.encode() == from_ledger


def test_an_unattested_model_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stray = project / "stray.bin"
    stray.write_bytes(b"never trained here")
    try:
        code, out, err = cli(capsys, "bom", str(stray), "--policy", ".provenance/policy.yaml")
    finally:
        stray.unlink()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "no SLSA training provenance names this model" in err
    # A dataset is attested, but not trained: no ML-BOM either.
    code, _, err = cli(capsys, "bom", "data", "--policy", ".provenance/policy.yaml")
    assert code == 1 and "no SLSA training provenance" in err


def test_an_unverified_chain_is_refused(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "key", "generate", "other")[0] == 0
    policy = (copy / ".provenance" / "policy.yaml").read_text()
    other = copy / ".provenance" / "other.yaml"
    other.write_text(policy.replace("keys/default.pub", "keys/other.pub"))
    assert "keys/other.pub" in other.read_text()
    code, out, err = cli(capsys, "bom", "model.bin", "--policy", str(other), "-o", "refused.json")
    assert code == 1 and out == "" and not (copy / "refused.json").exists()
    assert err.count("\n") == 1 and "refusing to describe an unverified chain" in err


def test_statements_from_untrusted_signers_are_not_described(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An evaluation signed by a key the policy does not trust, and one by the project key about
    # a held-out set no trusted signer attested.
    assert cli(capsys, "key", "generate", "other")[0] == 0
    make_tree(copy / "elsewhere", {"d.csv": b"x,y\n9,9\n"})
    attest_evaluation(copy, digest_of("heldout"), "forged", "--key", ".provenance/keys/other.key")
    attest_evaluation(copy, digest_of("elsewhere"), "elsewhere")
    capsys.readouterr()
    document, _, err = bom(capsys, "model.bin", "--policy", ".provenance/evaluated.yaml")
    assert "1 evaluation attestation(s) left out" in err
    assert f"evaluation dataset {digest_of('elsewhere')} is not trusted" in err
    metrics = document["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]
    slices = {m["slice"] for m in metrics["performanceMetrics"]}
    assert slices == {digest_of("heldout"), digest_of("elsewhere")}
    components = by_ref(document)
    assert components[digest_of("heldout")]["name"] == "digits-test"  # not "forged"
    unverified = components[digest_of("elsewhere")]
    assert unverified["data"] == [{"type": "dataset", "name": "elsewhere"}]
    assert properties(unverified, "ml-provenance:attestation-id") == []


def test_metrics_are_read_generically() -> None:
    metrics = {
        "accuracy": 0.25,
        "n": 4,
        "passed": True,
        "note": "text",
        "perClass": [{"label": "cat", "recall": 0.5}, {"label": "dog", "recall": 1e-20}],
        "matrix": [[1, 0], [2, 1]],
        "nested": {"loss": {"train": 0.1}},
        "missing": None,
    }
    assert flatten_metrics(metrics) == [
        ("accuracy", "0.25"),
        ("matrix.0.0", "1"),
        ("matrix.0.1", "0"),
        ("matrix.1.0", "2"),
        ("matrix.1.1", "1"),
        ("n", "4"),
        ("nested.loss.train", "0.1"),
        ("perClass.cat.recall", "0.5"),
        ("perClass.dog.recall", "1e-20"),
    ]
    # Entries whose labels repeat are kept apart by position.
    twice = flatten_metrics({"c": [{"label": 1, "f": 2}, {"label": 1, "f": 3}]})
    assert twice == [("c.0.f", "2"), ("c.0.label", "1"), ("c.1.f", "3"), ("c.1.label", "1")]
    assert flatten_metrics(3) == [] and flatten_metrics(None) == []


def test_validation_fails_loudly_on_a_bad_bom_and_quietly_without_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [{}]}
    with pytest.raises(BomSchemaError):
        validate_bom(json.dumps(bad).encode())
    good = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}
    assert validate_bom(json.dumps(good).encode()) is True
    from cyclonedx.exception import MissingOptionalDependencyException
    from cyclonedx.validation.json import JsonStrictValidator

    def missing(*args: object, **kwargs: object) -> None:
        raise MissingOptionalDependencyException("no jsonschema")

    monkeypatch.setattr(JsonStrictValidator, "validate_str", missing)
    assert validate_bom(json.dumps(bad).encode()) is False


def test_an_invalid_bom_is_an_internal_error_and_is_not_written(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenance.interop import mlbom

    real = mlbom.describe_model

    def broken(*args: Any, **kwargs: Any) -> mlbom.MlBom:
        result = real(*args, **kwargs)
        document = json.loads(result.data)
        del document["metadata"]["component"]["name"]
        return dataclasses.replace(result, data=json.dumps(document).encode())

    monkeypatch.setattr(mlbom, "describe_model", broken)
    code, out, err = cli(
        capsys, "bom", "model.bin", "--policy", ".provenance/policy.yaml", "-o", "invalid.json"
    )
    assert code == 3 and out == "" and not (project / "invalid.json").exists()
    assert err.startswith("provenance: internal error: BomSchemaError")
