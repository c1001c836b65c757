"""The chain walker: may this artifact be used? A pure function of evidence and a policy.

For an artifact digest the verifier finds the attestations naming it, decides its kind from
them, and checks every requirement of that kind's rule: an attestation of the required type,
not revoked, whose signature verifies under a root the requirement trusts (whose key is not
revoked), whose CEL conditions hold -- from enough distinct roots. It then follows every input
the accepted attestations name (a dataset's parents, a build's resolved dependencies) and
verifies each the same way, to the leaves, refusing cycles and chains deeper than the policy
allows. Every failure is collected, each naming the artifact, the requirement, what was found
and what to do; nothing unverifiable is skipped.

Input is evidence (:mod:`provenance.verify.evidence`) and a policy; output is a
:class:`Report`. The only I/O is what the evidence does (and, for keyless bundles,
sigstore-python reading its bundled trust roots).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provenance.bundle import Bundle
from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.manifest import Manifest, ManifestDiff
from provenance.errors import Error, FormatError
from provenance.policy.model import (
    KIND_PREDICATES,
    SLSA_PROVENANCE_V02,
    KeyRoot,
    Policy,
    Requirement,
    Root,
    SigstoreRoot,
)
from provenance.predicates.dataset import DATASET_PREDICATE
from provenance.predicates.evaluation import EVALUATION_PREDICATE
from provenance.predicates.oms import vouched_digests
from provenance.predicates.sbom import CYCLONEDX_PREDICATE
from provenance.predicates.screening import SCREENING_PREDICATE
from provenance.predicates.test_result import TEST_RESULT_PREDICATE
from provenance.predicates.training import (
    ROLE_ENVIRONMENT,
    SLSA_PROVENANCE_V1,
    SourceState,
    is_training,
    source_of,
)
from provenance.predicates.vulns import VULNS_PREDICATE
from provenance.statement import Statement


@dataclass
class Check:
    """One requirement checked at one node."""

    requirement: str
    ok: bool
    detail: str
    hint: str | None = None


@dataclass
class Node:
    """One artifact of the chain: what was checked about it, and its inputs."""

    digest: Digest
    name: str | None = None
    kind: str | None = None
    checks: list[Check] = field(default_factory=list)
    inputs: list[Node] = field(default_factory=list)
    # The attestations that met a requirement here (what a report may repeat as vouched for).
    accepted: list[tuple[Bundle, Statement]] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Trusted only with at least one check, every check passed, every input trusted."""
        return (
            bool(self.checks)
            and all(c.ok for c in self.checks)
            and all(i.trusted for i in self.inputs)
        )

    def failures(self) -> list[tuple[Node, Check]]:
        """Every failed check in this subtree, depth first."""
        found = [(self, c) for c in self.checks if not c.ok]
        for child in self.inputs:
            found += child.failures()
        return found


@dataclass
class Report:
    """The verdict on an artifact, as a tree of nodes."""

    root: Node
    local_diff: tuple[Manifest, ManifestDiff] | None = None  # closest attested dataset

    @property
    def trusted(self) -> bool:
        return self.root.trusted


def _signed_by_key(bundle: Bundle, root: KeyRoot, policy: Policy) -> str | None:
    """None if ``bundle`` verifies under the root's (unrevoked) key, else why not.

    The hint only selects: it is unsigned, and other tools write other forms of key id
    (model_signing writes the SHA-256 of the key's PEM text). So a bundle whose hint names
    no form of the root's key is still checked under it, and refused only if that fails.
    """
    if bundle.keyless:
        return f"{root.name} is a key; the bundle is signed keylessly"
    revoked = bool({root.key.key_id, root.key.pem_hint} & policy.revoked_keys)
    labelled = root.key.named_by(bundle.key_hint)
    if labelled and revoked:
        return f"{root.name}'s key {root.key.key_id[:16]} is revoked"
    try:
        bundle.verify_with_key(root.key, hint_must_match=False)
    except Error as e:
        if not labelled:
            return f"signed by key {str(bundle.key_hint)[:16]}, not {root.name}'s key"
        return f"signature does not verify under {root.name}'s key ({e.message})"
    if revoked:
        return f"{root.name}'s key {root.key.key_id[:16]} is revoked"
    return None


def _signed_by_identity(bundle: Bundle, root: SigstoreRoot, offline: bool) -> str | None:
    if not bundle.keyless:
        return f"{root.name} is a Sigstore identity; the bundle is signed with a key"
    from provenance.signing import sigstore

    try:
        sigstore.verify(bundle, root.identity, instance=root.instance, offline=offline)
    except Error as e:
        return f"not signed by {root.name} ({e.message})"
    return None


def _signer_of(root: Root) -> object:
    if isinstance(root, KeyRoot):
        return ("key", root.key.key_id)
    return ("sigstore", root.identity, root.instance)


def signed_by_root(bundle: Bundle, root: Root, policy: Policy, offline: bool) -> str | None:
    """None if ``bundle`` is signed as ``root`` says (and the root's key is not revoked), else
    why not. The one place that decides it: reports and exports ask this too."""
    if isinstance(root, KeyRoot):
        return _signed_by_key(bundle, root, policy)
    return _signed_by_identity(bundle, root, offline)


# Signed times a statement may carry, by predicate type: where maxAge is measured from.
_TIME_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    DATASET_PREDICATE: (("attestedAt",),),
    SLSA_PROVENANCE_V1: (
        ("runDetails", "metadata", "finishedOn"),
        ("runDetails", "metadata", "startedOn"),
    ),
    SLSA_PROVENANCE_V02: (("metadata", "buildFinishedOn"), ("metadata", "buildStartedOn")),
    VULNS_PREDICATE: (("metadata", "scanFinishedOn"), ("metadata", "scanStartedOn")),
    EVALUATION_PREDICATE: (("evaluatedAt",),),
    SCREENING_PREDICATE: (("attestedAt",),),
}
CLOCK_SKEW = dt.timedelta(minutes=5)


def signed_time(statement: Statement) -> dt.datetime | None:
    """When the statement says it was made (a signed field), or None if it says nothing."""
    for path in _TIME_FIELDS.get(statement.predicate_type, ()):
        value: Any = statement.predicate
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            if parsed.tzinfo is not None:
                return parsed
    return None


def _too_old(
    requirement: Requirement, bundle: Bundle, statement: Statement, at: dt.datetime
) -> str | None:
    """Why the attestation is too old for ``requirement``, or None. Called only after its
    signature verified: a keyless bundle's age is then measured from the time the transparency
    log recorded it (witnessed, not claimed), anything else from the time it signs."""
    if requirement.max_age is None:
        return None
    made = bundle.log_time() or signed_time(statement)
    if made is None:
        return "carries no signed time, so its age cannot be checked against maxAge"
    if made > at + CLOCK_SKEW:
        return f"is dated {made.isoformat()}, after the reference time"
    if at - made > requirement.max_age:
        return f"is {(at - made).days} days old, older than maxAge {requirement.max_age}"
    return None


# Where each predicate type names its inputs: only these are followed (a dataset's sources
# and code digests name things that are not artifacts of the chain).
_INPUT_FIELDS: dict[str, tuple[str, ...]] = {
    DATASET_PREDICATE: ("parents",),
    SLSA_PROVENANCE_V1: ("buildDefinition", "resolvedDependencies"),
    SLSA_PROVENANCE_V02: ("materials",),
}


def _is_package_url(item: Mapping[str, Any]) -> bool:
    """A training environment's distribution, named by package URL (``attest/training.md``);
    any other input without a digest -- a dataset named only by a URL -- is refused."""
    annotations = item.get("annotations")
    uri = item.get("uri")
    return (
        isinstance(annotations, Mapping)
        and annotations.get("role") == ROLE_ENVIRONMENT
        and isinstance(uri, str)
        and uri.startswith("pkg:")
    )


def inputs_of(statement: Statement) -> list[Digest]:
    """The input artifacts ``statement`` names, by accepted digest, in document order.

    A descriptor that names an accepted algorithm with a malformed value is an error, not a
    skip: an input that cannot be verified must not silently drop out of the chain. Inputs
    named only by other algorithms (sha1 git commits) cannot be verified and are not followed.
    """
    if statement.predicate_type not in _INPUT_FIELDS:
        return []  # signatures, screening and evaluation results name no inputs
    value: Any = statement.predicate
    for part in _INPUT_FIELDS.get(statement.predicate_type, ()):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise FormatError(f"{statement.predicate_type}: its inputs must be a list")
    accepted = {a.value: a for a in Algorithm}
    found: list[Digest] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise FormatError("an input is not a resource descriptor")
        if "digest" not in item and _is_package_url(item):
            continue  # an installed distribution by package URL: a version, not bytes
        digests = item.get("digest")
        if not isinstance(digests, Mapping):
            raise FormatError("an input names no digest")
        for name, hex_value in digests.items():
            if name in accepted:
                if not isinstance(hex_value, str):
                    raise FormatError(f"an input's {name} digest is not a string")
                found.append(Digest(accepted[name], hex_value))  # refuses malformed hex
    return found


def _clean_source(statement: Statement) -> Check:
    """Training provenance must name one clean, committed source tree (policy allowDirty)."""
    label = "clean source (allowDirty: false)"
    hint = "train from a clean, committed git tree, or set allowDirty: true in the policy"
    states = source_of(statement)
    if not states:
        return Check(label, False, "the training run's source was not under version control", hint)
    for state in states:
        if isinstance(state, str):
            return Check(label, False, f"unreadable source record: {state}", hint)
        if state.dirty:
            return Check(
                label, False, f"trained from a dirty tree at commit {state.commit[:12]}", hint
            )
    commits = ", ".join(s.commit[:12] for s in states if isinstance(s, SourceState))
    return Check(label, True, f"committed source {commits}")


def _check_of(statement: Statement) -> tuple[str, ...]:
    """What a statement is a result *of*, beyond its type: the checks a test-result names in
    its configuration (an integrity check and a screening are different results about one
    subject, and one must not supersede the other), the dataset an evaluation used."""
    if statement.predicate_type == EVALUATION_PREDICATE:
        dataset = statement.predicate.get("dataset")  # evaluations on different sets coexist
        digest = dataset.get("digest") if isinstance(dataset, Mapping) else None
        return (repr(sorted(digest.items())),) if isinstance(digest, Mapping) else ()
    if statement.predicate_type != TEST_RESULT_PREDICATE:
        return ()
    configuration = statement.predicate.get("configuration")
    if not isinstance(configuration, list | tuple):
        return ()
    names = [
        str(c.get("uri") or c.get("name") or "") for c in configuration if isinstance(c, Mapping)
    ]
    return tuple(sorted(names))


def _newest(
    signed: list[tuple[Bundle, Statement, list[str]]],
) -> list[tuple[Bundle, Statement, list[str]]]:
    """Only each signer's newest statement of each check is judged.

    A later failed integrity check or an audit with a new finding supersedes the passing
    result the same signer recorded earlier; judging every result would let the old one
    carry the requirement. Newest means latest signed time (the transparency log's for
    keyless bundles); statements without one rank below those with one, and among equals the
    later in the evidence (the ledger's append order) wins. Each statement keeps the roots for
    which it is the newest; one that is nobody's newest is dropped.
    """
    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    newest: dict[tuple[str, tuple[str, ...]], tuple[tuple[dt.datetime, int], int]] = {}
    for index, (bundle, statement, by) in enumerate(signed):
        rank = (bundle.log_time() or signed_time(statement) or floor, index)
        for root in by:
            key = (root, _check_of(statement))
            if key not in newest or rank >= newest[key][0]:
                newest[key] = (rank, index)
    winners: dict[int, list[str]] = {}
    for (root, _), (_, index) in newest.items():
        winners.setdefault(index, []).append(root)
    return [(signed[i][0], signed[i][1], sorted(roots)) for i, roots in sorted(winners.items())]


def _inconsistent(statement: Statement) -> str | None:
    """Why a statement contradicts itself, for types whose subject is derived from the
    predicate: an environment SBOM's subject is the digest of the SBOM it carries, so
    conditions over its components are conditions over the environment the digest names."""
    if statement.predicate_type != CYCLONEDX_PREDICATE:
        return None
    from provenance.digest.canonical import canonical_json

    try:
        carried = Digest.of_bytes(
            Algorithm.SHA256, canonical_json(dict(statement.to_json()["predicate"]))
        )
    except Error as e:
        return f"its SBOM cannot be encoded canonically ({e.message})"
    if not statement.names(carried):
        return "its subject is not the digest of the SBOM it carries"
    return None


def statements_about(evidence: Any, digest: Digest) -> list[tuple[Bundle, Statement]]:
    """The statements ``evidence`` has about ``digest``, as the verifier reads them.

    Evidence is an index, and indexes can be wrong or forged: only a statement that itself
    binds this digest (as a subject, or as a single-file model signature's file) says
    anything about it. A bundle that holds no in-toto statement says nothing.
    """
    found: list[tuple[Bundle, Statement]] = []
    for bundle in evidence.about(digest):
        try:
            statement = bundle.statement
        except Error:
            continue
        if statement.names(digest) or digest in vouched_digests(statement):
            found.append((bundle, statement))
    return found


class _Walker:
    def __init__(self, evidence: Any, policy: Policy, at: dt.datetime, offline: bool) -> None:
        self.evidence = evidence
        self.policy = policy
        self.at = at
        self.offline = offline

    def node(self, digest: Digest, path: tuple[Digest, ...]) -> Node:
        node = Node(digest)
        if digest in path:
            node.checks.append(
                Check(
                    "acyclic chain",
                    False,
                    "this artifact is among its own inputs",
                    "the attestations describe a cycle: re-attest the inputs correctly",
                )
            )
            return node
        if len(path) >= self.policy.max_depth:
            node.checks.append(
                Check(
                    "chain depth",
                    False,
                    f"deeper than maxDepth {self.policy.max_depth}",
                    "raise maxDepth in the policy if this chain is genuine",
                )
            )
            return node
        statements = self._statements(digest)
        kinds = self._kinds(statements)
        node.kind = "+".join(kinds) if kinds else None
        if not statements:
            node.checks.append(
                Check(
                    "attested",
                    False,
                    "no attestation names this artifact",
                    "attest it (provenance dataset add / attest), or verify the right artifact",
                )
            )
            return node
        # Every kind the attestations claim is judged, not just one: an artifact cannot escape
        # the model rule by also carrying a (validly signed) dataset attestation.
        missing = [k for k in kinds if k not in self.policy.rules] or (
            ["unknown kind"] if not kinds else []
        )
        if missing:
            node.checks.append(
                Check(
                    "policy rule",
                    False,
                    f"the policy has no rule for {', '.join(missing)}",
                    "nothing is trusted by default: add a rule for this kind to the policy",
                )
            )
            return node
        requirements = [r for kind in kinds for r in self.policy.rules[kind].requirements]
        for requirement in requirements:
            check, good = self._requirement(requirement, statements)
            node.checks.append(check)
            node.accepted += [pair for pair in good if pair not in node.accepted]
        accepted = [statement for _, statement in node.accepted]
        if not self.policy.allow_dirty:
            node.checks += [_clean_source(st) for st in accepted if is_training(st)]
        # The name shown is one a trusted signer gave; unverified attestations name nothing.
        names = [s.name for st in accepted for s in st.subjects if s.matches(digest) and s.name]
        node.name = names[0] if names else None
        inputs: list[Digest] = []
        for statement in accepted:
            try:
                references = inputs_of(statement)
            except Error as e:
                node.checks.append(
                    Check(
                        "inputs",
                        False,
                        f"{statement.predicate_type}: {e.message}",
                        "the attestation names its inputs in a form that cannot be verified",
                    )
                )
                continue
            for reference in references:
                if reference != digest and reference not in inputs:
                    inputs.append(reference)
        node.inputs = [self.node(d, (*path, digest)) for d in inputs]
        return node

    def _statements(self, digest: Digest) -> list[tuple[Bundle, Statement]]:
        return statements_about(self.evidence, digest)

    @staticmethod
    def _kinds(statements: list[tuple[Bundle, Statement]]) -> list[str]:
        types = {st.predicate_type for _, st in statements}
        return [kind for kind, predicates in KIND_PREDICATES.items() if types & set(predicates)]

    def _requirement(
        self, requirement: Requirement, statements: list[tuple[Bundle, Statement]]
    ) -> tuple[Check, list[tuple[Bundle, Statement]]]:
        label = requirement.describe()
        candidates = [
            (b, s) for b, s in statements if s.predicate_type == requirement.predicate_type
        ]
        if not candidates:
            return (
                Check(
                    label,
                    False,
                    f"no {requirement.predicate_type} attestation",
                    "attest it with a trusted signer",
                ),
                [],
            )
        reasons: list[str] = []
        signed: list[tuple[Bundle, Statement, list[str]]] = []
        for bundle, statement in candidates:
            if bundle.attestation_id in self.policy.revoked_attestations:
                reasons.append(f"attestation {bundle.attestation_id[:16]} is revoked")
                continue
            roots = [self.policy.roots[name] for name in requirement.signed_by]
            why_not = [signed_by_root(bundle, root, self.policy, self.offline) for root in roots]
            by = [root.name for root, why in zip(roots, why_not, strict=True) if why is None]
            if not by:
                reasons.append("; ".join(w for w in why_not if w))
                continue
            signed.append((bundle, statement, by))
        signers: set[str] = set()
        good: list[tuple[Bundle, Statement]] = []
        for bundle, statement, by in _newest(signed):
            if age := _too_old(requirement, bundle, statement, self.at):
                reasons.append(f"attestation {age}")
                continue
            document = statement.to_json()
            failed = [
                c.source
                for c in requirement.conditions
                if not c.holds(document["predicate"], document["subject"])
            ]
            if failed:
                reasons.append("condition false: " + "; ".join(failed))
                continue
            if why := _inconsistent(statement):
                reasons.append(why)
                continue
            signers.update(by)
            good.append((bundle, statement))
        # Count signers, not root names: two roots for one key are one signer (the policy
        # loader refuses that, and this holds even for a policy built another way).
        distinct = {_signer_of(self.policy.roots[name]) for name in signers}
        if len(distinct) >= requirement.threshold:
            return Check(label, True, f"verified ({', '.join(sorted(signers))})"), good
        found = "; ".join(reasons) if reasons else f"only {len(signers)} distinct signer(s)"
        return (
            Check(
                label,
                False,
                found,
                f"needs a valid attestation from {requirement.threshold} of "
                f"{', '.join(requirement.signed_by)}",
            ),
            [],
        )


def verify(
    digest: Digest,
    evidence: Any,
    policy: Policy,
    *,
    at: dt.datetime | None = None,
    offline: bool = True,
) -> Report:
    """Walk the chain of ``digest`` under ``policy``; see the module docstring.

    ``at`` is the reference time ages are measured at (default: now). ``offline`` verifies
    Sigstore bundles against the trust roots sigstore-python ships; otherwise the trust root is
    refreshed over TUF first, and an unreachable service is a refusal.
    """
    when = at or dt.datetime.now(dt.timezone.utc)
    return Report(_Walker(evidence, policy, when, offline).node(digest, ()))


def closest_attested(local: Manifest, evidence: Any) -> tuple[Manifest, ManifestDiff] | None:
    """The attested manifest a local directory differs least from, and how it differs.

    Used when a directory's digest matches no attestation: naming the added, removed and
    changed files against the dataset it was presumably meant to be is what a person needs.
    """
    best: tuple[int, Manifest, ManifestDiff] | None = None
    for candidate in evidence.manifests():
        if candidate.algorithm is not local.algorithm:
            continue
        changes = candidate.diff(local)
        size = len(changes.added) + len(changes.removed) + len(changes.changed)
        if best is None or size < best[0]:
            best = (size, candidate, changes)
    return (best[1], best[2]) if best else None
