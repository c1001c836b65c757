"""in-toto Statement v1: what an attestation says, about which artifacts, as pure data.

A statement names its *subjects* by digest and carries a typed *predicate*. This module only
models and checks statements; signing wraps their bytes in DSSE (:mod:`provenance.dsse`).

Statements read from a signed payload are parsed strictly (duplicate keys, unknown top-level
fields, a wrong ``_type``, malformed digests are refused) and keep the exact bytes they came
from: verification always works on the bytes that were signed, never on a re-serialisation.
Statements this project writes are encoded as RFC 8785 canonical JSON.

Spec: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import rfc8785

from provenance.digest.algorithms import Algorithm, Digest, is_lower_hex
from provenance.digest.canonical import loads_strict
from provenance.errors import FormatError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# Read as well (SLSA's generators still write it); the shape is the same.
STATEMENT_TYPE_V01 = "https://in-toto.io/Statement/v0.1"
MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_STATEMENT_BYTES = 16 << 20  # a statement names digests; large data belongs elsewhere

# Digest algorithms whose values are hex strings of a known length, checked when present.
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "blake3": 64, "sha1": 40}


def _check_scalar(value: Any, what: str) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FormatError(f"{what} holds a string that is not valid Unicode") from e
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise FormatError(f"{what} holds an integer beyond 2^53, which JSON cannot keep exact")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise FormatError(f"{what} holds a number that is not finite")
    else:
        raise FormatError(f"{what} holds a {type(value).__name__}, which is not JSON")


def check_json(value: Any, what: str) -> None:
    """Refuse values RFC 8785 cannot encode, or that parsers would read differently.

    Strings must be valid Unicode (no lone surrogates), numbers finite and, for integers,
    exactly representable as the IEEE doubles JSON numbers are; nesting is bounded. The walk
    is iterative, so a deep value is refused rather than exhausting the interpreter's stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormatError(f"{what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise FormatError(f"{what} has a non-string key")
                _check_scalar(key, what)
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
        else:
            _check_scalar(item, what)


def _frozen(value: Any) -> Any:
    """A read-only deep copy of a JSON value, so a statement cannot change after checks."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class ResourceDescriptor:
    """An artifact named by digest (and, optionally, by name and location)."""

    digest: Mapping[str, str]
    name: str | None = None
    uri: str | None = None
    annotations: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.digest:
            raise FormatError("a resource descriptor needs at least one digest")
        for algorithm, value in self.digest.items():
            if not isinstance(algorithm, str) or not isinstance(value, str):
                raise FormatError("digest algorithms and values must be strings")
            length = _HEX_LENGTHS.get(algorithm)
            if length is not None and not is_lower_hex(value, length):
                raise FormatError(f"malformed {algorithm} digest {value!r}")
        check_json(dict(self.digest), "digest")
        for text in (self.name, self.uri):
            if text is not None:
                check_json(text, "resource descriptor")
        check_json(self.annotations, "resource annotations")
        object.__setattr__(self, "digest", MappingProxyType(dict(self.digest)))
        object.__setattr__(self, "annotations", _frozen(self.annotations))

    @classmethod
    def for_digest(cls, digest: Digest, *, name: str | None = None) -> ResourceDescriptor:
        """A descriptor naming one of this project's digests."""
        return cls(digest.as_dict(), name=name)

    def digests(self) -> list[Digest]:
        """The digests of algorithms this project accepts (others are ignored, never trusted)."""
        accepted = {a.value: a for a in Algorithm}
        return [Digest(accepted[k], v) for k, v in self.digest.items() if k in accepted]

    def matches(self, digest: Digest) -> bool:
        """True when this descriptor names exactly ``digest``."""
        return self.digest.get(digest.algorithm.value) == digest.value

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"digest": dict(self.digest)}
        if self.name is not None:
            document["name"] = self.name
        if self.uri is not None:
            document["uri"] = self.uri
        if self.annotations:
            document["annotations"] = _thawed(self.annotations)
        return document

    @classmethod
    def from_json(cls, document: Any, *, what: str) -> ResourceDescriptor:
        if not isinstance(document, dict):
            raise FormatError(f"{what} must be a JSON object")
        known = {"digest", "name", "uri", "annotations", "downloadLocation", "mediaType", "content"}
        if unknown := sorted(set(document) - known):
            raise FormatError(f"{what} has unknown field(s) {', '.join(unknown)}")
        digest = document.get("digest")
        if not isinstance(digest, dict):
            raise FormatError(f"{what} needs a digest object")
        name, uri = document.get("name"), document.get("uri")
        if name is not None and not isinstance(name, str):
            raise FormatError(f"{what}: name must be a string")
        if uri is not None and not isinstance(uri, str):
            raise FormatError(f"{what}: uri must be a string")
        annotations = document.get("annotations", {})
        if not isinstance(annotations, dict):
            raise FormatError(f"{what}: annotations must be an object")
        return cls(digest, name=name, uri=uri, annotations=annotations)


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1; see the module docstring."""

    subjects: tuple[ResourceDescriptor, ...]
    predicate_type: str
    predicate: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not self.subjects:
            raise FormatError("a statement needs at least one subject")
        if not isinstance(self.predicate_type, str) or not self.predicate_type:
            raise FormatError("predicateType must be a non-empty string")
        if not isinstance(self.predicate, Mapping):
            raise FormatError("predicate must be a JSON object")
        check_json(self.predicate_type, "predicateType")
        check_json(self.predicate, "predicate")
        object.__setattr__(self, "subjects", tuple(self.subjects))
        object.__setattr__(self, "predicate", _frozen(self.predicate))

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_json() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": _thawed(self.predicate),
        }

    def to_bytes(self) -> bytes:
        """RFC 8785 canonical JSON: the payload this project signs."""
        try:
            return bytes(rfc8785.dumps(self.to_json()))
        except (rfc8785.CanonicalizationError, ValueError) as e:  # values checked on creation
            raise FormatError(f"statement cannot be encoded canonically: {e}") from e

    def names(self, digest: Digest) -> bool:
        """True when one of the subjects is ``digest``."""
        return any(s.matches(digest) for s in self.subjects)

    @classmethod
    def from_bytes(cls, payload: bytes) -> Statement:
        """Parse a signed payload strictly (see the module docstring)."""
        if len(payload) > MAX_STATEMENT_BYTES:
            raise FormatError(f"statement is larger than {MAX_STATEMENT_BYTES} bytes")
        document = loads_strict(payload, what="statement", allow_floats=True)
        if not isinstance(document, dict):
            raise FormatError("statement: must be a JSON object")
        if document.get("_type") not in (STATEMENT_TYPE, STATEMENT_TYPE_V01):
            raise FormatError(
                f"statement: _type is {document.get('_type')!r}, expected {STATEMENT_TYPE}"
            )
        if unknown := sorted(set(document) - {"_type", "subject", "predicateType", "predicate"}):
            raise FormatError(f"statement: unknown field(s) {', '.join(unknown)}")
        subjects = document.get("subject")
        if not isinstance(subjects, list):
            raise FormatError("statement: subject must be a list")
        predicate = document.get("predicate", {})
        return cls(
            tuple(
                ResourceDescriptor.from_json(s, what=f"statement subject {i}")
                for i, s in enumerate(subjects)
            ),
            document.get("predicateType"),  # type: ignore[arg-type]  # checked on construction
            predicate,
        )
