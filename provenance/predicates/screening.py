"""The screening evidence (``attest/screening.md``): a verdict and the figures behind it.

One screening run writes two statements about the same subject, the dataset's root digest:

* an in-toto **test-result** (v0.1, :mod:`provenance.predicates.test_result`, unchanged)
  carrying the verdict and the checks by name -- what a policy gates on
  (``predicate.result == "PASSED"``); its one configuration descriptor names the check type
  and, by digest, the figures statement below, so the verdict points at its evidence;
* a **screening** statement (``https://ml-provenance.dev/attestation/screening/v1``) with
  the figures test-result has no field for: per check the metric, flagged count, flagged
  indices digest, thresholds and detectors, plus the dataset's profile for later drift
  checks. Policies can gate on these directly
  (``predicate.checks.label_issues.flagged <= 10``).

The figures are referenced by *attestation id* (the SHA-256 of the DSSE pre-authentication
encoding of the statement, what ``provenance log`` shows and policies revoke by), which is a
function of the statement alone, so it is known before either statement is signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from provenance.errors import FormatError
from provenance.predicates.test_result import outcome, test_result_statement
from provenance.statement import ResourceDescriptor, Statement

SCREENING_PREDICATE = "https://ml-provenance.dev/attestation/screening/v1"
SCREENING_CHECK = "https://ml-provenance.dev/checks/data-screening/v1"
SCREENING_CONFIGURATION = "data-screening"
_REQUIRED = ("result", "tool", "schemaDigest", "dataset", "checks", "skipped", "sanitize")


def attestation_id(statement: Statement) -> str:
    """The id an attestation of ``statement`` will have, whoever signs it (hex)."""
    return hashlib.sha256(pae(IN_TOTO_PAYLOAD_TYPE, statement.to_bytes())).hexdigest()


def screening_statement(
    subject: Digest, *, name: str | None, predicate: Mapping[str, Any]
) -> Statement:
    """The figures statement about the dataset ``subject``."""
    if missing := [k for k in _REQUIRED if k not in predicate]:
        raise FormatError(f"screening predicate: missing {', '.join(missing)}")
    checks = predicate["checks"]
    if not isinstance(checks, Mapping):
        raise FormatError("screening predicate: checks must be an object")
    verdicts = {c["result"] for c in checks.values()}
    expected = outcome(["x"] if "FAILED" in verdicts else [], ["x"] if "WARNED" in verdicts else [])
    if predicate["result"] != expected:
        raise FormatError(f"screening predicate: result {predicate['result']} is not {expected}")
    return Statement(
        (ResourceDescriptor.for_digest(subject, name=name),), SCREENING_PREDICATE, predicate
    )


def screening_result_statement(figures: Statement, *, tool: str) -> Statement:
    """The test-result statement for the figures statement ``figures`` (same subject)."""
    if figures.predicate_type != SCREENING_PREDICATE:
        raise FormatError(f"not a screening statement: {figures.predicate_type}")
    checks: Mapping[str, Any] = figures.predicate["checks"]

    def named(result: str) -> Sequence[str]:
        return [name for name, check in checks.items() if check["result"] == result]

    configuration = {
        "name": SCREENING_CONFIGURATION,
        "uri": SCREENING_CHECK,
        "digest": {"sha256": attestation_id(figures)},
        "annotations": {
            "figures": SCREENING_PREDICATE,
            "tool": tool,
            "schemaDigest": figures.predicate["schemaDigest"],
            "skipped": sorted(figures.predicate["skipped"]),
        },
    }
    return test_result_statement(
        figures.subjects,
        configuration=[configuration],
        passed=named("PASSED"),
        warned=named("WARNED"),
        failed=named("FAILED"),
    )
