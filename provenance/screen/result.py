"""One check's verdict and figures, and the digest that pins which samples it flagged.

Flagged samples are recorded by index (see :mod:`provenance.screen.samples` for the order)
and pinned by ``sha256:`` of the canonical JSON of the sorted index list, so a policy or an
auditor can compare two runs' flagged sets without the lists themselves. The list is kept in
the figures too while it is short (:data:`MAX_LISTED` entries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from provenance.digest.canonical import canonical_json
from provenance.screen.schema import CheckSpec

MAX_LISTED = 1000


def indices_digest(indices: Iterable[int]) -> str:
    """``sha256:<hex>`` of the canonical JSON of the sorted, distinct indices."""
    ordered = sorted({int(i) for i in indices})
    return "sha256:" + hashlib.sha256(canonical_json(ordered)).hexdigest()


def indices_figures(indices: Iterable[int]) -> dict[str, Any]:
    """Count, digest and (when short) the list of ``indices``."""
    ordered = sorted({int(i) for i in indices})
    figures: dict[str, Any] = {"count": len(ordered), "indicesDigest": indices_digest(ordered)}
    if len(ordered) <= MAX_LISTED:
        figures["indices"] = ordered
    return figures


def detector(name: str, distribution: str | None = None) -> dict[str, str]:
    """A detector's name and the version of the distribution that implements it."""
    version = "unknown"
    if distribution is not None:
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            version = "not installed"
    else:
        from provenance import __version__

        version = __version__
    return {"name": name, "version": version}


@dataclass
class CheckResult:
    """What one check found: its verdict, the metric the verdict came from, the samples it
    flagged, and details for people and policies."""

    spec: CheckSpec
    metric: float
    flagged: list[int]
    summary: str
    detectors: list[dict[str, str]]
    details: dict[str, Any] = field(default_factory=dict)
    forced_fail: bool = False  # a dataset-level violation fails whatever the fraction

    def __post_init__(self) -> None:
        self.flagged = sorted({int(i) for i in self.flagged})
        self.metric = float(round(self.metric, 6))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def result(self) -> str:
        return self.spec.judge(self.metric, forced_fail=self.forced_fail)

    def figures(self) -> dict[str, Any]:
        """The check's entry in the screening predicate's ``checks``."""
        flagged = indices_figures(self.flagged)
        document: dict[str, Any] = {
            "result": self.result,
            "metric": self.metric,
            "flagged": flagged.pop("count"),
            **flagged,
            "thresholds": self.spec.thresholds(),
            "sanitize": self.spec.sanitize,
            "detectors": self.detectors,
            "summary": self.summary,
        }
        if self.details:
            document["details"] = self.details
        return document
