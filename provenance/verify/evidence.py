"""Where the verifier finds attestations and manifests: the ledger, or a portable bundle file.

Evidence is *unverified* input: the verifier checks every signature against the policy's
roots itself. A bundle file (JSON Lines of Sigstore bundles and manifests, as
``provenance ledger export`` writes) makes verification independent of any ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from provenance.bundle import MEDIA_TYPES, Bundle
from provenance.digest.algorithms import Digest
from provenance.digest.canonical import loads_strict
from provenance.digest.manifest import MEDIA_TYPE, Manifest
from provenance.errors import FormatError
from provenance.fsutil import read_limited
from provenance.ledger import Ledger
from provenance.predicates.oms import vouched_digests

MAX_EVIDENCE_BYTES = 1 << 30


class Evidence(Protocol):
    """Attestations and manifests, looked up by subject digest."""

    def about(self, digest: Digest) -> list[Bundle]:
        """Every bundle whose statement names ``digest`` as a subject (or binds it as the one
        file of a signed model, see :func:`provenance.ledger.index_rows`)."""

    def manifest(self, digest: Digest) -> Manifest | None:
        """The manifest whose root digest is ``digest``, if present."""

    def manifests(self) -> Iterable[Manifest]:
        """Every manifest present."""


class LedgerEvidence:
    """The project's ledger as evidence."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def about(self, digest: Digest) -> list[Bundle]:
        return [entry.parsed() for entry in self._ledger.find(subject=digest)]

    def manifest(self, digest: Digest) -> Manifest | None:
        return self._ledger.manifest(digest)

    def manifests(self) -> Iterable[Manifest]:
        for (key,) in self._ledger.conn.execute("SELECT digest FROM manifests").fetchall():
            manifest = self._ledger.manifest(Digest.parse(key))
            if manifest is not None:
                yield manifest


class JsonLinesEvidence:
    """JSON Lines of bundles and manifests, given as bytes, indexed by subject.

    A release about to be written is read this way first, to prove it verifies on its own.
    """

    def __init__(self, data: bytes, *, source: str = "evidence") -> None:
        if len(data) > MAX_EVIDENCE_BYTES:
            raise FormatError(f"{source} is larger than {MAX_EVIDENCE_BYTES} bytes")
        self._by_subject: dict[Digest, list[Bundle]] = {}
        self._manifests: dict[Digest, Manifest] = {}
        self.bundle_count = 0
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{source}:{number}"
            document = loads_strict(line, what=where)
            media_type = document.get("mediaType") if isinstance(document, dict) else None
            if media_type == MEDIA_TYPE:
                manifest = Manifest.from_bytes(line, source=where)
                self._manifests[manifest.root_digest] = manifest
            elif isinstance(media_type, str) and media_type in MEDIA_TYPES:
                bundle = Bundle.from_bytes(line, source=where)
                statement = bundle.statement
                self.bundle_count += 1
                digests = [d for subject in statement.subjects for d in subject.digests()]
                for digest in dict.fromkeys([*digests, *vouched_digests(statement)]):
                    self._by_subject.setdefault(digest, []).append(bundle)
            else:
                raise FormatError(f"{where}: neither a bundle nor a manifest")

    def about(self, digest: Digest) -> list[Bundle]:
        return list(self._by_subject.get(digest, []))

    def manifest(self, digest: Digest) -> Manifest | None:
        return self._manifests.get(digest)

    def manifests(self) -> Iterable[Manifest]:
        return list(self._manifests.values())


class BundleFileEvidence(JsonLinesEvidence):
    """A JSON Lines file of bundles and manifests, read whole and indexed by subject."""

    def __init__(self, path: Path) -> None:
        super().__init__(read_limited(path, MAX_EVIDENCE_BYTES, what="evidence"), source=str(path))
