"""What a policy says, as validated data: who is trusted, for what, under which conditions.

Nothing is trusted by default: every rule names the predicate types it requires and the roots
trusted to sign each, and an artifact whose kind has no rule is refused. Validation happens
when a policy is loaded (:mod:`provenance.policy.load`); these classes only hold the result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from provenance.predicates.dataset import DATASET_PREDICATE
from provenance.predicates.oms import OMS_PREDICATE
from provenance.predicates.sbom import CYCLONEDX_PREDICATE
from provenance.predicates.training import SLSA_PROVENANCE_V1
from provenance.signing.keys import PublicKey
from provenance.signing.sigstore import Identity, Instance

SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"

# Which predicate types make an artifact of which kind: a dataset is what a dataset
# attestation describes; a model (any built artifact) is what build provenance describes, and
# what an OpenSSF model signature signs; an environment is what an SBOM describes. Other
# predicate types (screening and test results, vulnerability audits, evaluations) are
# evidence a rule may require of an artifact of some kind; they make no kind of their own.
KIND_PREDICATES: dict[str, tuple[str, ...]] = {
    "dataset": (DATASET_PREDICATE,),
    "model": (SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02, OMS_PREDICATE),
    "environment": (CYCLONEDX_PREDICATE,),
}


@dataclass(frozen=True)
class KeyRoot:
    """A public key (held in a file, inline, or behind a KMS URI that signs under it)."""

    name: str
    key: PublicKey
    kms_uri: str | None = None


@dataclass(frozen=True)
class SigstoreRoot:
    """A Sigstore identity: certificate identity (exact or anchored pattern) and issuer."""

    name: str
    identity: Identity
    instance: Instance = Instance.PRODUCTION


Root = KeyRoot | SigstoreRoot


@dataclass(frozen=True)
class Condition:
    """A CEL expression over ``predicate`` and ``subject`` that must be true."""

    source: str
    program: Any = field(compare=False, repr=False)

    def holds(self, predicate: Any, subject: Any) -> bool:
        """True only if the expression evaluates to the boolean true; an evaluation error (a
        missing field, a wrong type) or any other value is false."""
        import celpy

        from provenance.policy.cel import to_cel

        activation = {"predicate": to_cel(predicate), "subject": to_cel(subject)}
        try:
            result = self.program.evaluate(activation)
        except Exception:  # celpy raises many error types; none of them means "true"
            return False
        return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@dataclass(frozen=True)
class Requirement:
    """One attestation an artifact of a kind must carry."""

    predicate_type: str
    signed_by: tuple[str, ...]
    threshold: int = 1
    conditions: tuple[Condition, ...] = ()
    max_age: dt.timedelta | None = None  # measured from the attestation's signed time

    def describe(self) -> str:
        """A short name for reports."""
        roots = ", ".join(self.signed_by)
        count = f"{self.threshold} of " if self.threshold > 1 else ""
        return f"{self.predicate_type} signed by {count}{roots}"


@dataclass(frozen=True)
class Rule:
    """Everything an artifact of one kind must carry."""

    kind: str
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy."""

    roots: dict[str, Root]
    rules: dict[str, Rule]
    revoked_keys: frozenset[str] = frozenset()
    revoked_attestations: frozenset[str] = frozenset()
    max_depth: int = 16
    source: str = "policy"
    # Training provenance from a dirty (or unversioned) source tree is refused unless allowed.
    allow_dirty: bool = False
