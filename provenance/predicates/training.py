"""Training provenance (``attest/training.md``): SLSA Provenance v1 with this project's buildType.

A training run is a build: its products (checkpoints) are the subjects; its materials
(datasets, base models), the source commit and the environment are the resolved dependencies;
the command and its configuration files are the external parameters. Materials are named by
digests the verifier follows; so is the environment digest (its SBOM's), when an SBOM
attestation for it existed at the run, so that a policy can require the environment's audit and
integrity check. The source commit is a ``gitCommit`` digest (recorded, with whether the
working tree was dirty, for a policy's ``allowDirty``), and the distributions are listed as
package URLs, which name versions, not bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from provenance.digest.algorithms import Digest
from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
TRAINING_BUILD_TYPE = "https://ml-provenance.dev/buildtypes/training/v1"
DEFAULT_BUILDER_ID = "https://ml-provenance.dev/builders/provenance-run/v1"

# Roles of resolved dependencies, recorded as the annotation ``role``.
ROLE_MATERIAL = "material"
ROLE_SOURCE = "source"
ROLE_ENVIRONMENT = "environment"
ROLE_ENVIRONMENT_SBOM = "environment-sbom"

_GIT_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_NAME_NORMAL = re.compile(r"[-_.]+")


def rfc3339(moment: dt.datetime) -> str:
    """A UTC time in the form the predicate signs (second precision, ``Z``)."""
    if moment.tzinfo is None:
        raise FormatError("times in provenance must carry a time zone")
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Material:
    """An input the run was verified to use: a dataset or a model, by digest."""

    name: str
    digest: Digest

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest.as_dict(),
            "annotations": {"role": ROLE_MATERIAL},
        }


@dataclass(frozen=True)
class SourceState:
    """The code's version: a git commit and whether the working tree differed from it."""

    commit: str
    dirty: bool
    uri: str | None = None

    def __post_init__(self) -> None:
        if not _GIT_COMMIT.fullmatch(self.commit):
            raise FormatError(f"not a git commit id: {self.commit!r}")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": "source",
            "digest": {"gitCommit": self.commit},
            "annotations": {"role": ROLE_SOURCE, "dirty": self.dirty},
        }
        if self.uri is not None:
            document["uri"] = self.uri
        return document


@dataclass(frozen=True)
class Distribution:
    """An installed Python distribution, as ``importlib.metadata`` reports it."""

    name: str
    version: str

    @property
    def purl(self) -> str:
        """Its package URL (``pkg:pypi/<normalised name>@<version>``)."""
        name = _NAME_NORMAL.sub("-", self.name).lower()
        return f"pkg:pypi/{quote(name, safe='-')}@{quote(self.version, safe='.-_~')}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "uri": self.purl, "annotations": {"role": ROLE_ENVIRONMENT}}


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file the command was given, by path and digest."""

    path: str
    digest: Digest

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest.as_dict()}


@dataclass(frozen=True)
class RunRecord:
    """Everything a training statement says, gathered by the run recorder."""

    step: str
    command: tuple[str, ...]
    products: tuple[tuple[str, Digest], ...]
    materials: tuple[Material, ...]
    source: SourceState | None
    environment: tuple[Distribution, ...]
    config_files: tuple[ConfigFile, ...]
    started: dt.datetime
    finished: dt.datetime
    exit_code: int
    invocation_id: str
    environment_sbom: Digest | None = None
    builder_id: str = DEFAULT_BUILDER_ID
    builder_version: Mapping[str, str] | None = None
    python: Mapping[str, str] | None = None


def training_statement(record: RunRecord) -> Statement:
    """The SLSA Provenance v1 statement of a finished, successful run."""
    if not record.products:
        raise FormatError("a training run with no products has nothing to attest")
    if not record.step:
        raise FormatError("a training run needs a step name")
    if not record.command:
        raise FormatError("a training run needs the command it ran")
    if record.exit_code != 0:
        raise FormatError("a failed command produces no provenance")
    if record.finished < record.started:
        raise FormatError("a run cannot finish before it starts")
    names = [name for name, _ in record.products]
    if len(set(names)) != len(names):
        raise FormatError("two products have the same name")
    dependencies: list[dict[str, Any]] = [m.to_json() for m in record.materials]
    if record.source is not None:
        dependencies.append(record.source.to_json())
    if record.environment_sbom is not None:
        dependencies.append(
            {
                "name": "environment",
                "digest": record.environment_sbom.as_dict(),
                "annotations": {"role": ROLE_ENVIRONMENT_SBOM},
            }
        )
    dependencies += [d.to_json() for d in record.environment]
    internal: dict[str, Any] = {}
    if record.python:
        internal["python"] = dict(record.python)
    builder: dict[str, Any] = {"id": record.builder_id}
    if record.builder_version:
        builder["version"] = dict(record.builder_version)
    predicate = {
        "buildDefinition": {
            "buildType": TRAINING_BUILD_TYPE,
            "externalParameters": {
                "step": record.step,
                "command": list(record.command),
                "materials": [m.name for m in record.materials],
                "products": names,
                "configFiles": [c.to_json() for c in record.config_files],
            },
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": builder,
            "metadata": {
                "invocationId": record.invocation_id,
                "startedOn": rfc3339(record.started),
                "finishedOn": rfc3339(record.finished),
            },
            "byproducts": [
                {
                    "name": "exit-code",
                    "mediaType": "text/plain",
                    "content": base64.b64encode(str(record.exit_code).encode()).decode(),
                    "annotations": {"exitCode": record.exit_code},
                }
            ],
        },
    }
    subjects = tuple(ResourceDescriptor.for_digest(d, name=n) for n, d in record.products)
    return Statement(subjects, SLSA_PROVENANCE_V1, predicate)


def is_training(statement: Statement) -> bool:
    """True for SLSA v1 provenance of this project's training buildType."""
    if statement.predicate_type != SLSA_PROVENANCE_V1:
        return False
    definition = statement.predicate.get("buildDefinition")
    return isinstance(definition, Mapping) and definition.get("buildType") == TRAINING_BUILD_TYPE


def source_of(statement: Statement) -> list[SourceState | str]:
    """The source states a training statement records, or why one cannot be read.

    Each ``source``-role dependency becomes a :class:`SourceState`; a malformed one becomes a
    string saying what is wrong with it (so a verifier can refuse it rather than skip it).
    """
    definition = statement.predicate.get("buildDefinition")
    dependencies = (
        definition.get("resolvedDependencies") if isinstance(definition, Mapping) else None
    )
    if not isinstance(dependencies, Sequence) or isinstance(dependencies, str):
        return ["resolvedDependencies is not a list"]
    found: list[SourceState | str] = []
    for item in dependencies:
        if not isinstance(item, Mapping):
            continue
        annotations = item.get("annotations")
        if not isinstance(annotations, Mapping) or annotations.get("role") != ROLE_SOURCE:
            continue
        digest = item.get("digest")
        commit = digest.get("gitCommit") if isinstance(digest, Mapping) else None
        dirty = annotations.get("dirty")
        uri = item.get("uri")
        if not isinstance(commit, str) or not isinstance(dirty, bool):
            found.append("a source dependency lacks a gitCommit digest or a boolean dirty flag")
            continue
        try:
            found.append(SourceState(commit, dirty, uri if isinstance(uri, str) else None))
        except FormatError as e:
            found.append(e.message)
    return found
