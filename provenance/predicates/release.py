"""The release predicate (``attest/release.md``): *this file is the evidence released with that
model*.

A release file (``provenance release``) is JSON Lines of the bundles and manifests of a model's
chain. It needs no signature of its own to be verified -- every bundle in it is signed and the
verifier checks each -- but an auditor may want to know who published it, and that it is the
file they published. Signing this statement (keylessly, with Sigstore) answers both: its
subject is the release file's SHA-256, so ``sigstore verify identity FILE --bundle
FILE.sigstore.json`` checks the bytes and the publisher's identity in one step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from provenance.digest.algorithms import Digest
from provenance.errors import FormatError
from provenance.predicates.training import rfc3339
from provenance.statement import ResourceDescriptor, Statement

RELEASE_PREDICATE = "https://ml-provenance.dev/attestation/release/v1"


def release_statement(
    release: Digest,
    *,
    file_name: str,
    artifact: Digest,
    artifact_name: str | None,
    attestations: Sequence[str],
    manifests: Sequence[Digest],
    released_at: dt.datetime,
) -> Statement:
    """The statement about a release file: which artifact it is for and what it holds.

    ``attestations`` are attestation ids (hex SHA-256 of what each bundle signs, as a policy's
    ``revoked.attestations`` names them); ``released_at`` must carry a time zone.
    """
    if release.algorithm.value != "sha256":
        raise FormatError("a release file is named by its SHA-256")
    if not attestations:
        raise FormatError("a release holds at least one attestation")
    target: dict[str, object] = {"digest": artifact.as_dict()}
    if artifact_name:
        target["name"] = artifact_name
    predicate = {
        "artifact": target,
        "attestations": [f"sha256:{a}" for a in attestations],
        "manifests": [str(m) for m in manifests],
        "releasedAt": rfc3339(released_at),
    }
    subject = ResourceDescriptor.for_digest(release, name=file_name)
    return Statement((subject,), RELEASE_PREDICATE, predicate)


__all__ = ["RELEASE_PREDICATE", "release_statement"]
