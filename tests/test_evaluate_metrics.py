"""Evaluation figures on known confusion matrices; the baseline and the regression against it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy
import pytest

from provenance.bundle import Bundle
from provenance.digest.algorithms import Algorithm, Digest
from provenance.errors import FormatError, InputError
from provenance.evaluate.baseline import (
    Baseline,
    find_baseline,
    regression,
    trusted_for_evaluations,
)
from provenance.evaluate.metrics import Metrics, confusion_matrix, metrics_from_confusion
from provenance.ledger import Ledger
from provenance.policy.load import parse_policy
from provenance.predicates.evaluation import evaluation_statement
from provenance.signing.keys import KeySigner

EVALUATOR = KeySigner.generate()
STRANGER = KeySigner.generate()


def digest(text: str) -> Digest:
    return Digest.of_bytes(Algorithm.SHA256, text.encode())


def test_confusion_matrix_counts_true_rows_against_predicted_columns() -> None:
    matrix = confusion_matrix([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_figures_of_a_known_matrix() -> None:
    # rows: true 0, 1, 2; columns: predicted 0, 1, 2
    matrix = numpy.array([[8, 2, 0], [1, 6, 3], [0, 0, 10]], dtype=numpy.int64)
    metrics = metrics_from_confusion(matrix)
    assert (metrics.n, metrics.correct) == (30, 24)
    assert metrics.accuracy == pytest.approx(24 / 30)
    by_label = {c.label: c for c in metrics.per_class}
    assert by_label[0].precision == pytest.approx(8 / 9)
    assert by_label[0].recall == pytest.approx(8 / 10)
    assert by_label[1].precision == pytest.approx(6 / 8)
    assert by_label[1].recall == pytest.approx(6 / 10)
    assert by_label[2].precision == pytest.approx(10 / 13)
    assert by_label[2].recall == 1.0
    assert [(c.support, c.predicted) for c in metrics.per_class] == [(10, 9), (10, 8), (10, 13)]


def test_undefined_ratios_are_zero_and_silent_classes_are_left_out() -> None:
    # Class 1 has no samples but is predicted; class 2 is never predicted; class 3 is neither.
    matrix = numpy.array(
        [[3, 1, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=numpy.int64
    )
    metrics = metrics_from_confusion(matrix)
    assert [c.label for c in metrics.per_class] == [0, 1, 2]
    by_label = {c.label: c for c in metrics.per_class}
    assert (by_label[1].precision, by_label[1].recall) == (0.0, 0.0)
    assert (by_label[2].precision, by_label[2].recall) == (0.0, 0.0)
    assert metrics.recall_of(1) is None  # no samples: no recall to compare with
    assert metrics.recall_of(2) == 0.0


def test_a_perfect_and_an_empty_evaluation() -> None:
    perfect = metrics_from_confusion(confusion_matrix([0, 1, 1], [0, 1, 1], 2))
    assert perfect.accuracy == 1.0
    assert all(c.precision == c.recall == 1.0 for c in perfect.per_class)
    empty = metrics_from_confusion(numpy.zeros((2, 2), dtype=numpy.int64))
    assert (empty.n, empty.accuracy, empty.per_class) == (0, 0.0, ())


@pytest.mark.parametrize(
    ("labels", "predictions", "classes", "message"),
    [
        ([0, 3], [0, 1], 3, "label 3 is outside"),
        ([0, 1], [0, -1], 3, "prediction -1 is outside"),
        ([0, 1], [0], 3, "2 labels but 1 predictions"),
        ([0], [0], 0, "at least one class"),
    ],
)
def test_labels_the_model_cannot_output_are_errors(
    labels: list[int], predictions: list[int], classes: int, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        confusion_matrix(labels, predictions, classes)


def test_non_square_or_negative_matrices_are_refused() -> None:
    with pytest.raises(InputError, match="square"):
        metrics_from_confusion(numpy.zeros((2, 3), dtype=numpy.int64))
    with pytest.raises(InputError, match="negative"):
        metrics_from_confusion(numpy.array([[1, -1], [0, 1]], dtype=numpy.int64))


def test_metrics_survive_the_json_of_a_signed_statement() -> None:
    metrics = metrics_from_confusion(confusion_matrix([0, 0, 1, 1], [0, 0, 1, 0], 2))
    document = metrics.to_json()
    assert Metrics.from_json(document, what="x") == metrics
    # Canonical JSON writes 1.0 as 1: integral ratios come back as ints and are accepted.
    document["perClass"][0]["precision"] = 1
    assert Metrics.from_json(document, what="x").per_class[0].precision == 1.0


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("correct"),
        lambda d: d.update(correct=9),
        lambda d: d.update(n=True),
        lambda d: d.update(perClass="none"),
        lambda d: d["perClass"][0].update(recall=1.5),
        lambda d: d["perClass"][0].pop("label"),
    ],
)
def test_malformed_metrics_are_refused(change: Any) -> None:
    document = metrics_from_confusion(confusion_matrix([0, 1], [0, 1], 2)).to_json()
    change(document)
    with pytest.raises(FormatError):
        Metrics.from_json(document, what="baseline")


def figures(correct_per_class: list[int], support: int = 10) -> Metrics:
    """Metrics where class i has ``correct_per_class[i]`` of ``support`` right (errors -> 0)."""
    labels: list[int] = []
    predictions: list[int] = []
    for label, correct in enumerate(correct_per_class):
        labels += [label] * support
        predictions += [label] * correct + [0 if label else 1] * (support - correct)
    return metrics_from_confusion(confusion_matrix(labels, predictions, len(correct_per_class)))


def test_regression_without_a_baseline_is_zero_and_says_so() -> None:
    delta = regression(figures([10, 9]), None)
    assert delta.to_json() == {"hasBaseline": False, "accuracy": 0.0, "worstClassRecall": 0.0}


def test_regression_names_the_accuracy_delta_and_the_worst_class() -> None:
    then = Baseline(digest("old"), "sha256:" + "0" * 64, figures([10, 10, 10]))
    now = figures([10, 10, 7])
    delta = regression(now, then)
    assert delta.has_baseline
    assert delta.accuracy == pytest.approx(27 / 30 - 1.0)
    assert delta.worst_class_recall == pytest.approx(-0.3)
    better = regression(figures([10, 10, 10]), Baseline(digest("o"), then.attestation, now))
    assert better.accuracy > 0 and better.worst_class_recall == pytest.approx(0.0)


# -- the baseline: the previous release of the same model name in the ledger ----------------


def record(ledger: Ledger, model: str, name: str, correct: list[int], signer: KeySigner) -> str:
    statement = evaluation_statement(
        model=digest(model),
        model_name=name,
        dataset=digest("evalset"),
        dataset_name="eval",
        dataset_path=None,
        metrics=figures(correct).to_json(),
        probe=None,
        baseline=None,
        regression=regression(figures(correct), None).to_json(),
        evaluated_at="2026-01-01T00:00:00Z",
        tools={"ml-provenance": "0"},
    )
    bundle = Bundle.sign_statement(statement, signer)
    ledger.append(bundle, verified_by=signer.public_key)
    return f"sha256:{bundle.attestation_id}"


def test_the_baseline_is_the_newest_evaluation_of_another_digest_of_the_name(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert find_baseline(ledger, model_name="digits", model=digest("v3")) is None
        record(ledger, "v1", "digits", [10, 5], EVALUATOR)
        second = record(ledger, "v2", "digits", [10, 8], EVALUATOR)
        record(ledger, "other", "faces", [1, 1], EVALUATOR)
        record(ledger, "v3", "digits", [2, 2], EVALUATOR)  # an earlier evaluation of v3 itself
        found = find_baseline(ledger, model_name="digits", model=digest("v3"))
        assert found is not None
        assert (found.model, found.attestation) == (digest("v2"), second)
        assert found.metrics.correct == 18
        assert found.dataset == digest("evalset")
        assert found.evaluated_at == "2026-01-01T00:00:00Z"
        assert found.to_json()["model"] == str(digest("v2"))  # a string, not a descriptor


def evaluator_policy(revoked: str | None = None) -> Any:
    pem = "\n".join("      " + line for line in EVALUATOR.public_key.pem.decode().splitlines())
    text = f"""
version: 1
roots:
  evaluator:
    pem: |
{pem}
rules:
  model:
    require:
      - predicateType: https://ml-provenance.dev/attestation/evaluation/v1
        signedBy: [evaluator]
"""
    if revoked:
        text += f"revoked:\n  attestations: [{revoked}]\n"
    return parse_policy(text, base=Path("."))


def test_under_a_policy_only_trusted_unrevoked_evaluations_are_baselines(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        first = record(ledger, "v1", "digits", [10, 10], EVALUATOR)
        second = record(ledger, "v2", "digits", [10, 9], EVALUATOR)
        record(ledger, "v3", "digits", [1, 1], STRANGER)  # a forged, poor "previous release"
        untrusted = find_baseline(ledger, model_name="digits", model=digest("v4"))
        assert untrusted is not None and untrusted.model == digest("v3")
        trusted = trusted_for_evaluations(evaluator_policy())
        found = find_baseline(ledger, model_name="digits", model=digest("v4"), trusted=trusted)
        assert found is not None and found.attestation == second
        trusted = trusted_for_evaluations(evaluator_policy(revoked=second))
        found = find_baseline(ledger, model_name="digits", model=digest("v4"), trusted=trusted)
        assert found is not None and found.attestation == first


def test_an_unreadable_evaluation_of_the_name_is_an_error_not_a_skip(tmp_path: Path) -> None:
    from provenance.statement import ResourceDescriptor, Statement

    statement = Statement(
        (ResourceDescriptor.for_digest(digest("v1"), name="digits"),),
        "https://ml-provenance.dev/attestation/evaluation/v1",
        {"model": {"name": "digits"}, "metrics": {"n": 3}},
    )
    with Ledger(tmp_path / "ledger.db") as ledger:
        ledger.append(Bundle.sign_statement(statement, EVALUATOR), verified_by=EVALUATOR.public_key)
        with pytest.raises(FormatError, match="cannot use the evaluation in ledger entry 1"):
            find_baseline(ledger, model_name="digits", model=digest("v2"))
