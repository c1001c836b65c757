"""``provenance scan FILE...``: the static pickle scanner alone, e.g. as a CI step."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from provenance.cli.common import print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the scan sub-command."""
    scan = commands.add_parser(
        "scan",
        parents=[common],
        help="statically scan model files for pickled code (exit 1 on findings)",
        description="Read every pickle in each FILE (raw, or inside a zip such as a torch "
        "checkpoint) without executing anything, and report any global outside the "
        "allow-list of tensor and array rebuild functions. The format is recognised by "
        "content; unknown formats and the legacy tar format are refused.",
    )
    scan.add_argument("files", nargs="+", type=Path, metavar="FILE")
    scan.add_argument("--format", choices=["text", "json"], default="text")
    scan.set_defaults(handler=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    """Scan and report."""
    from provenance.guard.pickle_scan import scan_file

    results = [scan_file(path) for path in args.files]
    if args.format == "json":
        print_json(
            [
                {
                    "path": r.path,
                    "format": r.format,
                    "pickles": r.pickles,
                    "safe": r.safe,
                    "findings": r.findings,
                }
                for r in results
            ]
        )
    else:
        for result in results:
            verdict = "ok" if result.safe else f"{len(result.findings)} finding(s)"
            print(f"{result.path}: {result.format}, {result.pickles} pickle(s), {verdict}")
            for finding in result.findings:
                print(f"  - {finding}")
    return EXIT_OK if all(r.safe for r in results) else EXIT_REFUSED
