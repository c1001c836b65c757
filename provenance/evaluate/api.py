"""Evaluate a torch classifier on a loader of held-out samples: figures, probe, statement.

:func:`evaluate_model` is the Python entry point (``provenance evaluate`` calls it too): one
pass over the loader computes the confusion matrix and, batch by batch, the backdoor probe's
counts (each batch is classified once clean and once per candidate trigger), so nothing but
counts is kept in memory however large the evaluation set. It returns an :class:`Evaluation`,
whose :meth:`~Evaluation.statement` is the unsigned evaluation statement about the model.

It does not decide whether the model or the data may be trusted: pass a model loaded through
``provenance.torch.load`` and a loader over ``provenance.torch.VerifiedFiles`` of a verified
dataset, and the digests they were verified as.
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy
import torch

from provenance import __version__
from provenance.digest.algorithms import Digest
from provenance.errors import Error, InputError
from provenance.evaluate.baseline import Baseline, Regression, regression
from provenance.evaluate.metrics import Metrics, confusion_matrix, metrics_from_confusion
from provenance.evaluate.probe import (
    FlipCounter,
    ProbeConfig,
    ProbeResult,
    Trigger,
    image_shape,
    stamp,
    summarise,
)
from provenance.predicates.evaluation import evaluation_statement
from provenance.predicates.training import rfc3339
from provenance.statement import Statement

DEFAULT_PROBE = ProbeConfig()


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation found, ready to be signed."""

    model_name: str
    model: Digest
    dataset: Digest
    dataset_name: str | None
    dataset_path: str | None
    metrics: Metrics
    probe: ProbeResult | None
    baseline: Baseline | None
    regression: Regression
    evaluated_at: str
    tools: Mapping[str, str]
    loader: str | None = None

    @property
    def backdoor_suspected(self) -> bool:
        """True when some candidate trigger collapsed predictions onto one class."""
        return self.probe is not None and bool(self.probe.collapsed)

    def statement(self) -> Statement:
        """The evaluation statement (``attest/evaluation.md``) about the model."""
        return evaluation_statement(
            model=self.model,
            model_name=self.model_name,
            dataset=self.dataset,
            dataset_name=self.dataset_name,
            dataset_path=self.dataset_path,
            metrics=self.metrics.to_json(),
            probe=self.probe.to_json() if self.probe is not None else None,
            baseline=self.baseline.to_json() if self.baseline is not None else None,
            regression=self.regression.to_json(),
            evaluated_at=self.evaluated_at,
            tools=self.tools,
            loader=self.loader,
        )


def tool_versions() -> dict[str, str]:
    """The versions that decide the figures: this toolkit, Python, torch, numpy."""
    return {
        "ml-provenance": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
    }


def _batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` from what a loader yields (a pair, or a longer sequence)."""
    if isinstance(batch, list | tuple) and len(batch) >= 2:
        inputs, labels = batch[0], batch[1]
        if isinstance(inputs, torch.Tensor) and isinstance(labels, torch.Tensor):
            return inputs, labels
    raise InputError(
        "the loader must yield (inputs, labels) batches of tensors",
        hint="decode each sample to (tensor, int label) and batch with a DataLoader",
    )


def _scores(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's (N, classes) scores for a batch, or an input error naming what went wrong.

    A model that raises on the evaluation inputs (a shape it does not take) was paired with
    the wrong data or decoder: that is bad input, reported in one line, not a crash.
    """
    try:
        logits = model(inputs)
    except Error:
        raise
    except Exception as e:  # whatever the model's own code raises
        raise InputError(
            f"the model failed on a batch of shape {tuple(inputs.shape)}: {type(e).__name__}: {e}",
            hint="check that the decoder produces the inputs the model was trained on",
        ) from e
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] < 1:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(
            f"the model must return (N, classes) scores; it returned {shape}",
            hint="evaluate a classifier, or wrap the model so that it returns logits",
        )
    return logits


def _digest(value: Digest | str) -> Digest:
    return value if isinstance(value, Digest) else Digest.parse(value)


def evaluate_model(
    model: torch.nn.Module,
    loader: Iterable[Any],
    *,
    dataset_digest: Digest | str,
    model_digest: Digest | str,
    model_name: str,
    dataset_name: str | None = None,
    dataset_path: str | None = None,
    probe: ProbeConfig | None = DEFAULT_PROBE,
    baseline: Baseline | None = None,
    device: str | torch.device | None = None,
    evaluated_at: dt.datetime | None = None,
    loader_spec: str | None = None,
) -> Evaluation:
    """Classify every sample ``loader`` yields; compute the figures, the probe, the regression.

    ``loader`` yields ``(inputs, labels)`` batches (a ``DataLoader``); labels are class indices
    of the model's outputs. ``dataset_digest`` is the root digest of the (verified) evaluation
    set, ``model_digest`` the digest of the (verified) checkpoint the model was loaded from:
    they become the statement's dataset and subject. ``baseline`` (see
    :func:`provenance.evaluate.baseline.find_baseline`) is what the regression is measured
    against. ``probe=None`` skips the backdoor probe. The model is put in eval mode for the
    pass and returned to its previous mode after it.
    """
    dataset = _digest(dataset_digest)
    subject = _digest(model_digest)
    matrix: numpy.ndarray[Any, numpy.dtype[numpy.int64]] | None = None
    counter: FlipCounter | None = None
    triggers: tuple[Trigger, ...] = ()
    shape: tuple[int, int] | None = None
    value_range = (0.0, 0.0)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                inputs, labels = _batch(batch)
                if device is not None:
                    inputs = inputs.to(device)
                scores = _scores(model, inputs)
                if matrix is None:
                    matrix = numpy.zeros((scores.shape[1],) * 2, dtype=numpy.int64)
                elif scores.shape[1] != matrix.shape[0]:
                    raise InputError("the model returned a different number of classes")
                clean = scores.argmax(dim=1)
                truth = labels.detach().cpu().numpy().astype(numpy.int64).reshape(-1)
                predicted = clean.detach().cpu().numpy().astype(numpy.int64)
                matrix += confusion_matrix(truth, predicted, matrix.shape[0])
                if probe is None:
                    continue
                if shape is None:
                    shape = image_shape(inputs)
                    triggers = probe.triggers(*shape)
                    value_range = probe.value_range or (
                        float(inputs.min()),
                        float(inputs.max()),
                    )
                    counter = FlipCounter(matrix.shape[0])
                elif image_shape(inputs) != shape:
                    raise InputError(
                        f"images of different sizes ({shape} and {image_shape(inputs)}): the "
                        "probe needs one size"
                    )
                assert counter is not None
                for trigger in triggers:
                    stamped = _scores(model, stamp(inputs, trigger, *value_range)).argmax(dim=1)
                    counter.add(
                        trigger.id, truth, predicted, stamped.cpu().numpy().astype(numpy.int64)
                    )
    finally:
        model.train(was_training)
    if matrix is None or not matrix.sum():
        raise InputError("the evaluation set holds no samples")
    metrics = metrics_from_confusion(matrix)
    probed = (
        summarise(counter, triggers, probe, value_range)
        if probe is not None and counter is not None
        else None
    )
    return Evaluation(
        model_name=model_name,
        model=subject,
        dataset=dataset,
        dataset_name=dataset_name,
        dataset_path=dataset_path,
        metrics=metrics,
        probe=probed,
        baseline=baseline,
        regression=regression(metrics, baseline),
        evaluated_at=rfc3339(evaluated_at or dt.datetime.now(dt.timezone.utc)),
        tools=tool_versions(),
        loader=loader_spec,
    )


__all__ = ["DEFAULT_PROBE", "Evaluation", "evaluate_model", "tool_versions"]
