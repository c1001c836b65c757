"""Training runs that refuse unverified materials and sign provenance of what they produce.

A run has three moments. Before: every material (dataset, base model) is hashed and its chain
verified under the policy; one failure refuses the whole run, before any training code starts,
naming each broken link. During: the command (or the ``with`` block) runs; nothing is
recorded yet. After, and only after success: the materials are hashed again -- provenance
that names inputs which changed under the run would be false, so a changed material is a
refusal -- the products are hashed, and an SLSA Provenance v1 statement of this project's
training buildType is signed and appended to the ledger. A failed run records nothing.

The signing function is prepared before the run (a missing key or a wrong passphrase is
found before hours of training, not after), and the ledger is not held open during the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import __version__
from provenance.digest.algorithms import Digest
from provenance.errors import InputError, RefusedError
from provenance.predicates.training import (
    ConfigFile,
    Material,
    RunRecord,
    SourceState,
    training_statement,
)
from provenance.verify.core import Report, verify

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.digest.manifest import Manifest
    from provenance.guard.environment import RunEnvironment
    from provenance.ledger import Entry, Ledger, VerifiedBy
    from provenance.policy.model import Policy
    from provenance.signing.keys import Signer
    from provenance.statement import Statement

Sign = Callable[["Statement"], "tuple[Bundle, VerifiedBy]"]


class TrainingRefusedError(RefusedError):
    """A material's chain does not verify, or the run cannot be attested truthfully."""


def label_of(path: Path) -> str:
    """How a path is named in provenance: relative to the working directory when inside it.

    Absolute paths of the machine that trained (home directories, mount points) say nothing
    a verifier can use and leak where the run happened.
    """
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return path.as_posix()


def _first_failure(report: Report) -> str:
    failures = report.root.failures()
    node, check = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    where = f"{node.name} " if node.name else ""
    return f"{where}{node.digest}: {check.requirement}: {check.detail}{more}"


@dataclass(frozen=True)
class VerifiedMaterial:
    """A material whose chain verified, and the digest it verified for."""

    path: Path
    label: str
    digest: Digest


def verify_materials(
    paths: Sequence[Path],
    *,
    policy: Policy,
    evidence: Any,
    at: dt.datetime | None = None,
    offline: bool = True,
    allow_ignored: bool = False,
) -> list[VerifiedMaterial]:
    """Hash and verify every material; refuse with every broken one named, or return them.

    A directory material that holds paths its manifest leaves out (``.git/`` or
    ``.provenance/`` directories inside it, anything its ``.provenanceignore`` names) is
    refused too: no digest covers them, and a training loader that walks the directory reads
    them all the same. ``allow_ignored`` accepts them, for commands that read the material
    only through :func:`provenance.guard.dataset.verified_dataset`, which serves verified
    files alone.
    """
    from provenance.digest import digest_path
    from provenance.digest.ignore import find_ignored

    if not paths:
        raise InputError("a training run needs at least one material to verify")
    verified: list[VerifiedMaterial] = []
    broken: list[str] = []
    for path in paths:
        label = label_of(path)
        if label in (m.label for m in verified):
            raise InputError(f"material {label} is named twice")
        result = digest_path(path)
        report = verify(result.digest, evidence, policy, at=at, offline=offline)
        if not report.trusted:
            broken.append(f"{label}: {_first_failure(report)}")
            continue
        hidden = (
            []
            if allow_ignored or result.manifest is None
            else (find_ignored(path, result.manifest.ignore, limit=5))
        )
        if hidden:
            broken.append(
                f"{label}: holds paths no digest covers ({', '.join(hidden)}"
                f"{', ...' if len(hidden) == 5 else ''}); remove them, or allow them "
                "(--allow-ignored) if the command reads it only through verified_dataset"
            )
            continue
        verified.append(VerifiedMaterial(path, label, result.digest))
    if broken:
        raise TrainingRefusedError(
            f"refusing to train: {len(broken)} material(s) not trusted: " + "; ".join(broken),
            hint="run 'provenance verify MATERIAL --policy P' for every failure",
        )
    return verified


class TrainingRun:
    """One run between verification and provenance; products are added as they are written."""

    def __init__(
        self,
        *,
        step: str,
        command: Sequence[str],
        materials: Sequence[VerifiedMaterial],
        config_files: Sequence[Path] = (),
        source: SourceState | None,
        environment: RunEnvironment | None,
        environment_attested: bool = False,
        builder_id: str | None = None,
    ) -> None:
        from provenance.digest import digest_path

        if not step:
            raise InputError("a training run needs a step name")
        self.step = step
        self.command = tuple(command)
        self.materials = tuple(materials)
        self.source = source
        self.environment = environment
        self.environment_attested = environment_attested
        self.builder_id = builder_id
        self._config_paths = tuple(config_files)
        self.config_files = tuple(
            ConfigFile(label_of(p), digest_path(p).digest) for p in self._config_paths
        )
        self.started = dt.datetime.now(dt.timezone.utc)
        self.invocation_id = f"urn:uuid:{uuid.uuid4()}"
        self._products: list[Path] = []

    def add_product(self, path: str | Path) -> None:
        """Name a file or directory the run produced; it is hashed when the run finishes."""
        product = Path(path)
        label = label_of(product)
        if any(label == m.label for m in self.materials):
            raise InputError(f"{label} is a material of this run; it cannot also be a product")
        if label not in (label_of(p) for p in self._products):
            self._products.append(product)

    @property
    def products(self) -> tuple[Path, ...]:
        return tuple(self._products)

    def _recheck_inputs(self) -> None:
        """The materials and configuration files must still be what the run started with:
        provenance naming bytes that changed under the command would be false."""
        from provenance.digest import digest_path

        changed = [
            m.label
            for m in self.materials
            if not m.path.exists() or digest_path(m.path).digest != m.digest
        ]
        changed += [
            c.path
            for c, path in zip(self.config_files, self._config_paths, strict=True)
            if not path.exists() or digest_path(path).digest != c.digest
        ]
        if changed:
            raise TrainingRefusedError(
                f"no provenance written: input(s) changed during the run: {', '.join(changed)}",
                hint="the products were built from bytes nobody verified; re-run on stable inputs",
            )

    def record(self) -> tuple[Statement, list[Manifest]]:
        """Hash the products and build the statement of this (successful) run."""
        from provenance.digest import digest_path

        if not self._products:
            raise InputError("no provenance written: the run named no products")
        missing = [label_of(p) for p in self._products if not p.exists()]
        if missing:
            raise TrainingRefusedError(
                f"no provenance written: the run did not produce {', '.join(missing)}"
            )
        self._recheck_inputs()
        products: list[tuple[str, Digest]] = []
        manifests: list[Manifest] = []
        for path in self._products:
            result = digest_path(path)
            products.append((label_of(path), result.digest))
            if result.manifest is not None:
                manifests.append(result.manifest)
        record = RunRecord(
            step=self.step,
            command=self.command,
            products=tuple(products),
            materials=tuple(Material(m.label, m.digest) for m in self.materials),
            source=self.source,
            environment=self.environment.distributions if self.environment else (),
            environment_sbom=(
                self.environment.digest
                if self.environment is not None and self.environment_attested
                else None
            ),
            config_files=self.config_files,
            started=self.started,
            finished=dt.datetime.now(dt.timezone.utc),
            exit_code=0,
            invocation_id=self.invocation_id,
            builder_version={"ml-provenance": __version__},
            python=self.environment.python if self.environment else None,
            **({"builder_id": self.builder_id} if self.builder_id else {}),
        )
        return training_statement(record), manifests

    def finish(self, *, ledger: Ledger, sign: Sign) -> tuple[Statement, Entry | None]:
        """Record, sign and append the provenance; the manifests of directory products too.

        Returns the statement and its ledger entry (None when the ledger already had it)."""
        statement, manifests = self.record()
        bundle, verified_by = sign(statement)
        for manifest in manifests:
            ledger.store_manifest(manifest)
        return statement, ledger.append(bundle, verified_by=verified_by)


def _key_signer(key: str | Path | Signer | None, default: Path) -> Signer:
    from provenance.signing.keys import KeySigner

    if key is None:
        if not default.is_file():
            raise InputError(
                f"no key given and {default} does not exist",
                hint="pass key=..., or run 'provenance key generate default'",
            )
        return KeySigner.from_file(default)
    if isinstance(key, str | Path):
        return KeySigner.from_file(Path(key))
    return key


@contextlib.contextmanager
def training_run(
    *,
    policy: str | Path | Policy,
    materials: Sequence[str | Path],
    step: str = "train",
    config_files: Sequence[str | Path] = (),
    key: str | Path | Signer | None = None,
    bundle: str | Path | None = None,
    builder_id: str | None = None,
    at: dt.datetime | None = None,
    offline: bool = True,
    allow_ignored: bool = False,
) -> Iterator[TrainingRun]:
    """Verify ``materials``, run the block, and sign provenance of its products::

        with provenance.training_run(policy="policy.yaml", materials=["data"]) as run:
            train(...)
            run.add_product("model.pt")

    Raises :class:`TrainingRefusedError` before the block runs if a material is not trusted.
    If the block raises, nothing is recorded. The project (ledger, default key) is found from
    the working directory; ``bundle`` verifies the materials from an exported evidence file
    instead of the ledger. The command recorded is this process's ``sys.argv``.
    """
    from provenance.bundle import sign_checked
    from provenance.guard.environment import describe, is_attested
    from provenance.guard.source import source_state
    from provenance.ledger import Ledger
    from provenance.policy.load import load_policy
    from provenance.policy.model import Policy
    from provenance.project import require_project
    from provenance.verify.evidence import BundleFileEvidence, LedgerEvidence

    project = require_project()
    loaded = policy if isinstance(policy, Policy) else load_policy(Path(policy))
    signer = _key_signer(key, project.keys_dir / "default.key")
    paths = [Path(m) for m in materials]
    environment = describe(sys.executable)

    def check(evidence: Any) -> tuple[list[VerifiedMaterial], bool]:
        verified = verify_materials(
            paths,
            policy=loaded,
            evidence=evidence,
            at=at,
            offline=offline,
            allow_ignored=allow_ignored,
        )
        return verified, is_attested(environment.digest, evidence)

    if bundle is not None:
        verified, attested = check(BundleFileEvidence(Path(bundle)))
    else:
        with Ledger(project.ledger_path) as ledger:
            verified, attested = check(LedgerEvidence(ledger))
    if os.environ.get("PYTHONPATH"):
        attested = False  # modules from outside the described environment can be imported
    run = TrainingRun(
        step=step,
        command=[sys.executable, *sys.argv] if sys.argv and sys.argv[0] else [sys.executable],
        materials=verified,
        config_files=[Path(c) for c in config_files],
        source=source_state(Path.cwd()),
        environment=environment,
        environment_attested=attested,
        builder_id=builder_id,
    )
    yield run
    with Ledger(project.ledger_path) as ledger:
        run.finish(
            ledger=ledger,
            sign=lambda statement: (sign_checked(statement, signer), signer.public_key),
        )
