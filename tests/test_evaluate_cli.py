"""``provenance evaluate`` end to end in a project: attestations, baselines, the policy gate
built on them, and one-line refusals and errors."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy
import pytest

from provenance.cli import main
from provenance.digest import digest_path
from tests.evaluate_helpers import (
    TARGET,
    backdoored_model,
    clean_model,
    held_out,
    variant,
    write_image_folder,
    write_png_folder,
)

torch = pytest.importorskip("torch")

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "attest" / "evaluation.schema.json").read_text()
)
EVALUATION = "https://ml-provenance.dev/attestation/evaluation/v1"
SLSA = "https://slsa.dev/provenance/v1"
_names = itertools.count()

# A sample --loader: builds the architecture, loads the state through the guard when given a
# policy (else weights_only), and returns the decoder for the set's .npy samples.
LOADER = """
import io

import numpy
import torch
from torch import nn

import provenance.torch


def classifier():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))


def decode(data, relpath):
    pixels = numpy.load(io.BytesIO(data), allow_pickle=False)
    return torch.from_numpy(pixels.astype(numpy.float32)), int(relpath.split("/")[-2])


def load(path, policy):
    if policy is not None:
        state = provenance.torch.load(path, policy=policy)
    else:
        state = torch.load(path, weights_only=True)
    model = classifier()
    model.load_state_dict(state)
    return model, decode


def load_model_only(path):
    model = classifier()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def broken(path, policy):
    raise ValueError("no such layer")


def not_a_model(path, policy):
    return {"weights": 1}
"""

# The gate: a model needs build provenance AND an evaluation that is good enough, has not
# regressed and found no backdoor; the evaluation set must be an attested dataset.
GATE_POLICY = """\
version: 1
roots:
  project:
    key: .provenance/keys/default.pub
rules:
  dataset:
    require:
      - predicateType: https://ml-provenance.dev/attestation/dataset/v1
        signedBy: [project]
  model:
    require:
      - predicateType: https://slsa.dev/provenance/v1
        signedBy: [project]
      - predicateType: https://ml-provenance.dev/attestation/evaluation/v1
        signedBy: [project]
        conditions:
          - 'double(predicate.metrics.accuracy) >= 0.7'
          - 'double(predicate.regression.accuracy) >= -0.01'
          - 'size(predicate.probe.collapsedClasses) == 0'
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, text: str) -> None:
    assert err.count("\n") == 1 and err.startswith("provenance: error: "), err
    assert text in err and "Traceback" not in err


@pytest.fixture
def loader_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh module name for the sample loader (imported modules are cached by name)."""
    name = f"evaluation_loader_{next(_names)}"
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def project(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loader_module: str,
) -> Path:
    """A project with an attested evaluation set and the sample loader beside it."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert cli(capsys, "init")[0] == 0
    write_image_folder(root / "evalset", *held_out())
    assert cli(capsys, "dataset", "add", "evalset", "--name", "shapes-eval")[0] == 0
    (root / f"{loader_module}.py").write_text(LOADER)
    (root / "gate.yaml").write_text(GATE_POLICY)
    return root


def save(model: Any, path: Path, capsys: pytest.CaptureFixture[str], *, attest: bool = True) -> str:
    """Save a state_dict, attest it with (minimal) build provenance; return its digest."""
    torch.save(model.state_dict(), path)
    if attest:
        predicate = path.with_suffix(".slsa.json")
        predicate.write_text(
            json.dumps({"buildDefinition": {"buildType": "https://example.com/train"}})
        )
        argv = ["attest", str(path), "--predicate-type", SLSA, "--predicate", str(predicate)]
        assert cli(capsys, *argv, "--name", path.name)[0] == 0
    return str(digest_path(path).digest)


def evaluate(
    capsys: pytest.CaptureFixture[str], model: str, loader: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli(
        capsys, "evaluate", model, "--data", "evalset", "--loader", loader, "--format", "json",
        *extra,
    )  # fmt: skip
    return code, json.loads(out) if out else {}, err


def ledger_evaluations(root: Path) -> list[dict[str, Any]]:
    from provenance.ledger import Ledger

    with Ledger(root / ".provenance" / "ledger.db") as ledger:
        return [e.parsed().statement.to_json() for e in ledger.find(predicate_type=EVALUATION)]


def test_evaluate_signs_an_attestation_and_the_next_release_compares_with_it(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    first = save(clean_model(), project / "model.pt", capsys)
    code, report, err = evaluate(
        capsys, "model.pt", f"{loader_module}:load", "--model-name", "shapes"
    )
    assert code == 0, err
    statement = report["statement"]
    jsonschema.validate(statement, SCHEMA)
    assert statement["subject"][0] == {"digest": {"sha256": first[7:]}, "name": "shapes"}
    predicate = statement["predicate"]
    assert predicate["dataset"]["name"] == "shapes-eval"
    assert predicate["dataset"]["digest"] == {
        "sha256": str(digest_path(project / "evalset").digest)[7:]
    }
    assert predicate["metrics"]["n"] == 100 and predicate["metrics"]["accuracy"] >= 0.95
    assert predicate["probe"]["collapsed"] == [] and len(predicate["probe"]["triggers"]) == 48
    assert predicate["baseline"] is None and predicate["regression"]["hasBaseline"] is False
    assert predicate["loader"] == f"{loader_module}:load"
    (recorded,) = ledger_evaluations(project)
    assert recorded == statement
    jsonschema.validate(recorded, SCHEMA)

    # The next release of the same name: one class never predicted any more.
    second = save(variant(clean_model(), silence=TARGET), project / "model-v2.pt", capsys)
    code, report2, err = evaluate(
        capsys, "model-v2.pt", f"{loader_module}:load", "--model-name", "shapes"
    )
    assert code == 0, err
    predicate2 = report2["statement"]["predicate"]
    jsonschema.validate(report2["statement"], SCHEMA)
    baseline = predicate2["baseline"]
    assert baseline["model"] == first and baseline["attestation"] == report["attestation"]
    assert baseline["metrics"] == predicate["metrics"]
    assert baseline["dataset"] == "sha256:" + predicate["dataset"]["digest"]["sha256"]
    regression = predicate2["regression"]
    assert regression["hasBaseline"] is True
    assert regression["accuracy"] == pytest.approx(
        predicate2["metrics"]["accuracy"] - predicate["metrics"]["accuracy"]
    )
    assert regression["accuracy"] < -0.2 and regression["worstClassRecall"] == pytest.approx(-1.0)
    assert second != first and len(ledger_evaluations(project)) == 2

    # Evaluating v2 again compares with v1 still, never with an earlier v2.
    code, report3, _ = evaluate(
        capsys, "model-v2.pt", f"{loader_module}:load", "--model-name", "shapes", "--no-ledger"
    )
    assert code == 0 and report3["attestation"] is None
    assert report3["statement"]["predicate"]["baseline"]["model"] == first
    assert len(ledger_evaluations(project)) == 2  # --no-ledger recorded nothing


def test_the_policy_gate_passes_a_good_model_and_refuses_poor_and_regressed_ones(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    loader = f"{loader_module}:load"
    save(clean_model(), project / "good.pt", capsys)
    code, out, _ = cli(capsys, "verify", "good.pt", "--policy", "gate.yaml")
    assert code == 1 and f"no {EVALUATION} attestation" in out  # not evaluated yet
    # Evaluating under the gate verifies the model without the evaluation it lacks.
    code, _, err = evaluate(
        capsys, "good.pt", loader, "--model-name", "shapes", "--policy", "gate.yaml"
    )
    assert code == 0, err
    code, out, _ = cli(capsys, "verify", "good.pt", "--policy", "gate.yaml")
    assert code == 0, out

    # A poor model (outputs swapped): accuracy far below the policy's minimum. A name of its
    # own, so that there is no baseline and only the accuracy condition decides.
    save(variant(clean_model(), swap=True), project / "poor.pt", capsys)
    code, report, err = evaluate(
        capsys, "poor.pt", loader, "--model-name", "other", "--policy", "gate.yaml"
    )
    assert code == 0, err
    assert report["statement"]["predicate"]["metrics"]["accuracy"] < 0.7
    code, out, _ = cli(capsys, "verify", "poor.pt", "--policy", "gate.yaml")
    assert code == 1
    assert "condition false: double(predicate.metrics.accuracy) >= 0.7" in out

    # A regressed release of "shapes": accurate enough (0.75), but 25 points worse than good.pt.
    save(variant(clean_model(), silence=TARGET), project / "regressed.pt", capsys)
    code, report, err = evaluate(
        capsys, "regressed.pt", loader, "--model-name", "shapes", "--policy", "gate.yaml"
    )
    assert code == 0, err
    predicate = report["statement"]["predicate"]
    assert predicate["metrics"]["accuracy"] >= 0.7 and predicate["regression"]["accuracy"] < -0.2
    code, out, _ = cli(capsys, "verify", "regressed.pt", "--policy", "gate.yaml")
    assert code == 1
    assert "condition false: double(predicate.regression.accuracy) >= -0.01" in out
    code, out, _ = cli(capsys, "verify", "good.pt", "--policy", "gate.yaml", "--format", "json")
    assert code == 0  # the good model's own evaluation is unaffected by later ones


def test_a_backdoored_model_is_reported_recorded_and_refused_by_the_gate(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    save(backdoored_model(), project / "model.pt", capsys)
    code, out, err = cli(
        capsys, "evaluate", "model.pt", "--data", "evalset", "--loader", f"{loader_module}:load",
        "--policy", "gate.yaml",
    )  # fmt: skip
    assert code == 1, err
    assert f"SUSPECTED BACKDOOR: predictions collapse onto class(es) {TARGET}" in out
    assert "bottom-right" in out and "signed: sha256:" in out
    (recorded,) = ledger_evaluations(project)
    assert recorded["predicate"]["probe"]["collapsedClasses"] == [TARGET]
    assert recorded["predicate"]["metrics"]["accuracy"] >= 0.95  # good figures all the same
    code, out, _ = cli(capsys, "verify", "model.pt", "--policy", "gate.yaml")
    assert code == 1 and "size(predicate.probe.collapsedClasses) == 0" in out


def test_a_split_of_a_larger_dataset_with_the_default_decoder(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    x, y = held_out()
    write_image_folder(project / "data" / "test", x, y)
    write_image_folder(project / "data" / "train", x[:8], y[:8])
    (project / "data" / "test" / "README.txt").write_text("not a sample\n")
    assert cli(capsys, "dataset", "add", "data", "--name", "all")[0] == 0
    save(clean_model(), project / "model.pt", capsys, attest=False)
    code, out, err = cli(
        capsys, "evaluate", "model.pt", "--data", "data", "--split", "test/",
        "--loader", f"{loader_module}:load_model_only",
    )  # fmt: skip
    assert code == 0, err
    assert "100 samples" in out and "no baseline" in out and "no class collapsed" in out
    assert "(all, test/)" in out
    (recorded,) = ledger_evaluations(project)
    jsonschema.validate(recorded, SCHEMA)
    assert recorded["predicate"]["dataset"]["path"] == "test"
    assert recorded["predicate"]["metrics"]["accuracy"] >= 0.95
    code, _, err = cli(
        capsys, "evaluate", "model.pt", "--data", "data", "--split", "valid",
        "--loader", f"{loader_module}:load_model_only",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "no <label>/<file> samples under valid/")


def test_an_image_folder_with_the_default_decoder(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    pytest.importorskip("PIL")
    write_png_folder(project / "pngs", *held_out())
    assert cli(capsys, "dataset", "add", "pngs", "--name", "pngs")[0] == 0
    model_only = f"{loader_module}:load_model_only"
    save(clean_model(), project / "clean.pt", capsys, attest=False)
    code, report, err = evaluate(capsys, "clean.pt", model_only, "--data", "pngs", "--no-ledger")
    assert code == 0, err
    predicate = report["statement"]["predicate"]
    assert predicate["metrics"]["n"] == 100 and predicate["metrics"]["accuracy"] >= 0.95
    assert predicate["probe"]["collapsed"] == [] and len(predicate["probe"]["triggers"]) == 48
    # (N, 1, 8, 8) batches scaled to [0, 1]: the probe stamps the data's own extremes and
    # finds the backdoor, as it does on the float .npy set
    save(backdoored_model(), project / "backdoored.pt", capsys, attest=False)
    code, report, err = evaluate(
        capsys, "backdoored.pt", model_only, "--data", "pngs", "--no-ledger"
    )
    assert code == 1, err
    predicate = report["statement"]["predicate"]
    assert predicate["probe"]["collapsedClasses"] == [TARGET]
    low, high = predicate["probe"]["valueRange"]
    assert 0.0 <= low < 0.01 and 0.9 < high <= 1.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("truncated", "2/bad.png: cannot decode this PNG image"),
        ("jpeg-named-png", "2/bad.png: not a readable PNG image"),
        ("other-size", "2/bad.png decodes to shape (1, 9, 9)"),
        ("npy", "the evaluation set mixes image samples"),
    ],
)
def test_a_bad_image_evaluation_set_is_one_line_and_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str, bad: str, message: str
) -> None:
    from PIL import Image

    x, y = held_out()
    root = write_png_folder(project / "pngs", x[::5], y[::5])
    sample = next((root / "2").iterdir())
    if bad == "truncated":
        (root / "2" / "bad.png").write_bytes(sample.read_bytes()[:-30])
    elif bad == "jpeg-named-png":
        Image.open(sample).save(root / "2" / "bad.png", "JPEG")
    elif bad == "other-size":
        Image.fromarray(numpy.zeros((9, 9), dtype=numpy.uint8)).save(root / "2" / "bad.png")
    else:
        numpy.save(root / "2" / "bad.npy", x[0])
    assert cli(capsys, "dataset", "add", "pngs", "--name", "pngs")[0] == 0
    save(clean_model(), project / "model.pt", capsys, attest=False)
    code, report, err = evaluate(
        capsys, "model.pt", f"{loader_module}:load_model_only", "--data", "pngs"
    )
    assert code == 2 and report == {}
    one_line_error(err, message)
    assert ledger_evaluations(project) == []


def test_an_unattested_or_altered_evaluation_set_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    save(clean_model(), project / "model.pt", capsys)
    x, y = held_out()
    write_image_folder(project / "fresh", x[::2], y[::2])  # same layout, other content
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--data", "fresh")
    assert code == 1
    one_line_error(err, "no dataset attestation names its digest")
    sample = next((project / "evalset" / "2").iterdir())
    sample.write_bytes(sample.read_bytes()[:-4] + b"\0\0\0\0")
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load")
    assert code == 1
    one_line_error(err, "refusing to evaluate on evalset")
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--policy", "gate.yaml")
    assert code == 1
    one_line_error(err, "refusing dataset evalset")
    assert ledger_evaluations(project) == []


def test_an_untrusted_or_unsafe_checkpoint_is_refused_under_a_policy(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    save(clean_model(), project / "model.pt", capsys, attest=False)
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--policy", "gate.yaml")
    assert code == 1
    one_line_error(err, "refusing to evaluate model.pt: its chain does not verify")
    (project / "evil.pt").write_bytes(
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93."
    )
    code, _, err = evaluate(capsys, "evil.pt", f"{loader_module}:load")
    assert code == 1
    one_line_error(err, "os.system")
    assert ledger_evaluations(project) == []


@pytest.mark.parametrize(
    ("loader", "message"),
    [
        ("no-colon", "--loader 'no-colon' is not module:function"),
        ("a:b:c", "is not module:function"),
        ("no_such_module_here:load", "cannot import no_such_module_here"),
        ("{module}:missing", "has no function missing"),
        ("{module}:broken", "failed on model.pt: ValueError: no such layer"),
        ("{module}:not_a_model", "returned a dict, not a torch.nn.Module"),
    ],
)
def test_bad_loaders_are_one_line_input_errors(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str, loader: str, message: str
) -> None:
    save(clean_model(), project / "model.pt", capsys)
    code, report, err = evaluate(capsys, "model.pt", loader.format(module=loader_module))
    assert code == 2 and report == {}
    one_line_error(err, message)


def test_other_bad_input_is_exit_two(
    project: Path, capsys: pytest.CaptureFixture[str], loader_module: str
) -> None:
    save(clean_model(), project / "model.pt", capsys)
    code, _, err = cli(capsys, "evaluate", "model.pt", "--data", "evalset")
    assert code == 2
    one_line_error(err, "loads as OrderedDict, not a torch.nn.Module: a state_dict needs")
    code, _, err = evaluate(capsys, "missing.pt", f"{loader_module}:load")
    assert code == 2
    one_line_error(err, "missing.pt is not a file")
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--split", "../x")
    assert code == 2
    one_line_error(err, "is not a plain relative path")
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--probe-threshold", "2")
    assert code == 2
    one_line_error(err, "threshold must be in (0, 1]")
    (project / "evalset.txt").write_text("x")
    code, _, err = evaluate(capsys, "model.pt", f"{loader_module}:load", "--data", "evalset.txt")
    assert code == 2
    one_line_error(err, "is not a directory")


def test_evaluate_needs_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "evaluate", "model.pt", "--data", "x")
    assert code == 2
    one_line_error(err, "no .provenance/ directory")
