"""The schema check: which samples break the declared types, ranges, categories, nulls, shapes.

The violations themselves are found while the data is read (:mod:`.tables`, :mod:`.arrays`);
this check counts them. A violation of the dataset as a whole (a missing or undeclared
column, labels the schema declares but the data lacks) fails the check whatever the fraction.
"""

from __future__ import annotations

from provenance.screen.result import CheckResult, detector
from provenance.screen.samples import Samples
from provenance.screen.schema import CheckSpec

MAX_EXAMPLES = 20


def check_schema(samples: Samples, spec: CheckSpec) -> CheckResult:
    """Count the samples (and dataset-level problems) violating the schema."""
    dataset = [v.message for v in samples.violations if v.index is None]
    per_sample = [v for v in samples.violations if v.index is not None]
    flagged = sorted({v.index for v in per_sample if v.index is not None})
    examples = [f"{samples.ids[v.index]}: {v.message}" for v in per_sample if v.index is not None]
    summary = f"{len(flagged)} of {len(samples)} samples violate the schema"
    if dataset:
        summary += f"; {len(dataset)} dataset-level problem(s): {dataset[0]}"
    return CheckResult(
        spec,
        len(flagged) / max(len(samples), 1),
        flagged,
        summary,
        [detector("ml-provenance schema")],
        {
            "violations": len(per_sample),
            "datasetProblems": dataset[:MAX_EXAMPLES],
            "examples": examples[:MAX_EXAMPLES],
        },
        forced_fail=bool(dataset),
    )
