"""``provenance bom``: a CycloneDX 1.6 ML-BOM of a trained model, from its verified chain.

The policy is required: a BOM repeats what the chain says to people who will not check it, so
it is written only for a chain that verifies, and says only what the policy accepted
(:mod:`provenance.interop.mlbom`). Exit 0 written, 1 refused (unattested, not trained, or
untrusted), 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from provenance.errors import EXIT_OK

log = logging.getLogger(__name__)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the bom sub-command."""
    bom = commands.add_parser(
        "bom",
        parents=[common],
        help="a CycloneDX ML-BOM of a trained model, from its verified chain",
        description="Verify MODEL's chain under the policy and write a CycloneDX 1.6 JSON "
        "ML-BOM of it: the model with a model card (training and evaluation datasets, "
        "evaluation figures), the datasets as data components, the training environment's "
        "components from its SBOM, and the dependencies between them. Only statements the "
        "policy accepts are described; an unverified chain, or a model with no training "
        "provenance, is refused (exit 1).",
    )
    bom.add_argument("model", metavar="MODEL", help="a model file, directory or digest")
    bom.add_argument("--policy", required=True, type=Path, metavar="FILE")
    bom.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: standard output")
    bom.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE.jsonl",
        help="evidence from this file (as 'ledger export' writes) instead of the ledger",
    )
    bom.add_argument(
        "--offline",
        action="store_true",
        help="verify Sigstore bundles against the trust roots shipped with sigstore-python",
    )
    bom.set_defaults(handler=run_bom)


def run_bom(args: argparse.Namespace) -> int:
    """Verify, describe, check against the schema, write."""
    from provenance.cli.common import open_evidence, subject, write_out
    from provenance.interop.mlbom import describe_model, validate_bom
    from provenance.policy.load import load_policy

    policy = load_policy(args.policy)
    evidence, ledger = open_evidence(args.bundle)
    try:
        digest, manifest = subject(args.model)
        result = describe_model(
            digest, evidence, policy, offline=args.offline, directory=manifest is not None
        )
    finally:
        if ledger is not None:
            ledger.close()
    if not validate_bom(result.data):
        log.debug("the json-validation extra is not installed: the ML-BOM was not validated")
    for note in result.notes:
        print(f"provenance: note: {note}", file=sys.stderr)
    write_out(result.data, args.output)
    summary = f"{result.model}  {result.name}: ML-BOM of {result.components} components"
    if args.output is not None:
        print(f"{summary} written to {args.output}")
    else:
        print(summary, file=sys.stderr)
    return EXIT_OK
