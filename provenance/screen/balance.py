"""Class balance: the smallest class's count over the largest's.

Declared labels (the schema's ``labels``) with no sample count as classes of size zero, so a
class that vanished from the data fails the check rather than going unnoticed.
"""

from __future__ import annotations

from collections import Counter

from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec


def check_class_balance(
    samples: Samples, spec: CheckSpec, declared: tuple[str, ...] | None
) -> CheckResult:
    """The min/max class-count ratio, with the count of every class."""
    labels: list[object] = list(samples.labels) if samples.labels is not None else []
    counts = Counter(str(v) for v in labels if v is not None)
    for label in declared or ():
        counts.setdefault(label, 0)
    largest = max(counts.values(), default=0)
    smallest = min(counts.values(), default=0)
    ratio = smallest / largest if largest else 0.0
    rarest = min(counts, key=lambda k: (counts[k], k)) if counts else None
    return CheckResult(
        spec,
        ratio,
        [],
        f"smallest class {rarest!r} has {smallest} samples, the largest {largest} "
        f"(ratio {ratio:.3f})",
        [detector("ml-provenance class-counts")],
        {"counts": dict(sorted(counts.items()))},
    )
