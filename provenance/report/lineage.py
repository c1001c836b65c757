"""The lineage of an artifact: its chain as a graph an auditor can read.

Built from a verification :class:`~provenance.verify.core.Report` (the artifacts of the chain
and the policy's verdict on each) and the evidence it was verified from (the attestations
about each artifact). Artifacts come from the report tree; each attestation about an artifact
is drawn by what it says:

* a dataset attestation, an OpenSSF model signature: listed on the artifact's own node, with
  the dataset's ``sources`` as source nodes before it;
* build provenance (SLSA v1 / v0.2): a *step* node between its inputs and the artifact, with
  the source commit (*code*) and the interpreter's distributions (*environment*) as inputs;
* anything else -- test results (screening of a dataset, evaluation of a model), CycloneDX
  SBOMs, vulnerability scans, types this project does not know: an *evidence* node after the
  artifact, with a short summary of its predicate.

Verdicts: an artifact is ``trusted``, ``refused`` (its own checks failed) or ``input-refused``
(its own checks passed, an input's did not). An attestation is ``trusted`` when its signature
verifies under a root of the policy (and, for a test result, it did not fail), ``refused`` when
revoked or FAILED, ``warned`` for a WARNED result, and ``unverified`` when no root of the
policy verifies it -- or when no policy was given at all. Sources, code and environment nodes
are ``info``.

Every string here may come from an attestation and is untrusted: it is kept as data (made
printable and bounded in length, see :func:`clean`) and escaped by whoever draws it.

JSON form (``provenance show --tree --format json``; stable: keys may be added, not removed)::

    {"artifact": "sha256:...", "trusted": true | false | null, "policy": "<file>" | null,
     "root": "n0",
     "nodes": [{"id", "role", "title", "kind", "digest", "verdict", "details": [[k, v]],
                "attestations": [ATTESTATION], "checks": [{"requirement", "ok", "detail",
                "hint"}]}],
     "edges": [["<from id>", "<to id>"]],
     "failures": [{"artifact", "name", "requirement", "found", "hint"}]}
    ATTESTATION = {"id", "predicateType", "label", "signer", "verifiedBy", "signedAt",
                   "verdict", "note", "summary": [[k, v]]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from provenance.bundle import Bundle
from provenance.digest.algorithms import Digest
from provenance.errors import Error
from provenance.policy.model import KIND_PREDICATES, SLSA_PROVENANCE_V02, KeyRoot, Policy
from provenance.predicates.dataset import DATASET_PREDICATE
from provenance.predicates.oms import OMS_PREDICATE
from provenance.predicates.training import (
    ROLE_ENVIRONMENT,
    ROLE_SOURCE,
    SLSA_PROVENANCE_V1,
    TRAINING_BUILD_TYPE,
)
from provenance.statement import Statement
from provenance.verify.core import Check, Node, Report, inputs_of, signed_time, statements_about
from provenance.verify.signers import policy_signer

Verdict = Literal["trusted", "refused", "input-refused", "warned", "unverified", "info"]
Role = Literal["source", "artifact", "step", "evidence", "code", "environment", "release"]

TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
CYCLONEDX = "https://cyclonedx.org/bom"
VULNS = "https://in-toto.io/attestation/vulns/v0.2"
RELEASE = "https://ml-provenance.dev/attestation/release/v1"
EVALUATION = "https://ml-provenance.dev/attestation/evaluation/v1"
SCREENING = "https://ml-provenance.dev/attestation/screening/v1"
ROLE_ENVIRONMENT_SBOM = "environment-sbom"  # a training run's environment, by its SBOM digest
MAX_TEXT = 300  # characters of any one untrusted string kept
MAX_SOURCES = 8  # source nodes drawn per dataset; the rest are counted
MAX_SUMMARY = 6  # summary lines per attestation
MAX_EVIDENCE = 24  # evidence nodes drawn per artifact; the rest are counted
_SEVERITY: dict[str, int] = {
    "refused": 5,
    "input-refused": 4,
    "warned": 3,
    "unverified": 2,
    "trusted": 1,
    "info": 0,
}
_LABELS = {
    DATASET_PREDICATE: "dataset",
    SLSA_PROVENANCE_V1: "build provenance (SLSA v1)",
    SLSA_PROVENANCE_V02: "build provenance (SLSA v0.2)",
    OMS_PREDICATE: "model signature (OMS)",
    TEST_RESULT: "test result",
    CYCLONEDX: "SBOM (CycloneDX)",
    VULNS: "vulnerability scan",
    RELEASE: "release",
    EVALUATION: "evaluation",
    SCREENING: "screening figures",
}


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """``value`` as one printable line of at most ``limit`` characters.

    Control characters (newlines, escapes, bidirectional overrides) are shown as escapes, not
    passed on: a terminal or a page must show what an attestation says, not obey it.
    """
    text = value if isinstance(value, str) else _scalar(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Mapping):
        keys = ", ".join(clean(k, 40) for k in list(value)[:5])
        return "{" + keys + (", …}" if len(value) > 5 else "}")
    if isinstance(value, Sequence):
        return f"{len(value)} item(s)"
    return type(value).__name__


@dataclass(frozen=True)
class AttestationInfo:
    """One attestation as shown: what it is, who signed it, when, what it says."""

    id: str
    predicate_type: str
    label: str
    signer: str
    verified_by: str | None
    signed_at: str | None
    verdict: Verdict
    note: str
    summary: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": f"sha256:{self.id}",
            "predicateType": self.predicate_type,
            "label": self.label,
            "signer": self.signer,
            "verifiedBy": self.verified_by,
            "signedAt": self.signed_at,
            "verdict": self.verdict,
            "note": self.note,
            "summary": [list(item) for item in self.summary],
        }


@dataclass
class LineageNode:
    """One node of the graph."""

    id: str
    role: Role
    title: str
    verdict: Verdict
    kind: str | None = None
    digest: str | None = None
    details: list[tuple[str, str]] = field(default_factory=list)
    attestations: list[AttestationInfo] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "title": self.title,
            "kind": self.kind,
            "digest": self.digest,
            "verdict": self.verdict,
            "details": [list(item) for item in self.details],
            "attestations": [a.to_json() for a in self.attestations],
            "checks": [
                {"requirement": c.requirement, "ok": c.ok, "detail": c.detail, "hint": c.hint}
                for c in self.checks
            ],
        }


@dataclass(frozen=True)
class Failure:
    """A failed check, for the list of failures."""

    artifact: str
    name: str | None
    requirement: str
    found: str
    hint: str | None


@dataclass
class Lineage:
    """The graph: nodes in a deterministic order, edges from input to consumer."""

    artifact: str
    root: str
    trusted: bool | None  # None: drawn without a policy
    policy: str | None
    nodes: dict[str, LineageNode]
    edges: list[tuple[str, str]]
    failures: list[Failure]

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "trusted": self.trusted,
            "policy": self.policy,
            "root": self.root,
            "nodes": [n.to_json() for n in self.nodes.values()],
            "edges": [list(e) for e in self.edges],
            "failures": [
                {
                    "artifact": f.artifact,
                    "name": f.name,
                    "requirement": f.requirement,
                    "found": f.found,
                    "hint": f.hint,
                }
                for f in self.failures
            ],
        }

    def predecessors(self, node_id: str) -> list[str]:
        return [a for a, b in self.edges if b == node_id]

    def successors(self, node_id: str) -> list[str]:
        return [b for a, b in self.edges if a == node_id]


@dataclass(frozen=True)
class ReleaseInfo:
    """A release file the evidence came from, shown after the artifact it releases."""

    file_name: str
    sha256: str
    attestations: int
    manifests: int


def unverified_report(digest: Digest, evidence: Any, *, max_depth: int = 16) -> Report:
    """The chain of ``digest`` with no policy: every input any attestation names, unjudged.

    Nodes carry no checks (so none is trusted); :func:`build_lineage` without a policy marks
    them ``unverified``. Cycles and depth are bounded as the verifier bounds them.
    """

    def walk(current: Digest, path: tuple[Digest, ...]) -> Node:
        node = Node(current)
        if current in path or len(path) >= max_depth:
            return node
        statements = statements_about(evidence, current)
        types = {st.predicate_type for _, st in statements}
        kinds = [k for k, predicates in KIND_PREDICATES.items() if types & set(predicates)]
        node.kind = "+".join(kinds) if kinds else None
        names = [s.name for _, st in statements for s in st.subjects if s.matches(current)]
        node.name = next((n for n in names if n), None)
        inputs: list[Digest] = []
        for _, statement in statements:
            try:
                found = inputs_of(statement)
            except Error:
                continue
            inputs += [d for d in found if d != current and d not in inputs]
        node.inputs = [walk(d, (*path, current)) for d in inputs]
        return node

    return Report(walk(digest, ()))


def _own_verdict(node: Node, judged: bool) -> Verdict:
    if not judged:
        return "unverified"
    if not node.checks or not all(c.ok for c in node.checks):
        return "refused"
    return "trusted" if node.trusted else "input-refused"


def _worse(a: Verdict, b: Verdict) -> Verdict:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


class _Builder:
    def __init__(self, evidence: Any, policy: Policy | None, offline: bool) -> None:
        self.evidence = evidence
        self.policy = policy
        self.offline = offline
        self.nodes: dict[str, LineageNode] = {}
        self.edges: list[tuple[str, str]] = []
        self._edge_set: set[tuple[str, str]] = set()
        self.artifacts: dict[Digest, str] = {}
        self.steps: dict[Digest, list[tuple[str, list[Digest]]]] = {}
        self.keyed: dict[str, str] = {}  # dedupe key of shared nodes (sources, code) -> id

    def add(self, role: Role, title: str, verdict: Verdict, **fields: Any) -> LineageNode:
        node = LineageNode(f"n{len(self.nodes)}", role, clean(title, 120), verdict, **fields)
        self.nodes[node.id] = node
        return node

    def edge(self, source: str, target: str) -> None:
        if source != target and (source, target) not in self._edge_set:
            self._edge_set.add((source, target))
            self.edges.append((source, target))

    def shared(self, key: str, make: Any) -> str:
        """One node per distinct source URI or code commit, however many attestations name it."""
        if key not in self.keyed:
            self.keyed[key] = make().id
        return self.keyed[key]

    # -- artifacts ------------------------------------------------------------------------

    def artifact(self, node: Node) -> str:
        verdict = _own_verdict(node, self.policy is not None)
        existing = self.artifacts.get(node.digest)
        if existing is not None:
            shown = self.nodes[existing]
            shown.verdict = _worse(shown.verdict, verdict)
            known = {(c.requirement, c.detail) for c in shown.checks}
            shown.checks += [c for c in node.checks if (c.requirement, c.detail) not in known]
        else:
            # A name a trusted signer gave, else (for a refused node) the one claimed.
            claimed = [
                s.name
                for _, st in statements_about(self.evidence, node.digest)
                for s in st.subjects
                if s.matches(node.digest) and s.name
            ]
            title = node.name or next(iter(claimed), None) or node.kind or "artifact"
            shown = self.add("artifact", title, verdict, kind=node.kind, digest=str(node.digest))
            shown.checks = list(node.checks)
            self.artifacts[node.digest] = shown.id
            self._attestations(node.digest, shown)
        for child in node.inputs:
            child_id = self.artifact(child)
            steps = self.steps.get(node.digest, [])
            consumers = [s for s, inputs in steps if child.digest in inputs]
            for consumer in consumers or [shown.id]:
                self.edge(child_id, consumer)
        return shown.id

    def _attestations(self, digest: Digest, shown: LineageNode) -> None:
        extra = 0
        for bundle, statement in statements_about(self.evidence, digest):
            info = self.describe(bundle, statement, shown.kind)
            kind = statement.predicate_type
            if kind == DATASET_PREDICATE:
                shown.attestations.append(info)
                self._sources(statement, shown.id)
            elif kind in (OMS_PREDICATE, CYCLONEDX):  # what the artifact is: listed on it
                shown.attestations.append(info)
            elif kind in (SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02):
                self._step(digest, statement, info, shown.id)
            elif extra < MAX_EVIDENCE:  # checks made of it: nodes after it
                extra += 1
                evidence = self.add("evidence", info.label, info.verdict)
                evidence.attestations.append(info)
                self.edge(shown.id, evidence.id)
            else:
                extra += 1
        if extra > MAX_EVIDENCE:
            more = self.add("evidence", f"{extra - MAX_EVIDENCE} more attestation(s)", "info")
            self.edge(shown.id, more.id)

    def _sources(self, statement: Statement, target: str) -> None:
        sources = statement.predicate.get("sources")
        if not isinstance(sources, Sequence) or isinstance(sources, str):
            return
        for item in list(sources)[:MAX_SOURCES]:
            if not isinstance(item, Mapping) or not isinstance(item.get("uri"), str):
                continue
            uri = item["uri"]

            def make(uri: str = uri, item: Mapping[str, Any] = item) -> LineageNode:
                details = []
                if item.get("retrievedAt") is not None:
                    details.append(("retrieved", clean(item["retrievedAt"], 40)))
                if isinstance(item.get("digest"), Mapping):
                    details += [(clean(a, 12), clean(v, 80)) for a, v in item["digest"].items()]
                return self.add("source", uri, "info", details=details)

            self.edge(self.shared(f"source:{uri}", make), target)
        if len(sources) > MAX_SOURCES:
            more = self.add("source", f"{len(sources) - MAX_SOURCES} more source(s)", "info")
            self.edge(more.id, target)

    def _step(
        self, product: Digest, statement: Statement, info: AttestationInfo, target: str
    ) -> None:
        training = _build_type(statement) == TRAINING_BUILD_TYPE
        title = "training run" if training else info.label
        step = self.add("step", title, info.verdict)
        step.attestations.append(info)
        self.edge(step.id, target)
        try:
            inputs = inputs_of(statement)
        except Error as e:
            inputs = []
            step.details.append(("inputs", clean(e.message)))
        self.steps.setdefault(product, []).append((step.id, inputs))
        for dependency in _dependencies(statement):
            role = _role(dependency)
            if role == ROLE_SOURCE:
                self._code(dependency, step.id)
        environment = [d for d in _dependencies(statement) if _role(d) == ROLE_ENVIRONMENT]
        # When the run names its environment's SBOM ("environment-sbom"), that artifact is the
        # environment, drawn as an input with its own checks; the package list would repeat it.
        described = any(_role(d) == ROLE_ENVIRONMENT_SBOM for d in _dependencies(statement))
        if environment and not described:
            names = [clean(d.get("uri") or d.get("name"), 80) for d in environment]
            env = self.add(
                "environment",
                f"{len(environment)} Python distribution(s)",
                "info",
                details=[("package", n) for n in names[:4]]
                + ([("…", f"{len(names) - 4} more")] if len(names) > 4 else []),
            )
            self.edge(env.id, step.id)

    def _code(self, dependency: Mapping[str, Any], step: str) -> None:
        digest = dependency.get("digest")
        commit = digest.get("gitCommit") if isinstance(digest, Mapping) else None
        annotations = dependency.get("annotations")
        dirty = annotations.get("dirty") if isinstance(annotations, Mapping) else None
        uri = dependency.get("uri")
        bad = dirty is not False and self.policy is not None and not self.policy.allow_dirty

        def make() -> LineageNode:
            details = [("commit", clean(commit, 64))]
            details.append(("tree", "dirty" if dirty else "clean" if dirty is False else "?"))
            if isinstance(uri, str):
                details.append(("uri", clean(uri)))
            verdict: Verdict = "refused" if bad else "info"
            return self.add("code", f"commit {clean(commit)[:12]}", verdict, details=details)

        self.edge(self.shared(f"code:{commit}:{dirty}", make), step)

    # -- one attestation ------------------------------------------------------------------

    def describe(self, bundle: Bundle, statement: Statement, kind: str | None) -> AttestationInfo:
        predicate_type = statement.predicate_type
        label = _LABELS.get(predicate_type) or _last_segment(predicate_type)
        if predicate_type == TEST_RESULT:
            label = {
                "dataset": "screening",
                "model": "evaluation",
                "environment": "integrity check",
            }.get(kind or "", label)
        summary = tuple((clean(k, 40), clean(v, 160)) for k, v in _summary(statement))
        verified_by, note = self.signature(bundle)
        verdict: Verdict = "unverified" if verified_by is None else "trusted"
        if note.startswith("revoked"):
            verdict = "refused"
        result = statement.predicate.get("result")
        if verdict == "trusted" and result == "FAILED":
            verdict, note = "refused", f"{note}; result FAILED"
        elif verdict == "trusted" and result == "WARNED":
            verdict, note = "warned", f"{note}; result WARNED"
        when = _time_of(statement)
        signer = _signer(bundle)
        root = self.policy.roots.get(verified_by) if self.policy and verified_by else None
        if isinstance(root, KeyRoot):  # the key that verified it, whatever the hint's form
            signer = f"key {root.key.key_id[:16]}"
        return AttestationInfo(
            id=bundle.attestation_id,
            predicate_type=clean(predicate_type),
            label=clean(label, 60),
            signer=clean(signer, 200),
            verified_by=verified_by,
            signed_at=when,
            verdict=verdict,
            note=note,
            summary=summary[:MAX_SUMMARY],
        )

    def signature(self, bundle: Bundle) -> tuple[str | None, str]:
        """The policy root whose key or identity the signature verifies under, and a note."""
        if self.policy is None:
            return None, "not verified: no policy given"
        return policy_signer(bundle, self.policy, offline=self.offline)


def _signer(bundle: Bundle) -> str:
    """Who the bundle says signed it (a claim until :meth:`_Builder.signature` checks it)."""
    if not bundle.keyless:
        return f"key {(bundle.key_hint or '?')[:16]}"
    try:
        from provenance.signing.sigstore import certificate_identity

        identity, issuer = certificate_identity(bundle)
    except Error:
        return "Sigstore certificate (unreadable)"
    return f"{identity} ({issuer})"


def _last_segment(predicate_type: str) -> str:
    parts = [p for p in predicate_type.replace("#", "/").split("/") if p]
    if len(parts) >= 2 and parts[-1][:1] == "v" and parts[-1][1:2].isdigit():
        return f"{parts[-2]} {parts[-1]}"
    return parts[-1] if parts else "attestation"


def _build_type(statement: Statement) -> object:
    definition = statement.predicate.get("buildDefinition")
    if isinstance(definition, Mapping):
        return definition.get("buildType")
    return statement.predicate.get("buildType")


def _dependencies(statement: Statement) -> list[Mapping[str, Any]]:
    definition = statement.predicate.get("buildDefinition")
    value = definition.get("resolvedDependencies") if isinstance(definition, Mapping) else None
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [d for d in value if isinstance(d, Mapping)]


def _role(dependency: Mapping[str, Any]) -> object:
    annotations = dependency.get("annotations")
    return annotations.get("role") if isinstance(annotations, Mapping) else None


def _get(value: Any, *path: str) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _time_of(statement: Statement) -> str | None:
    """A time the statement itself signs, if it has one."""
    made = signed_time(statement)
    if made is not None:
        return made.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    for path in (
        ("metadata", "scanFinishedOn"),
        ("evaluatedAt",),
        ("releasedAt",),
        ("metadata", "timestamp"),
    ):
        value = _get(statement.predicate, *path)
        if isinstance(value, str):
            return clean(value, 40)
    return None


def _items(value: Any) -> list[Any]:
    """A JSON array as a list; anything else as an empty one."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def _count(value: Any) -> int | None:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return len(value)
    return None


def _dataset_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "name", p.get("name")
    yield "files", p.get("files")
    yield "bytes", p.get("bytes")
    if p.get("license") is not None:
        yield "license", p.get("license")
    yield "sources", _count(p.get("sources"))
    if _count(p.get("parents")):
        yield "parents", _count(p.get("parents"))


def _slsa_v1_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    parameters = _get(p, "buildDefinition", "externalParameters")
    if isinstance(parameters, Mapping):
        if parameters.get("step") is not None:
            yield "step", parameters.get("step")
        if command := _items(parameters.get("command")):
            yield "command", " ".join(clean(c, 60) for c in command[:8])
        if materials := _items(parameters.get("materials")):
            yield "materials", ", ".join(clean(m, 40) for m in materials[:4])
    yield "buildType", _get(p, "buildDefinition", "buildType")
    yield "builder", _get(p, "runDetails", "builder", "id")
    yield "finished", _get(p, "runDetails", "metadata", "finishedOn")


def _slsa_v02_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "buildType", p.get("buildType")
    yield "builder", _get(p, "builder", "id")
    yield "materials", _count(p.get("materials"))


def _oms_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "files", _count(p.get("resources"))
    yield "method", _get(p, "serialization", "method")
    yield "hash", _get(p, "serialization", "hash_type")


def _test_result_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "result", p.get("result")
    for name in ("passedTests", "warnedTests", "failedTests"):
        yield name.removesuffix("Tests"), _count(p.get(name))
    if failed := _items(p.get("failedTests")):
        yield "first failure", failed[0]
    configuration = _items(p.get("configuration"))
    if configuration and isinstance(configuration[0], Mapping):
        yield "check", configuration[0].get("name") or configuration[0].get("uri")


def _cyclonedx_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "spec", p.get("specVersion")
    yield "components", _count(p.get("components"))
    yield "describes", _get(p, "metadata", "component", "name")


def _vulns_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    results = _get(p, "scanner", "result")
    yield "scanner", _get(p, "scanner", "uri")
    yield "findings", _count(results)
    if results := _items(results):
        yield "ids", ", ".join(clean(_get(r, "id"), 30) for r in results[:3])


def _release_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "artifact", _get(p, "artifact", "name")
    yield "attestations", _count(p.get("attestations"))


def _evaluation_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "accuracy", _get(p, "metrics", "accuracy")
    yield "dataset", _get(p, "dataset", "name") or _get(p, "dataset", "path")
    if isinstance(p.get("probe"), Mapping):
        yield "probe", p["probe"]
    yield "regression", _get(p, "regression", "accuracy")


def _screening_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    yield "result", p.get("result")
    checks = p.get("checks")
    if isinstance(checks, Mapping):
        for name in sorted(checks, key=str)[: MAX_SUMMARY - 1]:
            yield name, _get(checks[name], "result")


def _generic_summary(p: Mapping[str, Any]) -> Iterable[tuple[str, object]]:
    for key in sorted(p, key=str)[:MAX_SUMMARY]:
        yield key, p[key]


_SUMMARIES = {
    DATASET_PREDICATE: _dataset_summary,
    SLSA_PROVENANCE_V1: _slsa_v1_summary,
    SLSA_PROVENANCE_V02: _slsa_v02_summary,
    OMS_PREDICATE: _oms_summary,
    TEST_RESULT: _test_result_summary,
    CYCLONEDX: _cyclonedx_summary,
    VULNS: _vulns_summary,
    RELEASE: _release_summary,
    EVALUATION: _evaluation_summary,
    SCREENING: _screening_summary,
}


def _summary(statement: Statement) -> Iterable[tuple[str, object]]:
    """A few lines saying what the predicate says, by type; generic for unknown types."""
    summarise = _SUMMARIES.get(statement.predicate_type, _generic_summary)
    return summarise(statement.predicate)


def build_lineage(
    report: Report,
    evidence: Any,
    policy: Policy | None,
    *,
    policy_name: str | None = None,
    offline: bool = True,
    release: ReleaseInfo | None = None,
) -> Lineage:
    """The lineage graph of ``report``'s artifact; see the module docstring.

    Without a policy, pass :func:`unverified_report`'s report: nothing is judged and every node
    is shown ``unverified``. ``offline`` is as for :func:`provenance.verify.core.verify` (it
    applies to the per-attestation signature checks of keyless bundles).
    """
    builder = _Builder(evidence, policy, offline)
    root = builder.artifact(report.root)
    if release is not None:
        node = builder.add(
            "release",
            release.file_name,
            "info",
            details=[
                ("sha256", release.sha256),
                ("attestations", str(release.attestations)),
                ("manifests", str(release.manifests)),
            ],
        )
        builder.edge(root, node.id)
    failures = [
        Failure(str(node.digest), node.name, check.requirement, check.detail, check.hint)
        for node, check in report.root.failures()
    ]
    unique = list(dict.fromkeys(failures))
    return Lineage(
        artifact=str(report.root.digest),
        root=root,
        trusted=report.trusted if policy is not None else None,
        policy=policy_name,
        nodes=builder.nodes,
        edges=builder.edges,
        failures=unique,
    )


__all__ = [
    "AttestationInfo",
    "Failure",
    "Lineage",
    "LineageNode",
    "ReleaseInfo",
    "build_lineage",
    "clean",
    "unverified_report",
]
