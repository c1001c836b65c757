"""The OpenSSF Model Signing (OMS) v1.0 predicate, as pure data: what a model signature says.

An OMS statement (what ``model_signing`` signs) names the model by a *root digest*: the SHA-256
of the concatenated raw digests of its resources, in the order the predicate lists them. The
predicate lists every resource -- each file of the model, by root-relative POSIX path, with
the digest of its bytes; a single-file model has one resource named ``.`` -- and the
serialization that produced the list (method, hash type, symlink rule, ignored paths)::

    {"subject": [{"name": "<model dir or file name>", "digest": {"sha256": "<root>"}}],
     "predicateType": "https://model_signing/signature/v1.0",
     "predicate": {"serialization": {"method": "files", "hash_type": "sha256",
                                     "allow_symlinks": false, "ignore_paths": [".git", ...]},
                   "resources": [{"name": "a/b", "algorithm": "sha256", "digest": "<hex>"}]}}

This module parses and checks such statements and builds them; it reads no files. Only what
can be checked exactly is accepted: serialization by whole files with SHA-256 (what
``model_signing sign key`` writes by default). Sharded serialization, other hash types and
unknown serialization fields are refused rather than half-checked. The ledger and the evidence
index use :func:`vouched_digests` to find a single-file model's signature by the file's own
digest; reading and comparing files on disk is :mod:`provenance.interop.oms`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from provenance.digest.algorithms import Algorithm, Digest, is_lower_hex
from provenance.digest.paths import check_relative_path
from provenance.errors import Error, FormatError, RefusedError, UnsafePathError
from provenance.statement import ResourceDescriptor, Statement

OMS_PREDICATE = "https://model_signing/signature/v1.0"
SINGLE_FILE = "."  # the one resource name of a model that is a single file
_SERIALIZATION_FIELDS = frozenset({"method", "hash_type", "allow_symlinks", "ignore_paths"})
_RESOURCE_FIELDS = frozenset({"name", "algorithm", "digest"})


class UnsupportedModelSignatureError(RefusedError):
    """A well-formed OMS statement this project cannot check exactly (e.g. sharded hashing)."""


class OmsResource(NamedTuple):
    """One file of a signed model: its root-relative POSIX path and the SHA-256 of its bytes."""

    name: str
    digest: str


def resource_order(name: str) -> tuple[str, ...]:
    """The order model_signing lists resources in: by path components (``a/b`` before
    ``a.txt``), not by the characters of the whole path."""
    return tuple(name.split("/"))


def root_digest(resources: Sequence[OmsResource]) -> Digest:
    """SHA-256 over the raw digests of ``resources`` in the order given."""
    hasher = hashlib.sha256()
    for resource in resources:
        hasher.update(bytes.fromhex(resource.digest))
    return Digest(Algorithm.SHA256, hasher.hexdigest())


@dataclass(frozen=True)
class ModelSignature:
    """What an OMS statement says about a model, checked to be consistent with itself."""

    name: str  # informative only: renaming a model must not invalidate its signature
    root: Digest
    resources: tuple[OmsResource, ...]
    ignore_paths: tuple[str, ...]
    allow_symlinks: bool = False

    @property
    def single_file(self) -> bool:
        """True when the signed model is one file (its one resource is named ``.``)."""
        return len(self.resources) == 1 and self.resources[0].name == SINGLE_FILE


def _path(name: str, what: str) -> str:
    """A path inside the model: relative, normalised, no ``..`` (as a manifest path)."""
    try:
        return check_relative_path(name)
    except UnsafePathError as e:
        raise FormatError(f"{what}: {e.message}") from e


def _subject(statement: Statement) -> tuple[str, Digest]:
    if len(statement.subjects) != 1:
        raise FormatError(f"an OMS statement names one subject, not {len(statement.subjects)}")
    subject = statement.subjects[0]
    # Only the SHA-256 root is recomputed; another digest beside it would be vouched for
    # by nothing, so it is refused rather than indexed.
    if set(subject.digest) != {"sha256"}:
        raise FormatError("an OMS subject names its model by exactly one sha256 digest")
    if not subject.name:
        raise FormatError("an OMS subject needs a name")
    return subject.name, Digest(Algorithm.SHA256, subject.digest["sha256"])


def _serialization(value: Any) -> tuple[bool, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise FormatError("OMS predicate.serialization must be an object")
    method, hash_type = value.get("method"), value.get("hash_type")
    if not isinstance(method, str) or not isinstance(hash_type, str):
        raise FormatError("OMS serialization needs a method and a hash_type")
    if method != "files":
        raise UnsupportedModelSignatureError(
            f"OMS serialization method {method!r} is not supported (only 'files')",
            hint="sign the model with model_signing's default (file) serialization",
        )
    if hash_type != "sha256":
        raise UnsupportedModelSignatureError(
            f"OMS hash type {hash_type!r} is not supported (only sha256)",
            hint="sign the model with model_signing's default hash (sha256)",
        )
    if unknown := sorted(set(value) - _SERIALIZATION_FIELDS):
        raise UnsupportedModelSignatureError(
            f"OMS serialization has field(s) this verifier cannot check: {', '.join(unknown)}"
        )
    allow_symlinks = value.get("allow_symlinks")
    if not isinstance(allow_symlinks, bool):
        raise FormatError("OMS serialization.allow_symlinks must be true or false")
    ignore_paths = value.get("ignore_paths", [])
    if not isinstance(ignore_paths, list | tuple) or not all(
        isinstance(p, str) for p in ignore_paths
    ):
        raise FormatError("OMS serialization.ignore_paths must be a list of paths")
    for path in ignore_paths:
        _path(path, "OMS ignore path")  # inside the model: no "..", "/", "." or empty parts
    return allow_symlinks, tuple(ignore_paths)


def _resources(value: Any) -> tuple[OmsResource, ...]:
    if not isinstance(value, list | tuple):
        raise FormatError("OMS predicate.resources must be a list")
    if not value:
        raise RefusedError("the OMS signature lists no files, so it vouches for nothing")
    resources: list[OmsResource] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != _RESOURCE_FIELDS:
            raise FormatError(f"OMS resource {i} must hold exactly name, algorithm, digest")
        name, algorithm, digest = item["name"], item["algorithm"], item["digest"]
        if algorithm != "sha256":
            raise UnsupportedModelSignatureError(
                f"OMS resource {i} uses algorithm {algorithm!r} (only sha256)"
            )
        if not isinstance(digest, str) or not is_lower_hex(digest, 64):
            raise FormatError(f"OMS resource {i} has a malformed sha256 digest")
        if not isinstance(name, str):
            raise FormatError(f"OMS resource {i} needs a name")
        if name != SINGLE_FILE:
            _path(name, f"OMS resource {i}")
        resources.append(OmsResource(name, digest))
    names = [r.name for r in resources]
    if len(set(names)) != len(names):
        raise FormatError("OMS resources name a file twice")
    if SINGLE_FILE in names and len(names) > 1:
        raise FormatError("OMS resource '.' (a single-file model) cannot have siblings")
    return tuple(resources)


def parse_statement(statement: Statement) -> ModelSignature:
    """Check an OMS statement and return what it says.

    Raises :class:`~provenance.errors.FormatError` when it is malformed,
    :class:`UnsupportedModelSignatureError` when it uses a serialization that cannot be
    checked exactly, and :class:`~provenance.errors.RefusedError` when it is another predicate
    type, lists no files, or its resources do not hash to its subject's root digest.
    """
    if statement.predicate_type != OMS_PREDICATE:
        raise RefusedError(
            f"not an OpenSSF model signature: predicateType is {statement.predicate_type!r}",
            hint=f"expected {OMS_PREDICATE}",
        )
    name, root = _subject(statement)
    predicate = statement.predicate
    allow_symlinks, ignore_paths = _serialization(predicate.get("serialization"))
    resources = _resources(predicate.get("resources"))
    recomputed = root_digest(resources)
    if recomputed != root:
        raise RefusedError(
            f"the OMS statement is inconsistent: its resources hash to {recomputed}, "
            f"its subject says {root}"
        )
    return ModelSignature(name, root, resources, ignore_paths, allow_symlinks)


def model_statement(
    name: str, resources: Sequence[OmsResource], *, ignore_paths: Sequence[str] = ()
) -> Statement:
    """The OMS statement for a model's files, listed in model_signing's order.

    ``ignore_paths`` are the root-relative paths that were left out (they are signed, and
    model_signing's verifier leaves them out again).
    """
    ordered = sorted(resources, key=lambda r: resource_order(r.name))
    serialization: dict[str, Any] = {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
    }
    if ignore_paths:
        serialization["ignore_paths"] = sorted(set(ignore_paths))
    predicate = {
        "serialization": serialization,
        "resources": [{"name": r.name, "algorithm": "sha256", "digest": r.digest} for r in ordered],
    }
    subject = ResourceDescriptor.for_digest(root_digest(ordered), name=name)
    statement = Statement((subject,), OMS_PREDICATE, predicate)
    parse_statement(statement)  # what is signed must be what a verifier accepts
    return statement


def vouched_digests(statement: Statement) -> tuple[Digest, ...]:
    """Digests an OMS statement vouches for besides its subject, for indexing.

    A signature over a model of exactly one file vouches for that file's bytes, so a
    checkpoint looked up by its own SHA-256 finds it -- but only when the statement is
    well-formed and its root digest recomputes from that one resource. Anything else
    (another predicate type, several files, an inconsistent or unsupported statement) adds
    nothing: a digest is indexed only if the signed statement binds it.
    """
    if statement.predicate_type != OMS_PREDICATE:
        return ()
    try:
        signature = parse_statement(statement)
    except Error:
        return ()
    if len(signature.resources) != 1:
        return ()
    return (Digest(Algorithm.SHA256, signature.resources[0].digest),)


__all__ = [
    "OMS_PREDICATE",
    "SINGLE_FILE",
    "ModelSignature",
    "OmsResource",
    "UnsupportedModelSignatureError",
    "model_statement",
    "parse_statement",
    "resource_order",
    "root_digest",
    "vouched_digests",
]
