"""``provenance audit``: the verdict on an artifact as one HTML page an auditor can keep.

The page (:mod:`provenance.report.html`) shows the lineage graph, every failure with its reason
and the policy that was applied; it is self-contained and opens offline. The evidence is the
project's ledger or, on an auditor's machine, a release file (``--bundle``). Exit codes are
``verify``'s: 0 trusted, 1 refused (the page is written either way), 2 bad input.

:func:`lineage_for` is shared with ``provenance show --tree``, which prints the same lineage
as a terminal tree.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from provenance.cli.common import print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED

if TYPE_CHECKING:
    from provenance.policy.model import Policy
    from provenance.report.lineage import Lineage


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the audit sub-command."""
    audit = commands.add_parser(
        "audit",
        parents=[common],
        help="verify an artifact and write a self-contained HTML audit report",
        description="Verify ARTIFACT's chain under the policy (from the ledger, or --bundle) "
        "and write one HTML file: the lineage graph coloured by verdict, every failure with "
        "its reason, and the policy applied. It needs nothing but a browser to open, offline. "
        "Exit 0 if trusted, 1 if refused (the report is written either way), 2 on bad input.",
    )
    audit.add_argument("artifact", metavar="ARTIFACT", help="a file, a directory or a digest")
    audit.add_argument("--policy", required=True, type=Path, metavar="FILE")
    audit.add_argument("--html", required=True, type=Path, metavar="FILE", help="report to write")
    from provenance.cli.common import add_evidence_options

    add_evidence_options(audit)
    audit.add_argument("--format", choices=["text", "json"], default="text")
    audit.set_defaults(handler=run_audit)


class LineageResult(NamedTuple):
    """A lineage and how it was obtained."""

    lineage: Lineage
    policy: Policy | None
    policy_bytes: bytes | None
    evidence: str
    reference_time: str


def lineage_for(
    artifact: str,
    *,
    policy_path: Path | None,
    bundle: Path | None,
    at: str | None,
    offline: bool,
) -> LineageResult:
    """Verify ``artifact`` (when a policy is given) and build its lineage from the evidence."""
    import datetime as dt

    from provenance.cli.common import project_and_ledger, reference_time, subject
    from provenance.fsutil import read_limited
    from provenance.policy.load import MAX_POLICY_BYTES, load_policy
    from provenance.report.lineage import ReleaseInfo, build_lineage, unverified_report
    from provenance.verify.core import verify
    from provenance.verify.evidence import MAX_EVIDENCE_BYTES, JsonLinesEvidence, LedgerEvidence

    policy = load_policy(policy_path) if policy_path is not None else None
    policy_bytes = (
        read_limited(policy_path, MAX_POLICY_BYTES, what="policy")
        if policy_path is not None
        else None
    )
    when = reference_time(at) or dt.datetime.now(dt.timezone.utc)
    ledger = None
    release = None
    if bundle is not None:
        data = read_limited(bundle, MAX_EVIDENCE_BYTES, what="evidence")  # read once
        file_evidence = JsonLinesEvidence(data, source=str(bundle))
        evidence: Any = file_evidence
        sha256 = hashlib.sha256(data).hexdigest()
        release = ReleaseInfo(
            bundle.name,
            sha256,
            file_evidence.bundle_count,
            len(list(file_evidence.manifests())),
        )
        described = f"bundle {bundle} (sha256:{sha256})"
    else:
        project, ledger = project_and_ledger()
        evidence = LedgerEvidence(ledger)
        described = f"ledger {project.ledger_path}"
    try:
        digest, _ = subject(artifact)
        if policy is not None:
            report = verify(digest, evidence, policy, at=when, offline=offline)
        else:
            report = unverified_report(digest, evidence)
        lineage = build_lineage(
            report,
            evidence,
            policy,
            policy_name=str(policy_path) if policy_path is not None else None,
            offline=offline,
            release=release,
        )
    finally:
        if ledger is not None:
            ledger.close()
    return LineageResult(lineage, policy, policy_bytes, described, when.isoformat())


def run_audit(args: argparse.Namespace) -> int:
    """Verify, draw, write the page."""
    from provenance import __version__
    from provenance.fsutil import atomic_write
    from provenance.report.html import AuditContext, render_html
    from provenance.report.lineage import clean

    result = lineage_for(
        args.artifact,
        policy_path=args.policy,
        bundle=args.bundle,
        at=args.at,
        offline=args.offline,
    )
    policy_bytes = result.policy_bytes or b""
    context = AuditContext(
        artifact=args.artifact,
        policy_path=str(args.policy),
        policy_sha256=hashlib.sha256(policy_bytes).hexdigest(),
        policy_text=policy_bytes.decode("utf-8", "replace"),
        evidence=result.evidence,
        reference_time=result.reference_time,
        generated_by=f"ml-provenance {__version__}",
    )
    page = render_html(result.lineage, result.policy, context)
    atomic_write(args.html, page.encode("utf-8"))
    lineage = result.lineage
    if args.format == "json":
        print_json({"html": str(args.html), **lineage.to_json()})
    else:
        verdict = "TRUSTED" if lineage.trusted else "REFUSED"
        print(f"{verdict}: wrote the audit report {args.html} ({len(lineage.nodes)} nodes)")
        for failure in lineage.failures:
            name = f" ({clean(failure.name)})" if failure.name else ""
            what = f"{clean(failure.requirement)}: {clean(failure.found)}"
            print(f"  ✘ {failure.artifact}{name}: {what}")
    return EXIT_OK if lineage.trusted else EXIT_REFUSED
