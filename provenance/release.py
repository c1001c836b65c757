"""Release bundles: a model's whole chain of evidence in one portable file.

A release is JSON Lines, exactly what :class:`provenance.verify.evidence.BundleFileEvidence`
reads: every attestation of the artifact's chain -- its own and, transitively, those of every
artifact they name (:meth:`provenance.ledger.Ledger.closure`) -- as the exact signed Sigstore
bundles, then the manifests those attestations name. Nothing in it is trusted for being there:
on another machine, ``provenance verify MODEL --bundle FILE --policy P`` checks every signature
against the policy's roots, so the verdict is the same as against the ledger it came from.

This module builds the bytes; it decides nothing about trust (the CLI verifies a release under
a policy before writing it, when asked) and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from provenance.digest.algorithms import Digest
from provenance.errors import RefusedError
from provenance.ledger import Ledger, referenced_digests
from provenance.predicates.oms import vouched_digests
from provenance.statement import Statement


class NothingAttestedError(RefusedError):
    """A release was asked for an artifact no attestation names: it would vouch for nothing."""


@dataclass(frozen=True)
class Release:
    """A release's bytes and what they hold."""

    artifact: Digest
    data: bytes
    attestations: tuple[str, ...]  # attestation ids (hex), in ledger order
    manifests: tuple[Digest, ...]
    names: tuple[str, ...]  # what the artifact's own attestations call it (unverified)


def compact_bundle(raw: bytes) -> bytes:
    """A bundle on one line. Its signed payload is base64 inside, so re-spacing the JSON
    around it changes nothing that is signed."""
    if b"\n" not in raw and b"\r" not in raw:
        return raw
    return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()


def build_release(ledger: Ledger, artifact: Digest) -> Release:
    """The release of ``artifact``: its chain's bundles, then the manifests they name.

    Raises :class:`NothingAttestedError` when no attestation names the artifact itself (a
    chain of inputs with nothing on top is not a release of this artifact).
    """
    entries = ledger.closure(artifact)
    parsed = [(entry, entry.parsed()) for entry in entries]
    own = [bundle.statement for _, bundle in parsed if _binds(bundle.statement, artifact)]
    if not own:
        raise NothingAttestedError(
            f"nothing in the ledger attests {artifact}: a release would vouch for nothing",
            hint="train it under 'provenance run', or sign it ('provenance model sign')",
        )
    lines = [compact_bundle(entry.bundle) for entry, _ in parsed]
    manifests: list[Digest] = []
    for _, bundle in parsed:
        statement = bundle.statement
        named = [d for s in statement.subjects for d in s.digests()]
        for digest in [*named, *referenced_digests(statement.predicate)]:
            if digest in manifests:
                continue
            manifest = ledger.manifest(digest)
            if manifest is not None:
                manifests.append(digest)
                lines.append(manifest.canonical_bytes)
    names = [s.name for st in own for s in st.subjects if s.matches(artifact) and s.name]
    return Release(
        artifact=artifact,
        data=b"".join(line + b"\n" for line in lines),
        attestations=tuple(bundle.attestation_id for _, bundle in parsed),
        manifests=tuple(manifests),
        names=tuple(dict.fromkeys(names)),
    )


def _binds(statement: Statement, digest: Digest) -> bool:
    """True when ``statement`` says something about ``digest``: as a subject, or as the one
    file of a signed model (the rule the verifier applies)."""
    return statement.names(digest) or digest in vouched_digests(statement)


__all__ = ["NothingAttestedError", "Release", "build_release", "compact_bundle"]
