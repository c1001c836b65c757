"""``provenance verify``: may this artifact be used? Exit 0 trusted, 1 refused, 2 bad input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from provenance.cli.common import add_evidence_options, print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the verify sub-command."""
    verify = commands.add_parser(
        "verify",
        parents=[common],
        help="verify an artifact's attestation chain under a policy",
        description="Hash ARTIFACT (or take it as a digest), find the attestations naming it "
        "in the project's ledger or in --bundle, and check every requirement of the policy, "
        "down the chain to its leaves. Exit 0 if trusted, 1 if refused (every failure is "
        "listed), 2 on bad input.",
    )
    verify.add_argument("artifact", metavar="ARTIFACT", help="a file, a directory or a digest")
    verify.add_argument("--policy", required=True, type=Path, metavar="FILE")
    verify.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    add_evidence_options(verify)
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Verify and report."""
    from provenance.cli.common import open_evidence, reference_time, subject
    from provenance.digest import build_manifest
    from provenance.policy.load import load_policy
    from provenance.verify.core import closest_attested, verify
    from provenance.verify.render import render_text, report_json

    policy = load_policy(args.policy)
    evidence, ledger = open_evidence(args.bundle)
    try:
        digest, local = subject(args.artifact)
        report = verify(digest, evidence, policy, at=reference_time(args.at), offline=args.offline)
        if not report.trusted and local is not None and not evidence.about(digest):
            closest = closest_attested(local, evidence)
            if closest is not None and closest[0].ignore != local.ignore:
                # Compare exactly as the attested dataset was hashed.
                local = build_manifest(Path(args.artifact), ignore=closest[0].ignore)
                closest = (closest[0], closest[0].diff(local))
            report.local_diff = closest
    finally:
        if ledger is not None:
            ledger.close()
    if args.format == "json":
        print_json(report_json(report, policy=str(args.policy)))
    elif args.format == "sarif":
        from provenance import __version__
        from provenance.verify.render import report_sarif

        print_json(
            report_sarif(
                report, artifact=args.artifact, policy=str(args.policy), version=__version__
            )
        )
    else:
        render_text(report, sys.stdout)
    return EXIT_OK if report.trusted else EXIT_REFUSED
