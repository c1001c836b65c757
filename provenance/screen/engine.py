"""Run the checks a schema and the options ask for, in a fixed order, and collect verdicts.

Which checks run: every check the schema leaves enabled whose inputs exist -- label checks
need labels, ``drift`` a reference profile, ``sources`` sources and a validation set -- and,
because they train models, ``label_issues`` and ``backdoor`` only when asked for. A check
that does not run is listed with the reason, so the evidence never implies it passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provenance.errors import InputError, UsageError
from provenance.screen.result import CheckResult
from provenance.screen.samples import Samples
from provenance.screen.schema import Schema

if TYPE_CHECKING:
    from provenance.digest.algorithms import Digest
    from provenance.guard.dataset import VerifiedDataset
    from provenance.screen.sources import Source


@dataclass(frozen=True)
class Reference:
    """A reference dataset's profile, and whether it was computed from its data or read from
    its screening attestation."""

    digest: Digest
    profile: dict[str, Any]
    origin: str  # "data" | "attestation"


@dataclass
class Options:
    """What the command line adds to the schema."""

    label_issues: bool = False
    backdoor: bool = False
    reference: Reference | None = None
    sources: list[Source] = field(default_factory=list)
    validation: Samples | None = None
    validation_digest: Digest | None = None
    model: str | None = None  # module:function, overriding the schema's label_issues.model


@dataclass
class Screening:
    """The outcome of one run: each check's result, and what did not run and why."""

    samples: Samples
    schema: Schema
    results: list[CheckResult]
    skipped: dict[str, str]
    profile: dict[str, Any]
    options: Options

    def names(self, result: str) -> list[str]:
        """The checks whose verdict is ``result``."""
        return [r.name for r in self.results if r.result == result]

    @property
    def result(self) -> str:
        from provenance.predicates.test_result import outcome

        return outcome(self.names("FAILED"), self.names("WARNED"))

    @property
    def removable(self) -> list[int]:
        """The samples a sanitised copy leaves out: flagged by a check with ``sanitize``."""
        return sorted({i for r in self.results if r.spec.sanitize for i in r.flagged})


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def load_samples(handle: VerifiedDataset, schema: Schema) -> Samples:
    """The dataset behind ``handle`` read as ``schema`` says."""
    if schema.format == "table":
        from provenance.screen.tables import load_table

        return load_table(handle, schema)
    from provenance.screen.arrays import load_arrays

    return load_arrays(handle, schema)


def _require_ran(
    results: list[CheckResult], skipped: dict[str, str], asked: dict[str, bool]
) -> None:
    """A check asked for on the command line that cannot run is an error, not a quiet skip
    (the verdict would read as if it had been made); so is a run in which no check ran."""
    unmet = [f"{name} ({skipped[name]})" for name, on in asked.items() if on and name in skipped]
    if unmet:
        raise UsageError(f"asked for check(s) that cannot run: {'; '.join(unmet)}")
    if not results:
        raise InputError("no check ran (the schema disables them all): nothing to vouch for")


def screen(samples: Samples, schema: Schema, options: Options) -> Screening:
    """Run every applicable check on ``samples``."""
    from provenance.screen import balance, drift, duplicates, outliers, triggers, validation

    if len(samples) == 0:
        raise InputError("the dataset holds no samples: there is nothing to screen")
    checks = schema.checks
    results: list[CheckResult] = []
    skipped: dict[str, str] = {}
    labelled = samples.labels is not None and bool(samples.labelled().any())

    def wanted(name: str, why_not: str | None = None) -> bool:
        if not checks[name].enabled:
            skipped[name] = "disabled in the schema"
        elif why_not is not None:
            skipped[name] = why_not
        return name not in skipped

    no_labels = None if labelled else "the data has no labels"
    # The checks that need nothing but the samples, in the order they are reported.
    basic: list[tuple[str, str | None, Callable[[], CheckResult]]] = [
        ("schema", None, lambda: validation.check_schema(samples, checks["schema"])),
        ("duplicates", None, lambda: duplicates.check_duplicates(samples, checks["duplicates"])),
        (
            "near_duplicates",
            None,
            lambda: duplicates.check_near_duplicates(samples, checks["near_duplicates"]),
        ),
        (
            "label_conflicts",
            no_labels,
            lambda: duplicates.check_label_conflicts(samples, checks["label_conflicts"]),
        ),
        ("outliers", None, lambda: outliers.check_outliers(samples, checks["outliers"])),
        (
            "isolation_forest",
            None,
            lambda: outliers.check_isolation_forest(samples, checks["isolation_forest"]),
        ),
        (
            "class_balance",
            no_labels,
            lambda: balance.check_class_balance(samples, checks["class_balance"], schema.labels),
        ),
        (
            "trigger_patterns",
            no_labels or triggers.applicable(samples),
            lambda: triggers.check_trigger_patterns(samples, checks["trigger_patterns"]),
        ),
    ]
    results += [run() for name, why_not, run in basic if wanted(name, why_not)]
    reference = options.reference
    if wanted("drift", None if reference else "no reference given (--reference)"):
        assert reference is not None
        results.append(
            drift.check_drift(samples, checks["drift"], reference.profile, str(reference.digest))
        )
    if wanted(
        "label_issues",
        no_labels or (None if options.label_issues else "not asked for (--label-issues)"),
    ):
        from provenance.screen.label_issues import check_label_issues

        results.append(check_label_issues(samples, checks["label_issues"], options.model))
    if wanted(
        "backdoor",
        no_labels
        or (None if options.backdoor else "not asked for (--backdoor)")
        or (None if _has_torch() else "torch is not installed (the torch extra)"),
    ):
        from provenance.screen.backdoor import check_backdoor

        results.append(check_backdoor(samples, checks["backdoor"]))
    has_sources = bool(options.sources) and options.validation is not None
    if wanted(
        "sources",
        None if has_sources else "no sources and validation set (--sources, --validation)",
    ):
        from provenance.screen.sources import check_sources

        assert options.validation is not None
        results.append(
            check_sources(
                samples, checks["sources"], options.sources, options.validation, options.model
            )
        )
    _require_ran(
        results,
        skipped,
        {
            "label_issues": options.label_issues,
            "backdoor": options.backdoor,
            "drift": reference is not None,
            "sources": has_sources,
        },
    )
    profile = drift.build_profile(samples, int(checks["drift"].options["bins"]))
    return Screening(samples, schema, results, skipped, profile, options)
