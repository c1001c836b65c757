"""The in-toto vulns predicate v0.2 (``attest/vulns.md``): the result of a vulnerability scan.

Spec: https://github.com/in-toto/attestation/blob/main/spec/predicates/vulns_02.md. The spec's
fields are filled as it defines them (``scanner.uri/version``, ``scanner.db.uri/version/
lastUpdate``, ``scanner.result[].id/severity/annotations``, ``metadata.scanStartedOn/
scanFinishedOn``). What it has no field for goes where it allows extension: each result's
``annotations`` (a list of objects) carries one object with the affected package, its
aliases, fixed versions and summary; and one top-level ``audit`` object (unknown fields are
ignored by in-toto consumers) says what was audited -- how many packages, from an environment
or a requirements file -- because an empty ``result`` only means something next to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement

VULNS_PREDICATE = "https://in-toto.io/attestation/vulns/v0.2"
SOURCE_ENVIRONMENT = "environment"
SOURCE_REQUIREMENTS = "requirements"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Finding:
    """One vulnerability affecting one package version."""

    id: str
    aliases: tuple[str, ...]
    package: str  # normalised name
    version: str
    purl: str
    fixed: tuple[str, ...]
    severity: tuple[tuple[str, str], ...]  # (method, score)
    summary: str
    rating: str = "UNKNOWN"  # see provenance.deps.cvss and attest/vulns.md

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": [{"method": m, "score": s} for m, s in self.severity],
            "annotations": [
                {
                    "package": {"name": self.package, "version": self.version, "purl": self.purl},
                    "aliases": list(self.aliases),
                    "fixedVersions": list(self.fixed),
                    "summary": self.summary,
                    "rating": self.rating,
                }
            ],
        }


@dataclass(frozen=True)
class Scan:
    """How the scan was made: scanner, vulnerability data, times, and what was audited."""

    scanner_uri: str
    scanner_version: str
    db_uri: str
    db_version: str | None
    db_last_update: str
    started: str
    finished: str
    source: str  # SOURCE_ENVIRONMENT or SOURCE_REQUIREMENTS
    packages: int
    auditor: str

    def __post_init__(self) -> None:
        for what, value in (
            ("lastUpdate", self.db_last_update),
            ("scanStartedOn", self.started),
            ("scanFinishedOn", self.finished),
        ):
            if not _RFC3339.fullmatch(value):
                raise FormatError(f"{what} must be an RFC 3339 time: {value!r}")
        if self.source not in (SOURCE_ENVIRONMENT, SOURCE_REQUIREMENTS):
            raise FormatError(f"unknown audit source {self.source!r}")


def vulns_statement(
    subject: Digest, *, name: str, scan: Scan, findings: Sequence[Finding]
) -> Statement:
    """The vulns v0.2 statement about ``subject`` (an environment or a requirements file)."""
    db: dict[str, Any] = {"uri": scan.db_uri, "lastUpdate": scan.db_last_update}
    if scan.db_version is not None:
        db["version"] = scan.db_version
    ordered = sorted(findings, key=lambda f: (f.package, f.version, f.id))
    predicate = {
        "scanner": {
            "uri": scan.scanner_uri,
            "version": scan.scanner_version,
            "db": db,
            "result": [f.to_json() for f in ordered],
        },
        "metadata": {"scanStartedOn": scan.started, "scanFinishedOn": scan.finished},
        "audit": {
            "source": scan.source,
            "packages": scan.packages,
            "auditor": scan.auditor,
            "strict": True,
        },
    }
    subjects = (ResourceDescriptor.for_digest(subject, name=name),)
    return Statement(subjects, VULNS_PREDICATE, predicate)


def result_ids(statement: Statement) -> list[str]:
    """The vulnerability ids a vulns statement reports (strictly read; for policies)."""
    if statement.predicate_type != VULNS_PREDICATE:
        raise FormatError(f"not a vulns statement: {statement.predicate_type}")
    scanner = statement.predicate.get("scanner")
    results = scanner.get("result") if isinstance(scanner, Mapping) else None
    if not isinstance(results, Sequence) or isinstance(results, str):
        raise FormatError("vulns predicate: scanner.result must be a list")
    ids = []
    for item in results:
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise FormatError("vulns predicate: every result needs an id")
        ids.append(item["id"])
    return ids
