"""The dataset predicate (``attest/dataset.md``): what a dataset is and where it came from.

Built from a :class:`~provenance.digest.Manifest`, so the subject is always the manifest's
root digest and the counts always agree with it; parsed strictly from signed statements.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provenance.digest.algorithms import Algorithm, Digest
from provenance.digest.manifest import MEDIA_TYPE, Manifest
from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement

DATASET_PREDICATE = "https://ml-provenance.dev/attestation/dataset/v1"
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def _digest_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise FormatError(f"{what} must be a non-empty digest object")
    accepted = {a.value for a in Algorithm}
    if unknown := sorted(set(value) - accepted):
        raise FormatError(f"{what} uses unaccepted algorithm(s) {', '.join(unknown)}")
    for algorithm, hex_value in value.items():
        if not isinstance(hex_value, str):
            raise FormatError(f"{what}: digest values are strings")
        Digest(Algorithm(algorithm), hex_value)  # refuses a malformed value
    return dict(value)


@dataclass(frozen=True)
class Source:
    """Where data came from: a URI, when it was fetched, the digest it was expected to have."""

    uri: str
    retrieved_at: str | None = None
    digest: Digest | None = None

    def __post_init__(self) -> None:
        if not self.uri:
            raise FormatError("a source needs a URI")
        if self.retrieved_at is not None and not _RFC3339_UTC.fullmatch(self.retrieved_at):
            raise FormatError(f"retrievedAt must be RFC 3339 UTC: {self.retrieved_at!r}")

    @staticmethod
    def now() -> str:
        """The current time in the form ``retrievedAt`` takes."""
        return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"uri": self.uri}
        if self.retrieved_at is not None:
            document["retrievedAt"] = self.retrieved_at
        if self.digest is not None:
            document["digest"] = self.digest.as_dict()
        return document


_ATTESTATION_ID = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class AttestationRef:
    """An attestation a transformation acted on, by id (``sha256:`` of its DSSE PAE, as
    ``provenance log`` shows it) and predicate type: a sanitised dataset names the screening
    that decided which samples were removed."""

    id: str
    predicate_type: str

    def __post_init__(self) -> None:
        if not _ATTESTATION_ID.fullmatch(self.id):
            raise FormatError(f"an attestation id is sha256:<64 hex>, not {self.id!r}")
        if not self.predicate_type:
            raise FormatError("an attestation reference needs its predicate type")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "predicateType": self.predicate_type}


@dataclass(frozen=True)
class Transformation:
    """How a dataset was derived from its parents."""

    command: tuple[str, ...]
    code: Digest | None = None
    code_uri: str | None = None
    attestations: tuple[AttestationRef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"command": list(self.command)}
        if self.code is not None:
            code: dict[str, Any] = {"digest": self.code.as_dict()}
            if self.code_uri is not None:
                code["uri"] = self.code_uri
            document["code"] = code
        if self.attestations:  # optional, so statements without it are unchanged
            document["attestations"] = [a.to_json() for a in self.attestations]
        return document


def dataset_statement(
    manifest: Manifest,
    *,
    name: str,
    sources: Sequence[Source] = (),
    license: str | None = None,
    description: str | None = None,
    parents: Sequence[Digest] = (),
    transformation: Transformation | None = None,
    attested_at: str | None = None,
) -> Statement:
    """The dataset statement for ``manifest``: its root digest is the subject.

    ``attested_at`` (RFC 3339 UTC) is the signed time a policy's ``maxAge`` is measured from.
    """
    if not name:
        raise FormatError("a dataset needs a name")
    root = manifest.root_digest
    predicate = {
        "name": name,
        "manifest": {
            "algorithm": root.algorithm.value,
            "digest": root.value,
            "mediaType": MEDIA_TYPE,
        },
        "files": manifest.file_count,
        "bytes": manifest.total_bytes,
        "sources": [s.to_json() for s in sources],
        "license": license,
        "description": description,
        "parents": [{"digest": p.as_dict()} for p in parents],
        "transformation": transformation.to_json() if transformation else None,
    }
    if attested_at is not None:
        if not _RFC3339_UTC.fullmatch(attested_at):
            raise FormatError(f"attestedAt must be RFC 3339 UTC: {attested_at!r}")
        predicate["attestedAt"] = attested_at
    subject = ResourceDescriptor.for_digest(root, name=name)
    return Statement((subject,), DATASET_PREDICATE, predicate)


def parents_of(statement: Statement) -> list[Digest]:
    """The parent dataset digests a dataset statement names (strictly parsed)."""
    if statement.predicate_type != DATASET_PREDICATE:
        raise FormatError(f"not a dataset statement: {statement.predicate_type}")
    parents = statement.predicate.get("parents")
    if not isinstance(parents, Sequence) or isinstance(parents, str):
        raise FormatError("dataset predicate: parents must be a list")
    found: list[Digest] = []
    for i, parent in enumerate(parents):
        if not isinstance(parent, Mapping) or not isinstance(parent.get("digest"), Mapping):
            raise FormatError(f"dataset predicate: parent {i} needs a digest object")
        digests = _digest_map(dict(parent["digest"]), f"parent {i}")
        found.extend(Digest(Algorithm(a), v) for a, v in digests.items())
    return found
