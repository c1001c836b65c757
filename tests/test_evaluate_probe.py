"""The backdoor probe and the torch evaluation pass: a backdoored model is caught, a clean one is
not, and every statement matches the evaluation schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy
import pytest

from provenance.digest.algorithms import Algorithm, Digest
from provenance.errors import InputError

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from provenance.evaluate.api import Evaluation, evaluate_model  # noqa: E402
from provenance.evaluate.probe import (  # noqa: E402
    FlipCounter,
    ProbeConfig,
    Trigger,
    image_shape,
    stamp,
)
from tests.evaluate_helpers import (  # noqa: E402
    TARGET,
    backdoored_model,
    clean_model,
    images,
    train,
)
from tests.evaluate_helpers import held_out as evaluation_set  # noqa: E402

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "attest" / "evaluation.schema.json").read_text()
)
DATASET = Digest.of_bytes(Algorithm.SHA256, b"evaluation set")
MODEL = Digest.of_bytes(Algorithm.SHA256, b"model")


def validate(document: Any) -> None:
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())


def held_out(batch_size: int = 50) -> DataLoader[Any]:
    x, y = evaluation_set()
    return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size)


def evaluate(model: Any, loader: Any = None, **options: Any) -> Evaluation:
    return evaluate_model(
        model,
        loader if loader is not None else held_out(),
        dataset_digest=DATASET,
        model_digest=MODEL,
        model_name="shapes",
        **options,
    )


# -- stamping ---------------------------------------------------------------------------------


def test_patches_are_stamped_in_their_corner_in_every_channel() -> None:
    batch = torch.full((2, 3, 6, 5), 0.5)
    out = stamp(batch, Trigger("solid-high", 2, "bottom-right"), 0.0, 1.0)
    assert torch.equal(out[:, :, 4:6, 3:5], torch.ones(2, 3, 2, 2))
    out[:, :, 4:6, 3:5] = 0.5
    assert torch.equal(out, batch)  # nothing else changed, and the input is untouched
    assert float(batch.max()) == 0.5
    low = stamp(batch, Trigger("solid-low", 1, "top-right"), -1.0, 1.0)
    assert float(low[0, 0, 0, 4]) == -1.0 and float(low[0, 0, 0, 3]) == 0.5
    checker = stamp(torch.zeros(1, 4, 4), Trigger("checkerboard", 3, "top-left"), 0.0, 9.0)
    assert checker[0, :3, :3].tolist() == [[9, 0, 9], [0, 9, 0], [9, 0, 9]]
    inverse = stamp(torch.zeros(1, 4, 4), Trigger("checkerboard-inverted", 2, "bottom-left"), 0, 9)
    assert inverse[0, 2:, :2].tolist() == [[0, 9], [9, 0]]


def test_default_triggers_cover_patterns_corners_and_sizes() -> None:
    triggers = ProbeConfig().triggers(8, 8)
    assert len(triggers) == 4 * 4 * 3
    assert sorted({t.size for t in triggers}) == [1, 2, 3]
    assert sorted({t.size for t in ProbeConfig().triggers(28, 32)}) == [4, 7, 10]
    assert len({t.id for t in triggers}) == len(triggers)
    with pytest.raises(InputError, match="do not fit"):
        ProbeConfig(sizes=(9,)).triggers(8, 8)
    with pytest.raises(InputError, match="threshold"):
        ProbeConfig(threshold=0)
    with pytest.raises(InputError, match="pattern"):
        Trigger("stripes", 1, "top-left")


def test_only_image_batches_are_probed() -> None:
    assert image_shape(torch.zeros(2, 3, 4, 5)) == (4, 5)
    with pytest.raises(InputError, match=r"\(2, 64\)"):
        image_shape(torch.zeros(2, 64))
    with pytest.raises(InputError, match="floating-point"):
        image_shape(torch.zeros(2, 8, 8, dtype=torch.int64))


def test_flip_rates_count_only_inputs_that_were_not_already_the_target() -> None:
    counter = FlipCounter(3)
    labels = numpy.array([0, 0, 1, 1, 2, 2])
    clean = numpy.array([0, 2, 1, 1, 2, 2])  # sample 1 was already (wrongly) called 2
    stamped = numpy.array([2, 2, 2, 1, 2, 2])
    counter.add("t", labels, clean, stamped)
    flip = counter.strongest("t")
    # Eligible for target 2: true label not 2 and clean prediction not 2 -> samples 0, 2, 3.
    assert (flip.target, flip.flipped, flip.eligible) == (2, 2, 3)
    assert flip.rate == pytest.approx(2 / 3)
    counter.add("t", labels, clean, clean)  # a second batch that flips nothing
    assert counter.strongest("t").rate == pytest.approx(2 / 6)


# -- the evaluation pass ------------------------------------------------------------------------


def test_a_backdoored_model_is_caught_and_a_clean_one_passes() -> None:
    clean = evaluate(clean_model())
    assert clean.metrics.accuracy >= 0.95
    assert clean.probe is not None and not clean.probe.collapsed
    assert not clean.backdoor_suspected
    assert max(f.rate for f in clean.probe.flips) < 0.2

    bad = evaluate(backdoored_model())
    assert bad.metrics.accuracy >= 0.95  # the backdoor hides behind good figures
    assert bad.backdoor_suspected
    assert bad.probe is not None and bad.probe.collapsed_classes == (TARGET,)
    worst = max(bad.probe.collapsed, key=lambda f: f.rate)
    assert worst.trigger.endswith("bottom-right") and worst.rate > 0.9
    assert all(f.trigger.endswith("bottom-right") for f in bad.probe.collapsed)
    for evaluation in (clean, bad):
        validate(evaluation.statement().to_json())


def test_statement_shape_and_batches_do_not_change_the_figures() -> None:
    one = evaluate(clean_model(), held_out(batch_size=100))
    other = evaluate(clean_model(), held_out(batch_size=7))
    assert one.metrics == other.metrics
    assert one.probe is not None and other.probe is not None
    assert one.probe.flips == other.probe.flips
    document = one.statement().to_json()
    validate(document)
    assert document["subject"] == [{"digest": MODEL.as_dict(), "name": "shapes"}]
    predicate = document["predicate"]
    assert predicate["dataset"] == {"digest": DATASET.as_dict(), "path": None}
    assert predicate["metrics"]["n"] == 100
    # The patch values are the data's extremes, as the first batch shows them.
    assert predicate["probe"]["valueRange"] == [
        pytest.approx(0.0, abs=0.01),
        pytest.approx(1.0, abs=0.02),
    ]
    assert predicate["baseline"] is None
    assert predicate["regression"] == {"hasBaseline": False, "accuracy": 0, "worstClassRecall": 0}
    assert set(predicate["tools"]) == {"ml-provenance", "python", "torch", "numpy"}


def test_the_model_mode_is_restored_and_the_probe_can_be_skipped() -> None:
    model = train(*images(5, seed=3), steps=5)
    model.train()
    evaluation = evaluate(model, probe=None)
    assert model.training
    assert evaluation.probe is None and not evaluation.backdoor_suspected
    validate(evaluation.statement().to_json())


def test_unusable_inputs_and_outputs_are_input_errors() -> None:
    flat = DataLoader(TensorDataset(torch.zeros(4, 64), torch.zeros(4, dtype=torch.int64)), 2)
    with pytest.raises(InputError, match="stamps patches on images"):
        evaluate(clean_model(), flat)
    assert evaluate(clean_model(), flat, probe=None).metrics.n == 4
    empty = DataLoader(TensorDataset(torch.zeros(0, 8, 8), torch.zeros(0, dtype=torch.int64)))
    with pytest.raises(InputError, match="no samples"):
        evaluate(clean_model(), empty)
    wrong = DataLoader(TensorDataset(torch.zeros(2, 8, 8), torch.tensor([0, 7])), 2)
    with pytest.raises(InputError, match="label 7 is outside the model's 4 classes"):
        evaluate(clean_model(), wrong)
    with pytest.raises(InputError, match=r"scores; it returned \(50, 8, 8\)"):
        evaluate(torch.nn.Identity(), held_out())
    with pytest.raises(InputError, match=r"failed on a batch of shape \(50, 8, 8\): RuntimeError"):
        evaluate(torch.nn.Linear(10, 2), held_out())
    with pytest.raises(InputError, match=r"\(inputs, labels\)"):
        evaluate(clean_model(), [torch.zeros(2, 8, 8)])


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(extra=1),
        lambda p: p["regression"].update(hasBaseline=True),  # with baseline null
        lambda p: p["regression"].update(accuracy=0.1),  # a delta without a baseline
        lambda p: p["metrics"].update(accuracy=1.5),
        lambda p: p["metrics"]["perClass"][0].pop("recall"),
        lambda p: p["probe"].update(method="other/v1"),
        lambda p: p["probe"]["triggers"][0].update(corner="middle"),
        lambda p: p["dataset"].update(path="/abs"),
        lambda p: p.update(loader="not a spec"),
        lambda p: p.update(evaluatedAt="yesterday"),
        lambda p: p["tools"].pop("ml-provenance"),
        lambda p: p.update(baseline={"model": "sha256:" + "a" * 64}),
    ],
)
def test_the_schema_refuses_malformed_predicates(change: Any) -> None:
    document = evaluate(clean_model(), held_out(batch_size=100)).statement().to_json()
    validate(document)
    change(document["predicate"])
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_the_statement_builder_checks_names_and_times() -> None:
    evaluation = evaluate(clean_model(), probe=None)
    from dataclasses import replace

    from provenance.errors import FormatError

    with pytest.raises(FormatError, match="model's name"):
        replace(evaluation, model_name="").statement()
    with pytest.raises(FormatError, match="RFC 3339"):
        replace(evaluation, evaluated_at="2026-01-01 00:00").statement()


def test_the_package_exports_the_api_lazily_and_the_cli_imports_no_torch() -> None:
    import subprocess
    import sys

    import provenance.evaluate

    assert provenance.evaluate.evaluate_model is evaluate_model
    assert provenance.evaluate.Evaluation is Evaluation
    code = (
        "import sys; from provenance.cli import build_parser; build_parser(); "
        "import provenance.evaluate; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
