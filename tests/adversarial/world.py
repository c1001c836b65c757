"""A complete, valid model chain on disk, built with the library (no git, no subprocess).

Everything the verifier can be asked to judge is here, each attestation signed by one project
key and kept in a real ledger:

* a dataset directory, its dataset attestation and its manifest (also as a file on disk, whose
  SHA-256 is the dataset's root digest, so it verifies as the dataset);
* the screening of that dataset: the figures statement and the test-result verdict naming it;
* the training environment's CycloneDX SBOM (the environment digest is the SBOM's);
* SLSA v1 training provenance for a checkpoint file, naming the dataset, a clean git commit
  and the environment, as ``provenance run`` writes it;
* an OpenSSF model signature (OMS) and an evaluation of the checkpoint.

The release is ``provenance.release.build_release`` of the checkpoint: the exact ledger
bundles and the manifest, one per line. The policy requires *every* one of these attestations
(nothing in the release is optional evidence), so a change to any signed byte of any line must
change the verdict of the artifacts whose chain holds it. The tamper campaign, the attack
catalogue and ``bench/tamper.py`` share this builder so they judge the same chain.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.bundle import Bundle
from provenance.digest import Algorithm, Digest, build_manifest
from provenance.digest.canonical import canonical_json
from provenance.digest.manifest import Manifest
from provenance.ledger import Ledger
from provenance.policy.load import parse_policy
from provenance.policy.model import Policy
from provenance.predicates.dataset import DATASET_PREDICATE, Source, dataset_statement
from provenance.predicates.evaluation import EVALUATION_PREDICATE, evaluation_statement
from provenance.predicates.oms import OMS_PREDICATE, OmsResource, model_statement
from provenance.predicates.sbom import CYCLONEDX_PREDICATE, sbom_statement
from provenance.predicates.screening import (
    SCREENING_CHECK,
    SCREENING_PREDICATE,
    screening_result_statement,
    screening_statement,
)
from provenance.predicates.test_result import TEST_RESULT_PREDICATE
from provenance.predicates.training import (
    TRAINING_BUILD_TYPE,
    Distribution,
    Material,
    RunRecord,
    SourceState,
    rfc3339,
    training_statement,
)
from provenance.release import build_release
from provenance.signing.keys import KeySigner
from provenance.statement import Statement
from tests.conftest import make_tree

SLSA = "https://slsa.dev/provenance/v1"
# The reference time every verdict is judged at: fixed, so ages never depend on the clock.
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
STARTED = AT - dt.timedelta(days=3)
DATA: Mapping[str, bytes | None] = {
    "train/0.csv": b"x,label\n1,0\n2,1\n",
    "train/1.csv": b"x,label\n3,0\n4,1\n",
    "test/0.csv": b"x,label\n5,0\n",
    "README.md": b"# digits\n",
    "empty.txt": b"",
    "validation": None,
}
BOM: Mapping[str, Any] = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "version": 1,
    "components": [
        {
            "type": "library",
            "name": "numpy",
            "version": "2.0.0",
            "purl": "pkg:pypi/numpy@2.0.0",
        }
    ],
}

POLICY = f"""\
version: 1
roots:
  project:
    key: project.pub
rules:
  dataset:
    require:
      - predicateType: {DATASET_PREDICATE}
        signedBy: [project]
        maxAge: 365d
      - predicateType: {TEST_RESULT_PREDICATE}
        signedBy: [project]
        conditions:
          - predicate.result == "PASSED"
          - predicate.configuration.exists(c, c.uri == "{SCREENING_CHECK}")
      - predicateType: {SCREENING_PREDICATE}
        signedBy: [project]
        conditions:
          - predicate.result == "PASSED"
  model:
    require:
      - predicateType: {SLSA}
        signedBy: [project]
        maxAge: 365d
        conditions:
          - predicate.buildDefinition.buildType == "{TRAINING_BUILD_TYPE}"
          - >-
            predicate.buildDefinition.resolvedDependencies.exists(d,
            "annotations" in d && d.annotations.role == "environment-sbom")
      - predicateType: {OMS_PREDICATE}
        signedBy: [project]
      - predicateType: {EVALUATION_PREDICATE}
        signedBy: [project]
        conditions:
          - predicate.metrics.accuracy >= 0.9
  environment:
    require:
      - predicateType: {CYCLONEDX_PREDICATE}
        signedBy: [project]
allowDirty: false
"""


@dataclass(frozen=True)
class World:
    """The chain on disk; see the module docstring."""

    root: Path
    project: Path  # holds .provenance/ledger.db (and the artifacts)
    data: Path
    model: Path
    manifest_file: Path
    release_file: Path
    policy_file: Path
    policy: Policy
    signer: KeySigner
    manifest: Manifest
    dataset: Digest
    model_digest: Digest
    environment: Digest
    statements: Mapping[str, Statement]  # by role: dataset, figures, verdict, env, ...
    bundles: Mapping[str, Bundle]
    release: bytes

    @property
    def ledger_path(self) -> Path:
        return self.project / ".provenance" / "ledger.db"

    @property
    def lines(self) -> list[bytes]:
        return self.release.splitlines()

    def chain(self, target: str) -> frozenset[str]:
        """The attestation ids the verdict on ``target`` (model, data, manifest) rests on."""
        roles = {
            "model": self.bundles,
            "data": {k: v for k, v in self.bundles.items() if k in DATASET_ROLES},
            "manifest": {k: v for k, v in self.bundles.items() if k in DATASET_ROLES},
        }[target]
        return frozenset(b.attestation_id for b in roles.values())


DATASET_ROLES = frozenset({"dataset", "figures", "verdict"})


def policy_text(signer: KeySigner) -> str:
    """The campaign policy with the key inline (for tests that parse it without a file)."""
    pem = "\n".join("      " + line for line in signer.public_key.pem.decode().splitlines())
    return POLICY.replace("    key: project.pub\n", f"    pem: |\n{pem}\n")


def load_policy_for(signer: KeySigner, text: str = POLICY) -> Policy:
    """``text`` (the campaign policy unless given) trusting ``signer`` as ``project``."""
    pem = "\n".join("      " + line for line in signer.public_key.pem.decode().splitlines())
    return parse_policy(text.replace("    key: project.pub\n", f"    pem: |\n{pem}\n"), base=Path())


def checkpoint_bytes(seed: int = 0) -> bytes:
    """Deterministic stand-in for a checkpoint: the verifier only ever hashes it."""
    return b"CKPT" + random.Random(seed).randbytes(2048)


def screening_statements(dataset: Digest, name: str) -> tuple[Statement, Statement]:
    """The figures statement and the test-result verdict of a clean screening."""
    checks = {
        "schema": {"result": "PASSED", "metric": 0, "flagged": 0},
        "label_conflicts": {"result": "PASSED", "metric": 0, "flagged": 0},
    }
    figures = screening_statement(
        dataset,
        name=name,
        predicate={
            "result": "PASSED",
            "tool": "ml-provenance test",
            "schemaDigest": "sha256:" + "5" * 64,
            "dataset": {"name": name, "format": "table", "samples": 5},
            "checks": checks,
            "skipped": {},
            "sanitize": {"count": 0},
            "attestedAt": rfc3339(STARTED),
        },
    )
    return figures, screening_result_statement(figures, tool="ml-provenance test")


def training(
    model: Digest,
    materials: tuple[Material, ...],
    environment: Digest | None,
    *,
    dirty: bool = False,
) -> Statement:
    """SLSA v1 training provenance as ``provenance run`` writes it."""
    return training_statement(
        RunRecord(
            step="train",
            command=("python", "train.py"),
            products=(("model.bin", model),),
            materials=materials,
            source=SourceState("ab" * 20, dirty, uri="git+https://example.org/repo"),
            environment=(Distribution("numpy", "2.0.0"),),
            config_files=(),
            started=STARTED,
            finished=STARTED + dt.timedelta(hours=1),
            exit_code=0,
            invocation_id="run-1",
            environment_sbom=environment,
        )
    )


def evaluation(model: Digest, dataset: Digest, accuracy: float = 0.97) -> Statement:
    return evaluation_statement(
        model=model,
        model_name="model.bin",
        dataset=dataset,
        dataset_name="digits",
        dataset_path="data/test",
        metrics={"accuracy": accuracy},
        probe=None,
        baseline=None,
        regression={},
        evaluated_at=rfc3339(STARTED + dt.timedelta(hours=2)),
        tools={"ml-provenance": "test"},
    )


def environment_statement() -> tuple[Digest, Statement]:
    digest = Digest.of_bytes(Algorithm.SHA256, canonical_json(dict(BOM)))
    return digest, sbom_statement(BOM, digest, name="environment")


def build_world(root: Path, signer: KeySigner | None = None) -> World:
    """Build the chain under ``root`` (see the module docstring) and return where it is."""
    signer = signer or KeySigner.generate()
    project = root / "project"
    state = project / ".provenance"
    state.mkdir(parents=True)
    data = make_tree(project / "data", DATA)
    manifest = build_manifest(data, workers=1)
    dataset = manifest.root_digest
    manifest_file = project / "data.manifest.json"
    manifest_file.write_bytes(manifest.canonical_bytes)
    model = project / "model.bin"
    model.write_bytes(checkpoint_bytes())
    model_digest = Digest.of_bytes(Algorithm.SHA256, model.read_bytes())
    env_digest, env = environment_statement()
    figures, verdict = screening_statements(dataset, "digits")
    statements: dict[str, Statement] = {
        "dataset": dataset_statement(
            manifest,
            name="digits",
            sources=[Source("https://example.org/digits.tar", retrieved_at=rfc3339(STARTED))],
            license="MIT",
            attested_at=rfc3339(STARTED),
        ),
        "figures": figures,
        "verdict": verdict,
        "environment": env,
        "training": training(model_digest, (Material("data", dataset),), env_digest),
        "oms": model_statement("model.bin", [OmsResource(".", model_digest.value)]),
        "evaluation": evaluation(model_digest, dataset),
    }
    bundles = {role: Bundle.sign_statement(s, signer) for role, s in statements.items()}
    with Ledger(state / "ledger.db") as ledger:
        ledger.store_manifest(manifest)
        for bundle in bundles.values():
            ledger.append(bundle, verified_by=signer.public_key)
        release = build_release(ledger, model_digest).data
    release_file = project / "model.provenance.jsonl"
    release_file.write_bytes(release)
    (project / "project.pub").write_bytes(signer.public_key.pem)
    policy_file = project / "policy.yaml"
    policy_file.write_text(POLICY)
    return World(
        root=root,
        project=project,
        data=data,
        model=model,
        manifest_file=manifest_file,
        release_file=release_file,
        policy_file=policy_file,
        policy=parse_policy(POLICY, base=project),
        signer=signer,
        manifest=manifest,
        dataset=dataset,
        model_digest=model_digest,
        environment=env_digest,
        statements=statements,
        bundles=bundles,
        release=release,
    )
