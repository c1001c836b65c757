"""The evaluation predicate (``attest/evaluation.md``): how a model did on a pinned held-out set.

The statement's subject is the model (a checkpoint file's SHA-256); the predicate names the
evaluation dataset by its manifest root digest, and carries the figures, the backdoor probe's
findings and the baseline the figures were compared with. This module only builds and reads
the JSON: computing the figures is :mod:`provenance.evaluate`'s job, and it never imports numpy
or torch, so the ledger and the verifier can read evaluation statements without them.

The baseline is recorded *in* the signed statement because the verifier is a pure function of
the evidence about one artifact: it cannot look up which release came before. Whatever the
evaluator took as the baseline when it signed is what a policy's regression conditions judge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement, check_json

EVALUATION_PREDICATE = "https://ml-provenance.dev/attestation/evaluation/v1"
PROBE_METHOD = "corner-patch/v1"
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def evaluation_statement(
    *,
    model: Digest,
    model_name: str,
    dataset: Digest,
    dataset_name: str | None,
    dataset_path: str | None,
    metrics: Mapping[str, Any],
    probe: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    regression: Mapping[str, Any],
    evaluated_at: str,
    tools: Mapping[str, str],
    loader: str | None = None,
) -> Statement:
    """The evaluation statement about ``model`` (see ``attest/evaluation.md`` for each field).

    The figures arrive as JSON already (``provenance.evaluate`` builds them); this checks the
    parts a reader relies on -- names, times, that the JSON is encodable -- and assembles them.
    """
    if not model_name:
        raise FormatError("an evaluation needs the model's name")
    if not _RFC3339_UTC.fullmatch(evaluated_at):
        raise FormatError(f"evaluatedAt must be RFC 3339 UTC: {evaluated_at!r}")
    dataset_document: dict[str, Any] = {"digest": dataset.as_dict(), "path": dataset_path}
    if dataset_name:
        dataset_document["name"] = dataset_name
    predicate: dict[str, Any] = {
        "model": {"name": model_name},
        "dataset": dataset_document,
        "metrics": dict(metrics),
        "probe": dict(probe) if probe is not None else None,
        "baseline": dict(baseline) if baseline is not None else None,
        "regression": dict(regression),
        "evaluatedAt": evaluated_at,
        "loader": loader,
        "tools": dict(tools),
    }
    check_json(predicate, "evaluation predicate")
    subject = ResourceDescriptor.for_digest(model, name=model_name)
    return Statement((subject,), EVALUATION_PREDICATE, predicate)


@dataclass(frozen=True)
class EvaluationRecord:
    """What a baseline lookup needs from a signed evaluation statement."""

    model_name: str
    model: Digest
    dataset: Digest | None
    evaluated_at: str | None
    metrics: Mapping[str, Any]


def model_name_of(statement: Statement) -> str | None:
    """The model name an evaluation statement gives, or None if it gives none readable."""
    if statement.predicate_type != EVALUATION_PREDICATE:
        return None
    model = statement.predicate.get("model")
    name = model.get("name") if isinstance(model, Mapping) else None
    return name if isinstance(name, str) and name else None


def read_evaluation(statement: Statement) -> EvaluationRecord:
    """The model, dataset, time and (unparsed) metrics of an evaluation statement.

    Raises :class:`FormatError` when a part is missing or malformed: a baseline must be read
    whole or not at all.
    """
    name = model_name_of(statement)
    if name is None:
        raise FormatError("evaluation predicate: model.name is missing")
    subjects = [d for s in statement.subjects for d in s.digests()]
    if len(subjects) != 1:
        raise FormatError("an evaluation statement names exactly one model digest")
    predicate = statement.predicate
    metrics = predicate.get("metrics")
    if not isinstance(metrics, Mapping):
        raise FormatError("evaluation predicate: metrics must be an object")
    dataset = predicate.get("dataset")
    dataset_digests = dataset.get("digest") if isinstance(dataset, Mapping) else None
    found: Digest | None = None
    if isinstance(dataset_digests, Mapping):
        accepted = ResourceDescriptor(dict(dataset_digests)).digests()
        found = accepted[0] if accepted else None
    evaluated_at = predicate.get("evaluatedAt")
    return EvaluationRecord(
        model_name=name,
        model=subjects[0],
        dataset=found,
        evaluated_at=evaluated_at if isinstance(evaluated_at, str) else None,
        metrics=metrics,
    )


__all__ = [
    "EVALUATION_PREDICATE",
    "PROBE_METHOD",
    "EvaluationRecord",
    "evaluation_statement",
    "model_name_of",
    "read_evaluation",
]
