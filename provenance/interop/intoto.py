"""in-toto layout and link export: a verified chain, checked by the reference ``in-toto-verify``.

The chain of a model that verified under a policy is re-stated in in-toto's own terms: a root
layout naming the pipeline's steps -- ``ingest`` (the datasets' files), ``screen`` (when a
screening result signed by a trusted root, and not FAILED, names every dataset), ``train``
(datasets in, the checkpoint out) and ``evaluate`` (when a trusted evaluation or test result
that did not fail names the model) -- and one signed link per step recording its materials
and products as file paths with SHA-256, taken from the attested manifests and the
checkpoint's digest. Each step's rules take its
materials from the previous step's products (``MATCH ... WITH PRODUCTS FROM``) and end in
``DISALLOW *``. An inspection re-hashes the working directory when ``in-toto-verify`` runs and
requires every attested file, unchanged, and nothing else: run it in a directory holding
exactly the released artifacts (the dataset directories and the checkpoint at the paths
training used), and a changed, added or removed file fails it.

The layout and the links are signed with one key (the project's, by default), which the
layout names as every step's functionary; ``in-toto-verify --verification-keys`` takes its
public key. in-toto names keys by securesystemslib's default key id, not this project's, so
the links are signed under that id.

Limits (each refused, not glossed over): manifests hashed with anything but SHA-256, symbolic
links, and file names in-toto's recorder leaves out (``*.link*``, ``*.pyc``, ``*~``) cannot be
expressed; inputs of training that are not datasets (a base model, an environment) are not
exported.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.exceptions import Error as SslibError
from securesystemslib.signer import Signature, SSlibKey
from securesystemslib.signer import Signer as SslibSigner

from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.manifest import FileEntry, Manifest, SymlinkEntry
from provenance.digest.paths import check_relative_path
from provenance.errors import Error, InputError, RefusedError, UnsafePathError
from provenance.policy.model import Policy
from provenance.predicates.screening import SCREENING_CHECK
from provenance.predicates.test_result import TEST_RESULT_PREDICATE
from provenance.predicates.training import ROLE_MATERIAL, SLSA_PROVENANCE_V1
from provenance.statement import Statement
from provenance.verify.core import Report, signed_time
from provenance.verify.signers import policy_signer

if TYPE_CHECKING:
    from provenance.signing.keys import Signer

LAYOUT_FILE = "root.layout"
INSPECTION = "verify-artifacts"
# What in-toto's recorder leaves out of materials and products (in_toto.settings).
_RECORDER_EXCLUDES = ("*.link*", "*.pyc", "*~")
_SCREENING = ("https://in-toto.io/attestation/test-result/v0.1",)  # the screening verdict
_EVALUATION = ("https://ml-provenance.dev/attestation/evaluation/v1",)

Artifacts = dict[str, dict[str, str]]


class ExportError(RefusedError):
    """The chain cannot be exported as in-toto metadata (the reason names what is missing)."""


@dataclass
class Step:
    """One step of the layout and the content of its link."""

    name: str
    command: list[str]
    materials: Artifacts = field(default_factory=dict)
    products: Artifacts = field(default_factory=dict)
    material_rules: list[list[str]] = field(default_factory=list)
    product_rules: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Dataset:
    """A dataset of the chain, at the path training read it from."""

    path: str  # "" for the working directory itself
    digest: Digest
    manifest: Manifest


@dataclass(frozen=True)
class Plan:
    """Everything the export writes, before it is signed."""

    steps: list[Step]
    inspection_rules: list[list[str]]
    model_path: str
    datasets: list[Dataset]


def _literal(path: str) -> str:
    """``path`` as an in-toto (fnmatch) pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


def _under(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _files(prefix: str, manifest: Manifest, what: str) -> Artifacts:
    """The files of ``manifest`` as in-toto artifacts (path -> {"sha256": hex})."""
    if manifest.algorithm is not Algorithm.SHA256:
        raise ExportError(
            f"{what} was hashed with {manifest.algorithm.value}; in-toto records SHA-256",
            hint="re-attest it with --algorithm sha256",
        )
    artifacts: Artifacts = {}
    for entry in manifest.entries:
        if isinstance(entry, SymlinkEntry):
            raise ExportError(f"{what} holds a symbolic link ({entry.path}); in-toto cannot")
        if not isinstance(entry, FileEntry):
            continue  # empty directories: in-toto records files only
        name = entry.path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, p) for p in _RECORDER_EXCLUDES):
            raise ExportError(
                f"{what} holds {entry.path}, a name in-toto's recorder leaves out "
                f"({', '.join(_RECORDER_EXCLUDES)}), so in-toto-verify could never see it"
            )
        artifacts[_under(prefix, entry.path)] = {"sha256": entry.digest}
    return artifacts


def _artifact_path(text: str, what: str) -> str:
    """A path in the layout: relative, POSIX, no ``..``; ``.`` is the working directory."""
    if text in (".", "./"):
        return ""
    candidate = text.removeprefix("./").rstrip("/")
    try:
        return check_relative_path(candidate)
    except UnsafePathError as e:
        raise UnsafePathError(f"{what} {text!r} is not a safe relative path") from e


def _statements(evidence: Any, digest: Digest) -> list[tuple[Any, Statement]]:
    found = []
    for bundle in evidence.about(digest):
        try:
            statement = bundle.statement
        except Error:
            continue
        if statement.names(digest):
            found.append((bundle, statement))
    return found


def _succeeded(
    evidence: Any, digest: Digest, types: Sequence[str], policy: Policy, offline: bool
) -> bool:
    """Whether the newest result of ``types`` about ``digest`` that a root of the policy signed
    reports success: a screening that PASSED or only WARNED, an evaluation whose backdoor
    probe ran and collapsed no class. Older results are superseded by newer ones (as the
    verifier judges them), and a result that says nothing positive is no step done well."""
    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    signed = [
        (bundle.log_time() or signed_time(st) or floor, index, st)
        for index, (bundle, st) in enumerate(_statements(evidence, digest))
        if st.predicate_type in types
        and _is_result_of(st)
        and policy_signer(bundle, policy, offline=offline)[0]
    ]
    if not signed:
        return False
    newest = max(signed, key=lambda row: (row[0], row[1]))[2]
    if newest.predicate_type == TEST_RESULT_PREDICATE:
        return newest.predicate.get("result") in ("PASSED", "WARNED")
    probe = newest.predicate.get("probe")
    collapsed = probe.get("collapsed") if isinstance(probe, Mapping) else None
    return isinstance(collapsed, Sequence) and not isinstance(collapsed, str) and not collapsed


def _is_result_of(statement: Statement) -> bool:
    """A test result counts as a screening only if its configuration names the screening
    check (an integrity check is a test result too); evaluations count as themselves."""
    if statement.predicate_type != TEST_RESULT_PREDICATE:
        return True
    configuration = statement.predicate.get("configuration")
    return isinstance(configuration, Sequence) and any(
        isinstance(c, Mapping) and c.get("uri") == SCREENING_CHECK for c in configuration
    )


def _material_names(statement: Statement) -> dict[Digest, str]:
    """Where training read each material from: its resolved dependency's name."""
    definition = statement.predicate.get("buildDefinition")
    dependencies = (
        definition.get("resolvedDependencies") if isinstance(definition, Mapping) else None
    )
    names: dict[Digest, str] = {}
    for item in dependencies if isinstance(dependencies, Sequence) else ():
        if not isinstance(item, Mapping):
            continue
        annotations = item.get("annotations")
        role = annotations.get("role") if isinstance(annotations, Mapping) else None
        digest = item.get("digest")
        name = item.get("name")
        if role != ROLE_MATERIAL or not isinstance(digest, Mapping) or not isinstance(name, str):
            continue
        value = digest.get("sha256")
        if isinstance(value, str):
            try:
                names[Digest(Algorithm.SHA256, value)] = name
            except Error:
                continue
    return names


def _command(statement: Statement) -> list[str]:
    definition = statement.predicate.get("buildDefinition")
    parameters = definition.get("externalParameters") if isinstance(definition, Mapping) else None
    command = parameters.get("command") if isinstance(parameters, Mapping) else None
    if isinstance(command, Sequence) and all(isinstance(c, str) for c in command):
        return list(command)
    return []


def _match(prefix: str, step: str) -> list[str]:
    """Materials under ``prefix`` must be ``step``'s products, unchanged."""
    if prefix:
        return ["MATCH", "*", "IN", prefix, "WITH", "PRODUCTS", "IN", prefix, "FROM", step]
    return ["MATCH", "*", "WITH", "PRODUCTS", "FROM", step]


def _datasets(report: Report, evidence: Any, names: Mapping[Digest, str]) -> list[Dataset]:
    """The model's input datasets, with their manifests and the paths training read them at."""
    datasets = []
    for child in report.root.inputs:
        if child.kind is None or "dataset" not in child.kind.split("+"):
            continue
        manifest = evidence.manifest(child.digest)
        if manifest is None:
            raise ExportError(
                f"the manifest of dataset {child.digest} is not in the evidence",
                hint="export from the ledger, or a release that carries the manifests",
            )
        name = names.get(child.digest)
        if name is None:
            raise ExportError(f"the training provenance names no path for {child.digest}")
        datasets.append(Dataset(name, child.digest, manifest))
    if not datasets:
        raise ExportError(f"{report.root.digest} was trained on no attested dataset: no ingest")
    prefixes = [d.path for d in datasets]
    for a in prefixes:
        for b in prefixes:
            if a != b and (not a or b.startswith(a + "/")):
                raise ExportError(f"dataset paths {a!r} and {b!r} overlap")
    return datasets


def _model_products(
    report: Report, model_at: str, manifest: Manifest | None, prefixes: Sequence[str]
) -> Artifacts:
    if manifest is not None:
        products = _files(model_at, manifest, "the model")
    elif report.root.digest.algorithm is not Algorithm.SHA256:
        raise ExportError("the model is not named by its SHA-256")
    else:
        products = {model_at: {"sha256": report.root.digest.value}}
    if any(p == d or p.startswith(d + "/") or not d for p in products for d in prefixes):
        raise ExportError(f"the model {model_at!r} lies inside a dataset directory")
    return products


def plan_export(
    report: Report,
    evidence: Any,
    policy: Policy,
    *,
    model_path: str,
    model_manifest: Manifest | None = None,
    offline: bool = True,
) -> Plan:
    """The steps, links and rules for ``report``'s (trusted) model at ``model_path``.

    ``model_manifest`` is given when the model is a directory (its files become the train
    step's products).
    """
    if not report.trusted:
        raise ExportError(
            f"{report.root.digest} does not verify under the policy: nothing is exported",
            hint="run 'provenance verify' to see why",
        )
    digest = report.root.digest
    model_at = _artifact_path(model_path, "the model path")
    if not model_at:
        raise UnsafePathError("the model must be a file or directory below the root")
    # The training provenance the verifier accepted for this model, nothing else it found.
    training = [st for _, st in report.root.accepted if st.predicate_type == SLSA_PROVENANCE_V1]
    if not training:
        raise ExportError(f"no training provenance signed by a trusted root names {digest}")
    names: dict[Digest, str] = {}
    for statement in training:
        for material, name in _material_names(statement).items():
            path = _artifact_path(name, "the dataset path")
            if names.setdefault(material, path) != path:
                raise ExportError(
                    f"trusted training provenance names {material} at two paths, "
                    f"{names[material]!r} and {path!r}"
                )
    datasets = _datasets(report, evidence, names)
    prefixes = [d.path for d in datasets]
    products = _model_products(report, model_at, model_manifest, prefixes)
    data: Artifacts = {}
    for dataset in datasets:
        data.update(_files(dataset.path, dataset.manifest, f"dataset {dataset.path or '.'}"))
    steps = [
        Step(
            "ingest",
            ["provenance", "dataset", "add", *prefixes],
            products=data,
            material_rules=[["DISALLOW", "*"]],
            product_rules=[
                *(["CREATE", _literal(p) + "/*" if p else "*"] for p in prefixes),
                ["DISALLOW", "*"],
            ],
        )
    ]
    data_from = "ingest"
    if all(_succeeded(evidence, d.digest, _SCREENING, policy, offline) for d in datasets):
        unchanged = [*(_match(p, "ingest") for p in prefixes), ["DISALLOW", "*"]]
        steps.append(
            Step(
                "screen",
                ["provenance", "screen", *prefixes],
                materials=dict(data),
                products=dict(data),
                material_rules=unchanged,
                product_rules=unchanged,
            )
        )
        data_from = "screen"
    steps.append(
        Step(
            "train",
            _command(training[0]),
            materials=dict(data),
            products=products,
            material_rules=[*(_match(p, data_from) for p in prefixes), ["DISALLOW", "*"]],
            product_rules=[
                ["CREATE", _literal(model_at) + ("/*" if model_manifest else "")],
                ["DISALLOW", "*"],
            ],
        )
    )
    if _succeeded(evidence, digest, _EVALUATION, policy, offline):
        steps.append(
            Step(
                "evaluate",
                ["provenance", "evaluate", model_at],
                materials=dict(products),
                material_rules=[_match_model(model_at, model_manifest), ["DISALLOW", "*"]],
                product_rules=[["DISALLOW", "*"]],
            )
        )
    # REQUIRE first: a rule only sees what earlier rules left, and MATCH consumes. Each
    # attested file must be present (a removed file is otherwise just not matched), the same
    # (MATCH), and nothing else may be (DISALLOW).
    inspection = [
        *(["REQUIRE", path] for path in sorted({**data, **products})),
        *(_match(p, data_from) for p in prefixes),
        _match_model(model_at, model_manifest),
        ["DISALLOW", "*"],
    ]
    return Plan(steps, inspection, model_at, datasets)


def _match_model(model_at: str, manifest: Manifest | None) -> list[str]:
    if manifest is not None:
        return _match(model_at, "train")
    return ["MATCH", _literal(model_at), "WITH", "PRODUCTS", "FROM", "train"]


class _ProjectSigner(SslibSigner):
    """A project signer (a key file, or a KMS/HSM) as a securesystemslib signer, under
    in-toto's key id for its public key (securesystemslib's default, not this project's)."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._key = SSlibKey.from_crypto(load_pem_public_key(signer.public_key.pem))

    @property
    def public_key(self) -> SSlibKey:
        return self._key

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._key.keyid, self._signer.sign(payload).hex())

    @classmethod
    def from_priv_key_uri(cls, *args: Any, **kwargs: Any) -> SslibSigner:
        raise NotImplementedError("built from a project signer, not from a URI")


@dataclass(frozen=True)
class Written:
    """What the export wrote."""

    layout: Path
    links: list[Path]
    key_id: str


def write_export(
    plan: Plan, signer: Signer, out: Path, *, expires: dt.datetime, readme: str
) -> Written:
    """Sign the layout and the links with ``signer`` and write them into ``out``."""
    from in_toto.models.layout import Inspection, Layout
    from in_toto.models.layout import Step as InTotoStep
    from in_toto.models.link import Link
    from in_toto.models.metadata import Metablock

    from provenance.fsutil import atomic_write

    sslib = _ProjectSigner(signer)
    key_id = sslib.public_key.keyid
    key = {**sslib.public_key.to_dict(), "keyid": key_id}
    try:
        layout = Layout(
            steps=[
                InTotoStep(
                    name=step.name,
                    expected_materials=step.material_rules,
                    expected_products=step.product_rules,
                    pubkeys=[key_id],
                    expected_command=step.command,
                    threshold=1,
                )
                for step in plan.steps
            ],
            inspect=[
                Inspection(
                    name=INSPECTION,
                    run=["true"],
                    # The command changes nothing: its products are its materials.
                    expected_materials=plan.inspection_rules,
                    expected_products=plan.inspection_rules,
                )
            ],
            keys={key_id: key},
            expires=expires.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            readme=readme,
        )
        documents = {LAYOUT_FILE: Metablock(signed=layout)}
        for step in plan.steps:
            link = Link(
                name=step.name,
                materials=step.materials,
                products=step.products,
                command=step.command,
                byproducts={},
                environment={},
            )
            documents[f"{step.name}.{key_id[:8]}.link"] = Metablock(signed=link)
        for metablock in documents.values():
            metablock.create_signature(sslib)
    except (SslibError, ValueError, TypeError) as e:  # in-toto validates with sslib's errors
        raise InputError(f"cannot build the in-toto metadata: {e}") from e
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {out}: {e.strerror}") from e
    paths = []
    for name, metablock in documents.items():
        data = json.dumps(metablock.to_dict(), indent=1, sort_keys=True).encode()
        atomic_write(out / name, data)
        paths.append(out / name)
    return Written(paths[0], paths[1:], key_id)


__all__ = ["LAYOUT_FILE", "ExportError", "Plan", "Step", "Written", "plan_export", "write_export"]
