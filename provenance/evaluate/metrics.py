"""Classification figures from a confusion matrix: accuracy and per-class precision and recall.

Pure numpy, no torch: the evaluation loop (:mod:`provenance.evaluate.api`) turns model outputs
into integer labels, and everything after that is counting. The figures are defined so that
every one of them is a number a policy's CEL condition can compare -- a ratio whose
denominator is zero is reported as 0.0, never as NaN or null, which would make the condition
an error and the policy refuse for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from numpy.typing import NDArray

from provenance.errors import FormatError, InputError

Matrix = NDArray[numpy.int64]


def confusion_matrix(
    labels: Sequence[int] | NDArray[Any],
    predictions: Sequence[int] | NDArray[Any],
    num_classes: int,
) -> Matrix:
    """``matrix[true, predicted]`` counts, for labels and predictions in ``0..num_classes-1``.

    A label or prediction outside that range is an error, not a silently dropped sample: a
    dataset whose labels the model cannot output has been paired with the wrong model.
    """
    truth = numpy.asarray(labels, dtype=numpy.int64).reshape(-1)
    predicted = numpy.asarray(predictions, dtype=numpy.int64).reshape(-1)
    if truth.shape != predicted.shape:
        raise InputError(f"{truth.size} labels but {predicted.size} predictions")
    if num_classes < 1:
        raise InputError("a classifier needs at least one class")
    for what, values in (("label", truth), ("prediction", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = int(values[(values < 0) | (values >= num_classes)][0])
            raise InputError(
                f"{what} {bad} is outside the model's {num_classes} classes (0..{num_classes - 1})",
                hint="check that the evaluation set's labels match the model's outputs",
            )
    counts = numpy.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(numpy.int64)


@dataclass(frozen=True)
class ClassMetrics:
    """One class: how many samples it has, how many were predicted as it, and the ratios."""

    label: int
    support: int
    predicted: int
    precision: float
    recall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "support": self.support,
            "predicted": self.predicted,
            "precision": self.precision,
            "recall": self.recall,
        }


@dataclass(frozen=True)
class Metrics:
    """The figures of one evaluation."""

    n: int
    correct: int
    per_class: tuple[ClassMetrics, ...]

    @property
    def accuracy(self) -> float:
        """Fraction of samples classified correctly."""
        return self.correct / self.n if self.n else 0.0

    def recall_of(self, label: int) -> float | None:
        """The recall of ``label``, or None when the evaluation set has no sample of it."""
        for entry in self.per_class:
            if entry.label == label and entry.support:
                return entry.recall
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "perClass": [c.to_json() for c in self.per_class],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, what: str) -> Metrics:
        """Read figures a signed statement carries (a baseline's), refusing malformed ones."""
        n, correct, per_class = document.get("n"), document.get("correct"), document.get("perClass")
        if (
            not isinstance(n, int)
            or not isinstance(correct, int)
            or isinstance(n, bool)
            or isinstance(correct, bool)
            or not 0 <= correct <= n
        ):
            raise FormatError(f"{what}: metrics need counts n and correct (correct <= n)")
        if not isinstance(per_class, Sequence) or isinstance(per_class, str):
            raise FormatError(f"{what}: metrics.perClass must be a list")
        entries: list[ClassMetrics] = []
        for item in per_class:
            fields = ("label", "support", "predicted")
            if not isinstance(item, Mapping) or not all(_count(item.get(f)) for f in fields):
                raise FormatError(f"{what}: a perClass entry lacks label, support or predicted")
            ratios = [item.get("precision"), item.get("recall")]
            if not all(_ratio(r) for r in ratios):
                raise FormatError(f"{what}: perClass precision and recall must be in [0, 1]")
            entries.append(
                ClassMetrics(
                    item["label"],
                    item["support"],
                    item["predicted"],
                    float(item["precision"]),
                    float(item["recall"]),
                )
            )
        return cls(n, correct, tuple(entries))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ratio(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def metrics_from_confusion(matrix: Matrix) -> Metrics:
    """Accuracy and per-class figures of a square confusion matrix (rows: true labels).

    Classes are listed when the evaluation set holds samples of them or the model predicted
    them; a class with neither says nothing. Precision of a class never predicted and recall
    of a class with no samples are 0.0 (the ratio is undefined; see the module docstring).
    """
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(f"a confusion matrix is square, not {matrix.shape}")
    if (matrix < 0).any():
        raise InputError("a confusion matrix holds counts, which are never negative")
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    hits = numpy.diagonal(matrix)
    per_class = tuple(
        ClassMetrics(
            label=label,
            support=int(support[label]),
            predicted=int(predicted[label]),
            precision=float(hits[label] / predicted[label]) if predicted[label] else 0.0,
            recall=float(hits[label] / support[label]) if support[label] else 0.0,
        )
        for label in range(matrix.shape[0])
        if support[label] or predicted[label]
    )
    return Metrics(n=int(matrix.sum()), correct=int(hits.sum()), per_class=per_class)


__all__ = ["ClassMetrics", "Metrics", "confusion_matrix", "metrics_from_confusion"]
