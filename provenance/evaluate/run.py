"""``provenance evaluate`` without the command line: from paths to an unsigned :class:`Evaluation`.

The order is the order of refusals: the loader spec (a typo should not cost a model load),
the checkpoint (verified under the policy, scanned, built by the loader), the evaluation set
(attested, and verified under the policy), the baseline from the ledger, and only then the
pass over the data. Signing and recording are the caller's.

Under a policy, the model and the set are verified *without* the policy's evaluation
requirements: a policy whose model rule requires an evaluation attestation (the point of the
gate) would otherwise refuse every model that has not been evaluated yet, including the one
being evaluated now.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provenance.errors import InputError, UsageError
from provenance.predicates.evaluation import EVALUATION_PREDICATE

if TYPE_CHECKING:
    from provenance.evaluate.api import Evaluation
    from provenance.ledger import Ledger
    from provenance.policy.model import Policy

DEFAULT_BATCH_SIZE = 256


@dataclass(frozen=True)
class Request:
    """What to evaluate, on what, and how."""

    checkpoint: Path
    data: Path
    split: str | None = None
    model_name: str | None = None
    loader: str | None = None
    policy: Policy | None = None
    probe: bool = True
    probe_threshold: float = 0.5
    batch_size: int = DEFAULT_BATCH_SIZE


def without_evaluation(policy: Policy) -> Policy:
    """``policy`` minus its requirements of evaluation attestations (see the module docstring).

    A rule left with no requirement would trust nothing and explain nothing, so a rule that
    requires *only* evaluations is an error: the model must be trusted on other grounds first.
    """
    from provenance.policy.model import Rule

    rules = {}
    for kind, rule in policy.rules.items():
        kept = tuple(r for r in rule.requirements if r.predicate_type != EVALUATION_PREDICATE)
        if not kept:
            raise InputError(
                f"{policy.source}: the {kind} rule requires only evaluation attestations, so "
                "nothing establishes that the model may be evaluated",
                hint="require build provenance or a model signature in that rule as well",
            )
        rules[kind] = Rule(rule.kind, kept)
    return dataclasses.replace(policy, rules=rules)


def evaluate(request: Request, ledger: Ledger) -> Evaluation:
    """Check everything, find the baseline, run the evaluation (see the module docstring)."""
    from torch.utils.data import DataLoader

    from provenance.evaluate.api import evaluate_model
    from provenance.evaluate.baseline import find_baseline, trusted_for_evaluations
    from provenance.evaluate.data import (
        CheckedDecoder,
        DefaultDecoder,
        dataset_name,
        normalise_split,
        open_eval_set,
        samples,
    )
    from provenance.evaluate.loading import import_loader, load_model
    from provenance.evaluate.probe import ProbeConfig
    from provenance.torch import VerifiedFiles
    from provenance.verify.evidence import LedgerEvidence

    if request.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if request.model_name is not None and not request.model_name.strip():
        raise UsageError("--model-name must not be empty")
    probe = ProbeConfig(threshold=request.probe_threshold) if request.probe else None
    split = normalise_split(request.split)
    loader = import_loader(request.loader, Path.cwd()) if request.loader else None
    policy = without_evaluation(request.policy) if request.policy is not None else None
    loaded = load_model(
        request.checkpoint,
        loader=loader,
        policy=policy,
        evidence=LedgerEvidence(ledger),
        spec=request.loader,
    )
    dataset = open_eval_set(request.data, policy=policy, ledger=ledger)
    files, classes = samples(dataset, split)
    decode = (
        CheckedDecoder(loaded.decode)
        if loaded.decode is not None
        else DefaultDecoder.for_files(files, classes)
    )
    model_name = request.model_name or request.checkpoint.name
    baseline = find_baseline(
        ledger,
        model_name=model_name,
        model=loaded.digest,
        trusted=trusted_for_evaluations(request.policy) if request.policy is not None else None,
    )
    batches = DataLoader(
        VerifiedFiles(dataset, files=files, decode=decode), batch_size=request.batch_size
    )
    return evaluate_model(
        loaded.model,
        batches,
        dataset_digest=dataset.digest,
        model_digest=loaded.digest,
        model_name=model_name,
        dataset_name=dataset_name(ledger, dataset),
        dataset_path=split,
        probe=probe,
        baseline=baseline,
        loader_spec=request.loader,
    )


__all__ = ["DEFAULT_BATCH_SIZE", "Request", "evaluate", "without_evaluation"]
