"""A CycloneDX 1.6 ML-BOM of a trained model, written from its *verified* chain.

An ML-BOM is a claim about a model made to someone else: these datasets trained it, this
environment ran the training, it scored this on that held-out set. Such a claim is only worth
what the chain behind it is worth, so :func:`describe_model` verifies the model under a policy
first and refuses an unverified chain, and it describes only statements the policy accepted:
a dataset or evaluation attestation signed by someone the policy does not trust for it says
nothing here, however it reached the ledger (see :func:`accepted_statements`).

The mapping (``attest/mlbom.md`` has the full table):

* the model is ``metadata.component``, type ``machine-learning-model``, its ``bom-ref`` and
  ``version`` its digest, its hash the file's SHA-256 (a directory model's is its manifest root
  digest, said so by a property), its ``modelCard`` listing the training and evaluation
  datasets by reference and the evaluation figures as ``performanceMetrics``;
* each dataset is a ``data`` component (its digest as ``bom-ref``/``version``/hash, its licence,
  its sources as ``distribution`` references) with a ``data[]`` entry of type ``dataset``;
* the environment SBOM the training provenance names (``environment-sbom``) is copied in: its
  ``platform`` component and every ``library`` under it, ``bom-ref``\\s prefixed with the
  environment digest so that two environments never collide;
* ``dependencies``: the model depends on its materials and environments, a dataset on its
  parents, an environment on its libraries. Evaluation datasets are referenced from the model
  card only: evaluating a model does not make it depend on the evaluation set.

cyclonedx-python-lib builds what it models (components, hashes, licences, references,
properties, dependencies); it has no model card or component data, so those are added to its
JSON as the 1.6 schema defines them. The output is deterministic: no ``serialNumber``, no
timestamp, no tool versions, everything sorted, RFC 8785 canonical JSON -- the same chain
always gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from provenance.bundle import Bundle
from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.canonical import canonical_json
from provenance.errors import Error, RefusedError
from provenance.policy.model import Policy
from provenance.predicates.dataset import DATASET_PREDICATE
from provenance.predicates.evaluation import EVALUATION_PREDICATE
from provenance.predicates.sbom import CYCLONEDX_PREDICATE
from provenance.predicates.training import (
    ROLE_ENVIRONMENT_SBOM,
    ROLE_MATERIAL,
    SourceState,
    is_training,
    source_of,
)
from provenance.statement import Statement
from provenance.verify.core import Node, Report, statements_about, verify

if TYPE_CHECKING:
    from cyclonedx.model import ExternalReference, HashType, Property
    from cyclonedx.model.component import Component, ComponentType

log = logging.getLogger(__name__)

PREFIX = "ml-provenance:"
MAX_METRICS = 1000  # per evaluation; a bigger figure set (a huge confusion matrix) is cut
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_NOT_IRI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


class BomRefusedError(RefusedError):
    """The model's chain does not support an ML-BOM: unattested, untrusted, or not trained."""


class BomSchemaError(Exception):
    """The BOM built fails CycloneDX's schema: a bug here, never the user's input.

    Deliberately not an :class:`~provenance.errors.Error`: the CLI reports it as an internal
    error (exit 3) rather than as bad input.
    """


@dataclasses.dataclass(frozen=True)
class MlBom:
    """The BOM bytes, and what was left out of it and why (for the person, not the BOM)."""

    data: bytes
    model: Digest
    name: str
    components: int
    notes: tuple[str, ...]


# -- which statements the policy accepted ----------------------------------------------------


def accepted_statements(
    digest: Digest,
    evidence: Any,
    policy: Policy,
    *,
    at: dt.datetime | None = None,
    offline: bool = True,
) -> list[tuple[Bundle, Statement]]:
    """The statements about ``digest`` that met a requirement of its kind's policy rule when the
    verifier walked it (signature, revocation, age, conditions); none unless it is trusted."""
    root = verify(digest, evidence, policy, at=at, offline=offline).root
    return list(root.accepted) if root.trusted else []


# -- reading the predicates ------------------------------------------------------------------


def _digests(value: Any) -> list[Digest]:
    """The accepted digests of a descriptor's ``digest`` map (others cannot be vouched for)."""
    accepted = {a.value: a for a in Algorithm}
    if not isinstance(value, Mapping):
        return []
    found: list[Digest] = []
    for name, hex_value in value.items():
        if name in accepted and isinstance(hex_value, str):
            try:
                found.append(Digest(accepted[name], hex_value))
            except Error:
                continue
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dependencies(statement: Statement, role: str) -> list[tuple[str | None, Digest]]:
    """(name, digest) of the resolved dependencies of ``role`` in training provenance."""
    definition = statement.predicate.get("buildDefinition")
    items = definition.get("resolvedDependencies") if isinstance(definition, Mapping) else None
    found: list[tuple[str | None, Digest]] = []
    for item in items if isinstance(items, Sequence) and not isinstance(items, str) else ():
        annotations = item.get("annotations") if isinstance(item, Mapping) else None
        if isinstance(annotations, Mapping) and annotations.get("role") == role:
            found += [(_text(item.get("name")), d) for d in _digests(item.get("digest"))]
    return found


def _path(document: Any, *keys: str) -> Any:
    for key in keys:
        document = document.get(key) if isinstance(document, Mapping) else None
    return document


def _number(value: float) -> str:
    """A figure as CycloneDX's string: integers as integers, floats in shortest round-trip form."""
    return str(value) if isinstance(value, int) else repr(float(value))


def flatten_metrics(metrics: Any) -> list[tuple[str, str]]:
    """Every number in an evaluation's ``metrics``, as (dotted path, value text), sorted.

    Read generically -- the figures a project computes are its own -- so nested objects and
    lists become dotted paths. A list of objects that each carry a distinct ``label`` (per-class
    figures) is keyed by the labels rather than by position (``perClass.3.recall``, not
    ``perClass.0.recall``), and the label itself is not a figure. Booleans, strings and nulls
    are not figures and are skipped.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), metrics)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if path:
                found.append((".".join(path), _number(value)))
        elif isinstance(value, Mapping):
            stack += [((*path, str(k)), v) for k, v in value.items()]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            labels = [_label(item) for item in value]
            if all(label is not None for label in labels) and len(set(labels)) == len(labels):
                stack += [
                    ((*path, str(label)), {k: v for k, v in item.items() if k != "label"})
                    for label, item in zip(labels, value, strict=True)
                ]
            else:
                stack += [((*path, str(i)), v) for i, v in enumerate(value)]
    return sorted(found)


def _label(item: Any) -> str | None:
    label = item.get("label") if isinstance(item, Mapping) else None
    if isinstance(label, bool) or not isinstance(label, int | str):
        return None
    return str(label)


# -- building ----------------------------------------------------------------------------------


def _uri(text: str) -> str | None:
    """``text`` as CycloneDX will print it, if it is an absolute IRI; else None."""
    from cyclonedx.exception.model import InvalidUriException
    from cyclonedx.model import XsUri

    try:
        printed = str(XsUri(text))
    except InvalidUriException:
        return None
    return printed if _SCHEME.match(printed) and not _NOT_IRI.search(printed) else None


def _hash(digest: Digest) -> HashType:
    from cyclonedx.model import HashAlgorithm, HashType

    algorithm = {Algorithm.SHA256: HashAlgorithm.SHA_256, Algorithm.BLAKE3: HashAlgorithm.BLAKE3}
    return HashType(alg=algorithm[digest.algorithm], content=digest.value)


def _property(name: str, value: str) -> Property:
    from cyclonedx.model import Property

    return Property(name=PREFIX + name, value=value)


def _ids(bundles: Iterable[Bundle]) -> list[Property]:
    return [_property("attestation-id", f"sha256:{b.attestation_id}") for b in bundles]


class _Builder:
    """The BOM of one model, built up component by component (keyed by bom-ref)."""

    def __init__(
        self, evidence: Any, policy: Policy, at: dt.datetime | None, offline: bool
    ) -> None:
        self.evidence = evidence
        self.policy = policy
        self.at = at
        self.offline = offline
        self.components: dict[str, Component] = {}
        self.roles: dict[str, set[str]] = {}
        self.depends: dict[str, set[str]] = {}
        self.data: dict[str, dict[str, Any]] = {}  # bom-ref -> its data[] entry
        self.copied: list[dict[str, Any]] = []  # environment components, as JSON
        self.copied_dependencies: list[dict[str, Any]] = []
        self.card_datasets: set[str] = set()
        self.metrics: list[dict[str, str]] = []
        self.notes: list[str] = []
        self._accepted: dict[Digest, list[tuple[Bundle, Statement]]] = {}
        self._known: dict[Digest, Node] = {}

    def accepted(self, digest: Digest) -> list[tuple[Bundle, Statement]]:
        if digest not in self._accepted:
            self._accepted[digest] = accepted_statements(
                digest, self.evidence, self.policy, at=self.at, offline=self.offline
            )
        return self._accepted[digest]

    def trusted_node(self, digest: Digest) -> Node | None:
        """The digest's node in the verified tree, or else its own verification, if trusted."""
        if digest not in self._known:
            self._known[digest] = verify(
                digest, self.evidence, self.policy, at=self.at, offline=self.offline
            ).root
        node = self._known[digest]
        return node if node.trusted else None

    def component(
        self,
        kind: ComponentType,
        name: str,
        digest: Digest,
        bundles: Iterable[Bundle],
        *,
        directory: bool = False,
    ) -> Component:
        """A component named by its digest: bom-ref, version and hash (of the file, or of the
        manifest for a directory: a dataset, or anything whose manifest the evidence holds)."""
        from cyclonedx.model.component import Component, ComponentType

        manifest = (
            directory or kind is ComponentType.DATA or self.evidence.manifest(digest) is not None
        )
        return Component(
            type=kind,
            name=name,
            version=str(digest),
            bom_ref=str(digest),
            hashes=[_hash(digest)],
            properties=[
                _property("digest", str(digest)),
                _property("digest-of", "manifest" if manifest else "file"),
                *_ids(bundles),
            ],
        )

    # -- the model ------------------------------------------------------------------------------

    def model(self, report: Report, *, directory: bool) -> Component:
        """The model component, its training inputs and its evaluations (see the module doc)."""
        from cyclonedx.model.component import ComponentType

        digest = report.root.digest
        self._known.update({n.digest: n for n in report.root.inputs})
        self._known[digest] = report.root
        accepted = self.accepted(digest)
        trainings = [s for _, s in accepted if is_training(s)]
        if not trainings:
            raise BomRefusedError(
                f"{digest}: the policy accepts no training provenance of this model",
                hint="an ML-BOM describes a trusted training run: require it in the model rule",
            )
        name = report.root.name or next(
            (s.name for st in trainings for s in st.subjects if s.matches(digest) and s.name),
            str(digest),
        )
        bundles = [b for b, _ in accepted]
        model = self.component(
            ComponentType.MACHINE_LEARNING_MODEL, name, digest, bundles, directory=directory
        )
        self.components[str(digest)] = model
        for statement in trainings:
            self.training(model, statement)
        self.evaluations(digest, accepted)
        return model

    def training(self, model: Component, statement: Statement) -> None:
        """What one accepted training statement says: inputs, environment, run, source."""
        from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

        ref = str(model.bom_ref)
        model.properties.update(_training_properties(statement))
        for label, material in _dependencies(statement, ROLE_MATERIAL):
            node = self._known.get(material)
            if node is None or not node.trusted:  # the verifier follows every material
                raise BomRefusedError(f"material {material} was not verified with the model")
            self.depends.setdefault(ref, set()).add(self.material(node, label, "training"))
        for _, sbom in _dependencies(statement, ROLE_ENVIRONMENT_SBOM):
            model.properties.add(_property("environment", str(sbom)))
            platform = self.environment(sbom)
            if platform is not None:
                self.depends.setdefault(ref, set()).add(platform)
        for state in source_of(statement):
            if isinstance(state, SourceState) and state.uri and _uri(state.uri):
                model.external_references.add(
                    ExternalReference(
                        type=ExternalReferenceType.VCS,
                        url=XsUri(state.uri),
                        comment=f"commit {state.commit}",
                    )
                )

    def evaluations(self, model: Digest, accepted: Sequence[tuple[Bundle, Statement]]) -> None:
        """The accepted evaluations' figures, and their datasets for the model card.

        Each figure's ``slice`` is the evaluation dataset's digest (the bom-ref of its ``data``
        component), so figures from two evaluations stay apart. An evaluation dataset is not in
        the model's chain, so it is verified here on its own: when it is not trusted it is
        described only by what the (trusted) evaluation says of it, and a note says so.
        """
        evaluations = [s for _, s in accepted if s.predicate_type == EVALUATION_PREDICATE]
        present = [
            s
            for _, s in statements_about(self.evidence, model)
            if s.predicate_type == EVALUATION_PREDICATE
        ]
        if len(present) > len(evaluations):
            self.notes.append(
                f"{len(present) - len(evaluations)} evaluation attestation(s) left out: the "
                f"policy does not accept them (require {EVALUATION_PREDICATE} in the model rule)"
            )
        for statement in evaluations:
            dataset = _path(statement.predicate, "dataset")
            digests = _digests(_path(dataset, "digest"))
            ref = (
                self.evaluation_dataset(digests[0], _text(_path(dataset, "name")))
                if digests
                else None
            )
            figures = flatten_metrics(statement.predicate.get("metrics"))
            if len(figures) > MAX_METRICS:
                self.notes.append(f"{len(figures) - MAX_METRICS} evaluation figure(s) left out")
                figures = figures[:MAX_METRICS]
            for kind, value in figures:
                metric = {"type": kind, "value": value}
                if ref is not None:
                    metric["slice"] = ref
                self.metrics.append(metric)

    def evaluation_dataset(self, digest: Digest, label: str | None) -> str:
        from cyclonedx.model.component import ComponentType

        node = self.trusted_node(digest)
        if node is not None:
            ref = self.material(node, label, "evaluation")
        else:
            ref = str(digest)
            self.roles.setdefault(ref, set()).add("evaluation")
            if ref not in self.components:
                name = label or ref
                self.components[ref] = self.component(ComponentType.DATA, name, digest, [])
                self.data[ref] = {"type": "dataset", "name": name}
                self.notes.append(
                    f"evaluation dataset {ref} is not trusted under the policy: described "
                    "only by the evaluation that names it"
                )
        self.card_datasets.add(ref)
        return ref

    # -- datasets and other materials -------------------------------------------------------------

    def material(self, node: Node, label: str | None, role: str) -> str:
        """Describe a trusted input (a dataset, its parents, a base model); return its ref."""
        from cyclonedx.model.component import ComponentType

        ref = str(node.digest)
        self.roles.setdefault(ref, set()).add(role)
        if role in ("training", "evaluation") and "dataset" in (node.kind or "").split("+"):
            self.card_datasets.add(ref)
        if ref in self.components:
            return ref
        kinds = (node.kind or "").split("+")
        if "dataset" in kinds:
            self.dataset(node, label)
        else:
            kind = ComponentType.MACHINE_LEARNING_MODEL if "model" in kinds else ComponentType.FILE
            bundles = [b for b, _ in self.accepted(node.digest)]
            self.components[ref] = self.component(
                kind, node.name or label or ref, node.digest, bundles
            )
        return ref

    def dataset(self, node: Node, label: str | None) -> None:
        """A ``data`` component from the newest accepted dataset statement; parents too."""
        from cyclonedx.contrib.license.factories import LicenseFactory
        from cyclonedx.model.component import ComponentType

        ref = str(node.digest)
        statements = [
            (b, s) for b, s in self.accepted(node.digest) if s.predicate_type == DATASET_PREDICATE
        ]
        predicate = statements[-1][1].predicate if statements else {}
        name = _text(predicate.get("name")) or node.name or label or ref
        component = self.component(
            ComponentType.DATA, name, node.digest, [b for b, _ in statements]
        )
        component.description = _text(predicate.get("description"))
        license_text = _text(predicate.get("license"))
        if license_text:
            component.licenses = [LicenseFactory().make_from_string(license_text)]
        for field in ("files", "bytes"):
            value = predicate.get(field)
            if isinstance(value, int) and not isinstance(value, bool):
                component.properties.add(_property(field, str(value)))
        urls: list[str] = []
        for source in predicate.get("sources") or ():
            reference = _source(source)
            if isinstance(reference, str):
                component.properties.add(_property("source", reference))
            elif reference is not None:
                component.external_references.add(reference)
                urls.append(str(reference.url))
        entry: dict[str, Any] = {"type": "dataset", "name": name}
        if len(urls) == 1:  # one place to get it from; several are the references above
            entry["contents"] = {"url": urls[0]}
        self.components[ref] = component
        self.data[ref] = entry
        for parent in node.inputs:
            self.depends.setdefault(ref, set()).add(self.material(parent, None, "parent"))

    # -- the environment ------------------------------------------------------------------------

    def environment(self, digest: Digest) -> str | None:
        """Copy the trusted environment SBOM named ``digest`` in; return its platform's ref."""
        ref = str(digest)
        if any(c.get("bom-ref") == ref for c in self.copied):
            return ref
        node = self.trusted_node(digest)
        sboms = [
            (b, s)
            for b, s in (self.accepted(digest) if node is not None else [])
            if s.predicate_type == CYCLONEDX_PREDICATE
        ]
        if not sboms:
            self.notes.append(
                f"the environment SBOM {digest} is not trusted under the policy: its "
                "components are left out (the model names it in a property)"
            )
            return None
        bom = sboms[-1][1].to_json()["predicate"]
        if digest.algorithm is not Algorithm.SHA256 or (
            hashlib.sha256(canonical_json(bom)).hexdigest() != digest.value
        ):
            self.notes.append(
                f"the SBOM signed about {digest} does not hash to it: its components are left out"
            )
            return None
        prefix = f"{ref}/"
        platform = _prefixed(_path(bom, "metadata", "component") or {}, prefix)
        original = platform.get("bom-ref")
        platform.update(
            {
                "type": platform.get("type", "platform"),
                "name": platform.get("name", "python-environment"),
                "bom-ref": ref,
                "hashes": [{"alg": "SHA-256", "content": digest.value}],
                "properties": [
                    *platform.get("properties", []),
                    {"name": PREFIX + "digest", "value": ref},
                    {"name": PREFIX + "digest-of", "value": "sbom"},
                    *({"name": p.name, "value": p.value} for p in _ids(b for b, _ in sboms)),
                ],
            }
        )
        self.copied.append(platform)
        self.copied += _prefixed(bom.get("components", []), prefix)
        for dependency in _prefixed(bom.get("dependencies", []), prefix):
            if dependency.get("ref") == original:
                dependency["ref"] = ref
            self.copied_dependencies.append(dependency)
        return ref

    # -- the document -----------------------------------------------------------------------------

    def document(self, model: Component) -> dict[str, Any]:
        """The BOM as JSON: the library's output, completed and sorted."""
        from cyclonedx.model.bom import Bom
        from cyclonedx.output.json import JsonV1Dot6

        model_ref = str(model.bom_ref)
        bom = Bom()
        bom.metadata.component = model
        bom.components.update(c for ref, c in self.components.items() if ref != model_ref)
        for ref, targets in self.depends.items():
            inside = sorted(t for t in targets if t in self.components)
            bom.register_dependency(self.components[ref], [self.components[t] for t in inside])
        with warnings.catch_warnings():
            # A model whose only dependencies are environments gets them below, outside the
            # library, which would otherwise warn that the root has none.
            warnings.filterwarnings("ignore", "The Component this BOM is describing", UserWarning)
            document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
        document.pop("serialNumber", None)
        metadata = document.setdefault("metadata", {})
        metadata.pop("timestamp", None)
        metadata.pop("tools", None)
        card: dict[str, Any] = {}
        if self.card_datasets:
            card["modelParameters"] = {"datasets": [{"ref": r} for r in sorted(self.card_datasets)]}
        if self.metrics:
            unique = {tuple(sorted(m.items())): m for m in self.metrics}
            card["quantitativeAnalysis"] = {
                "performanceMetrics": [unique[k] for k in sorted(unique)]
            }
        if card:
            metadata["component"]["modelCard"] = card
        components: list[dict[str, Any]] = document.get("components", [])
        for component in components:
            ref = component["bom-ref"]
            if ref in self.data:
                component["data"] = [self.data[ref]]
            component.setdefault("properties", []).extend(
                {"name": PREFIX + "role", "value": r} for r in sorted(self.roles.get(ref, ()))
            )
        components += self.copied
        for component in [metadata["component"], *components]:
            if "properties" in component:
                component["properties"] = sorted(
                    component["properties"], key=lambda p: (p.get("name", ""), p.get("value", ""))
                )
        document["components"] = sorted(components, key=lambda c: str(c.get("bom-ref", "")))
        graph: dict[str, set[str]] = {}
        for entry in [*document.get("dependencies", []), *self.copied_dependencies]:
            graph.setdefault(entry["ref"], set()).update(entry.get("dependsOn", []))
        graph.setdefault(model_ref, set()).update(self.depends.get(model_ref, set()))
        document["dependencies"] = [
            {"ref": ref, **({"dependsOn": sorted(targets)} if targets else {})}
            for ref, targets in sorted(graph.items())
        ]
        return document


def _source(source: Any) -> ExternalReference | str | None:
    """A dataset source as a ``distribution`` reference, or as plain text if not an IRI."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

    uri = _text(source.get("uri")) if isinstance(source, Mapping) else None
    if uri is None:
        return None
    if _uri(uri) is None:
        return uri
    retrieved = _text(source.get("retrievedAt"))
    return ExternalReference(
        type=ExternalReferenceType.DISTRIBUTION,
        url=XsUri(uri),
        comment=f"retrieved {retrieved}" if retrieved else None,
        hashes=[_hash(d) for d in _digests(source.get("digest"))],
    )


def _prefixed(document: Any, prefix: str) -> Any:
    """A copy of ``document`` with every ``bom-ref`` and dependency reference prefixed."""
    if isinstance(document, list):
        return [_prefixed(item, prefix) for item in document]
    if not isinstance(document, dict):
        return document
    copy: dict[str, Any] = {}
    for key, value in document.items():
        if key in ("bom-ref", "ref") and isinstance(value, str):
            copy[key] = prefix + value
        elif key == "dependsOn" and isinstance(value, list):
            copy[key] = [prefix + v if isinstance(v, str) else v for v in value]
        else:
            copy[key] = _prefixed(value, prefix)
    return copy


def _training_properties(statement: Statement) -> list[Property]:
    """What the run says about itself: builder, invocation, times, source commit."""
    fields = {
        "builder": ("runDetails", "builder", "id"),
        "invocation": ("runDetails", "metadata", "invocationId"),
        "started": ("runDetails", "metadata", "startedOn"),
        "finished": ("runDetails", "metadata", "finishedOn"),
    }
    found = [
        _property(name, value)
        for name, path in fields.items()
        if (value := _text(_path(statement.predicate, *path)))
    ]
    for state in source_of(statement):
        if isinstance(state, SourceState):
            found.append(_property("source-commit", state.commit))
            found.append(_property("source-dirty", "true" if state.dirty else "false"))
    return found


def describe_model(
    digest: Digest,
    evidence: Any,
    policy: Policy,
    *,
    at: dt.datetime | None = None,
    offline: bool = True,
    directory: bool = False,
) -> MlBom:
    """The ML-BOM of the model ``digest`` from its chain in ``evidence``; see the module docstring.

    Refuses (:class:`BomRefusedError`) a model that no training provenance names, one whose
    chain does not verify under ``policy``, and one trusted only through other statements (an
    OMS signature): an ML-BOM describes a training run the policy vouches for. ``directory``
    says the model is a directory, so that its hash is a manifest root digest.
    """
    if not any(is_training(s) for _, s in statements_about(evidence, digest)):
        raise BomRefusedError(
            f"{digest}: no SLSA training provenance names this model",
            hint="train it with 'provenance run', or give the --bundle that holds its chain",
        )
    report = verify(digest, evidence, policy, at=at, offline=offline)
    if not report.trusted:
        failures = report.root.failures()
        node, check = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise BomRefusedError(
            f"refusing to describe an unverified chain: {node.digest}: {check.requirement}: "
            f"{check.detail}{more}",
            hint="'provenance verify MODEL --policy P' lists every failure",
        )
    builder = _Builder(evidence, policy, at, offline)
    model = builder.model(report, directory=directory)
    document = builder.document(model)
    return MlBom(
        canonical_json(document),
        digest,
        model.name,
        len(document["components"]),
        tuple(builder.notes),
    )


def validate_bom(data: bytes) -> bool:
    """Check ``data`` against the CycloneDX 1.6 JSON schema, strictly.

    Returns False when the validator is not installed (the ``json-validation`` extra of
    cyclonedx-python-lib): the check is a guard against this module's bugs, so its absence
    must not stop a user. Raises :class:`BomSchemaError` when the BOM is invalid.
    """
    from cyclonedx.exception import MissingOptionalDependencyException
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode("utf-8"))
    except MissingOptionalDependencyException as e:
        log.debug("ML-BOM not validated: %s", e)
        return False
    if error is not None:
        raise BomSchemaError(f"the ML-BOM fails the CycloneDX 1.6 schema: {error}")
    return True


__all__ = [
    "PREFIX",
    "BomRefusedError",
    "BomSchemaError",
    "MlBom",
    "accepted_statements",
    "describe_model",
    "flatten_metrics",
    "validate_bom",
]
