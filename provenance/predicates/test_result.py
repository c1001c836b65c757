"""The in-toto test-result predicate v0.1: which named tests passed, warned or failed.

Spec: https://github.com/in-toto/attestation/blob/main/spec/predicates/test-result.md. Used
here by the installed-file integrity check (``attest/integrity.md`` defines its test names);
the figures test-result has no field for travel in the ``configuration`` descriptors'
annotations, which the spec leaves free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provenance.errors import FormatError
from provenance.statement import ResourceDescriptor, Statement, check_json

TEST_RESULT_PREDICATE = "https://in-toto.io/attestation/test-result/v0.1"
PASSED = "PASSED"
WARNED = "WARNED"
FAILED = "FAILED"


def outcome(failed: Sequence[str], warned: Sequence[str]) -> str:
    """FAILED when anything failed, WARNED when something only warned, else PASSED."""
    if failed:
        return FAILED
    return WARNED if warned else PASSED


def test_result_statement(
    subjects: Sequence[ResourceDescriptor],
    *,
    configuration: Sequence[Mapping[str, Any]],
    passed: Sequence[str],
    warned: Sequence[str],
    failed: Sequence[str],
    url: str | None = None,
) -> Statement:
    """A test-result statement; ``result`` follows from the lists (see :func:`outcome`)."""
    if not configuration:
        raise FormatError("a test result needs at least one configuration descriptor")
    for descriptor in configuration:
        if not any(k in descriptor for k in ("uri", "digest", "content")):
            raise FormatError("a configuration descriptor needs a uri, digest or content")
    check_json(list(configuration), "configuration")
    predicate: dict[str, Any] = {
        "result": outcome(failed, warned),
        "configuration": [dict(c) for c in configuration],
        "passedTests": list(passed),
        "warnedTests": list(warned),
        "failedTests": list(failed),
    }
    if url is not None:
        predicate["url"] = url
    return Statement(tuple(subjects), TEST_RESULT_PREDICATE, predicate)
