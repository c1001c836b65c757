"""The baseline an evaluation is compared with, and the regression against it.

The baseline is *the previous release of the same model name*: the newest evaluation
attestation in the ledger (highest entry number) whose predicate gives the same
``model.name`` and whose subject is a different model digest. Re-evaluating a model never
makes it its own baseline; an earlier evaluation of the same digest is skipped, and the search
goes on to older entries.

Trust assumption: the verifier judges one artifact from the evidence about it and cannot look
up history, so the evaluator looks the baseline up *when it evaluates* and signs what it found
into the statement (model digest, attestation id, figures). A policy's regression conditions
therefore trust the evaluator's signer to have chosen the baseline honestly, from a ledger
whose entries all carry verified signatures. Given a policy, only baselines signed by a root
the policy trusts for evaluation attestations are considered (and revoked ones are not), so a
forged "previous release" with poor figures cannot make a regression look like progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenance.digest.algorithms import Digest
from provenance.errors import Error, FormatError
from provenance.evaluate.metrics import Metrics
from provenance.predicates.evaluation import EVALUATION_PREDICATE, model_name_of, read_evaluation

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.ledger import Ledger
    from provenance.policy.model import Policy

log = logging.getLogger(__name__)

BundleFilter = Callable[["Bundle"], bool]


@dataclass(frozen=True)
class Baseline:
    """The evaluation of the previous release: whose, which attestation, and its figures."""

    model: Digest
    attestation: str  # "sha256:<id>", as `provenance log` shows it and a policy revokes it
    metrics: Metrics
    dataset: Digest | None = None
    evaluated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Digests as strings, not resource descriptors: exporting a model's chain
        (``ledger export --for``) follows descriptors, and should not pull in every release
        that came before it."""
        return {
            "model": str(self.model),
            "attestation": self.attestation,
            "dataset": str(self.dataset) if self.dataset is not None else None,
            "evaluatedAt": self.evaluated_at,
            "metrics": self.metrics.to_json(),
        }


@dataclass(frozen=True)
class Regression:
    """Change against the baseline: negative numbers are worse.

    Without a baseline every delta is 0.0 and ``has_baseline`` is false, so a condition such as
    ``double(predicate.regression.accuracy) >= -0.01`` can always be evaluated, and a policy
    that wants a baseline to exist says so separately (``predicate.regression.hasBaseline``).
    """

    has_baseline: bool
    accuracy: float
    worst_class_recall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "hasBaseline": self.has_baseline,
            "accuracy": self.accuracy,
            "worstClassRecall": self.worst_class_recall,
        }


def regression(current: Metrics, baseline: Baseline | None) -> Regression:
    """Accuracy delta, and the largest drop in recall of any class both evaluations have.

    ``worst_class_recall`` is the smallest ``recall_now - recall_then`` over those classes
    (0.0 when they share none), so one class that got much worse shows even when accuracy
    barely moved -- the signature of a targeted attack.
    """
    if baseline is None:
        return Regression(False, 0.0, 0.0)
    deltas = [
        entry.recall - then
        for entry in current.per_class
        if entry.support and (then := baseline.metrics.recall_of(entry.label)) is not None
    ]
    return Regression(
        True, current.accuracy - baseline.metrics.accuracy, min(deltas) if deltas else 0.0
    )


def trusted_for_evaluations(policy: Policy, *, offline: bool = True) -> BundleFilter:
    """Whether a bundle is signed by a root ``policy`` trusts for evaluation attestations.

    Those are the roots of the policy's requirements of the evaluation predicate type; a
    policy with no such requirement trusts its roots in general for nothing more specific, so
    every root it names counts. Revoked attestations and revoked keys never count.
    """
    from provenance.verify.core import signed_by_root

    names = {
        name
        for rule in policy.rules.values()
        for requirement in rule.requirements
        if requirement.predicate_type == EVALUATION_PREDICATE
        for name in requirement.signed_by
    } or set(policy.roots)
    roots = [policy.roots[name] for name in sorted(names)]

    def trusted(bundle: Bundle) -> bool:
        if bundle.attestation_id in policy.revoked_attestations:
            return False
        return any(signed_by_root(bundle, root, policy, offline) is None for root in roots)

    return trusted


def find_baseline(
    ledger: Ledger,
    *,
    model_name: str,
    model: Digest,
    trusted: BundleFilter | None = None,
) -> Baseline | None:
    """The previous release's evaluation (see the module docstring), or None.

    ``trusted`` (see :func:`trusted_for_evaluations`) filters candidates; without it, every
    ledger entry counts. An evaluation of this model name that cannot be read is an error,
    not a skip: falling back to an older baseline would compare against the wrong release.
    """
    entries = ledger.find(predicate_type=EVALUATION_PREDICATE)
    return _newest(reversed(entries), model_name=model_name, model=model, trusted=trusted)


def _newest(
    entries: Iterable[Any], *, model_name: str, model: Digest, trusted: BundleFilter | None
) -> Baseline | None:
    for entry in entries:
        try:
            bundle = entry.parsed()
            statement = bundle.statement
        except Error:
            log.debug("ledger entry %s is unreadable; not a baseline", entry.seq)
            continue
        if model_name_of(statement) != model_name:
            continue
        what = f"the evaluation in ledger entry {entry.seq}"
        record = read_evaluation(statement)
        if record.model == model:
            continue  # the same model evaluated before: not a previous release
        if trusted is not None and not trusted(bundle):
            log.info("%s is not signed by a root the policy trusts; not a baseline", what)
            continue
        try:
            metrics = Metrics.from_json(record.metrics, what=what)
        except FormatError as e:
            raise FormatError(
                f"cannot use {what} as the baseline of {model_name}: {e.message}"
            ) from e
        return Baseline(
            model=record.model,
            attestation=f"sha256:{bundle.attestation_id}",
            metrics=metrics,
            dataset=record.dataset,
            evaluated_at=record.evaluated_at,
        )
    return None


__all__ = [
    "Baseline",
    "Regression",
    "find_baseline",
    "regression",
    "trusted_for_evaluations",
]
