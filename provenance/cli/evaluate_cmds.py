"""``provenance evaluate``: evaluate a checkpoint on a pinned held-out set and sign the result.

Thin: :func:`provenance.evaluate.run.evaluate` checks and evaluates; this parses arguments,
prepares the signer first (a missing key is reported before a long evaluation), records the
statement and prints it. Exit 0 when evaluated and nothing collapsed under the backdoor probe;
1 when something was refused (the model's or the set's chain, a scan finding, an unattested
set) or the probe found a collapse -- that evaluation is still signed and recorded, since a
failed check is evidence too; 2 on bad input (a bad --loader, a malformed set).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import add_signing_options, print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED

if TYPE_CHECKING:
    from provenance.evaluate.api import Evaluation


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the evaluate sub-command."""
    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate a model on a pinned held-out set; sign the figures",
        description="Load MODEL (verified under --policy and scanned first), classify every "
        "sample of the attested evaluation set --data (<label>/<file> folders, under --split "
        "if given), and sign an evaluation attestation about MODEL's digest: accuracy, "
        "per-class precision and recall, a backdoor probe (corner-patch triggers; a class "
        "that most inputs collapse onto is reported, exit 1) and the regression against the "
        "previous release of the same --model-name in the ledger. A state_dict needs "
        "--loader MODULE:FUNCTION, a function in the working directory called as "
        "FUNCTION(path, policy) returning the model or (model, decode).",
    )
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="the checkpoint file")
    evaluate.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="the attested evaluation set"
    )
    evaluate.add_argument(
        "--split", metavar="SUBDIR", help="the sub-directory of DIR holding the class folders"
    )
    evaluate.add_argument(
        "--model-name", metavar="NAME", help="the model's name across releases (default: file name)"
    )
    evaluate.add_argument(
        "--loader", metavar="MODULE:FUNCTION", help="builds the model from the checkpoint"
    )
    evaluate.add_argument(
        "--policy", type=Path, metavar="FILE", help="verify the model and the set under it"
    )
    evaluate.add_argument("--batch-size", type=int, default=256, metavar="N")
    evaluate.add_argument("--no-probe", action="store_true", help="skip the backdoor probe")
    evaluate.add_argument(
        "--probe-threshold",
        type=float,
        default=0.5,
        metavar="RATE",
        help="flip rate at which a trigger counts as collapsing a class (default 0.5)",
    )
    evaluate.add_argument("--format", choices=["text", "json"], default="text")
    evaluate.add_argument("--no-ledger", action="store_true", help="do not sign or record")
    add_signing_options(evaluate)
    evaluate.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate, sign, record, report."""
    from provenance.cli.common import prepare_signer, project_and_ledger
    from provenance.evaluate.run import Request, evaluate

    project, ledger = project_and_ledger()
    with ledger:
        signer = None if args.no_ledger else prepare_signer(args, project)
        policy = None
        if args.policy is not None:
            from provenance.policy.load import load_policy

            policy = load_policy(args.policy)
        evaluation = evaluate(
            Request(
                checkpoint=args.model,
                data=args.data,
                split=args.split,
                model_name=args.model_name,
                loader=args.loader,
                policy=policy,
                probe=not args.no_probe,
                probe_threshold=args.probe_threshold,
                batch_size=args.batch_size,
            ),
            ledger,
        )
        statement = evaluation.statement()
        attestation = entry_seq = None
        if signer is not None:
            bundle, verified_by = signer(statement)
            attestation = f"sha256:{bundle.attestation_id}"
            entry = ledger.append(bundle, verified_by=verified_by)
            entry_seq = entry.seq if entry is not None else None
    if args.format == "json":
        print_json(
            {
                "statement": statement.to_json(),
                "attestation": attestation,
                "ledgerEntry": entry_seq,
                "backdoorSuspected": evaluation.backdoor_suspected,
            }
        )
    else:
        _print_text(evaluation, attestation, entry_seq, args.model)
    return EXIT_REFUSED if evaluation.backdoor_suspected else EXIT_OK


def _print_text(
    evaluation: Evaluation, attestation: str | None, entry_seq: int | None, path: Path
) -> None:
    out = sys.stdout
    metrics = evaluation.metrics
    where = f", {evaluation.dataset_path}/" if evaluation.dataset_path else ""
    name = f" ({evaluation.dataset_name}{where})" if evaluation.dataset_name else where
    print(f"{evaluation.model}  {evaluation.model_name} ({path})", file=out)
    print(f"evaluated on {evaluation.dataset}{name}: {metrics.n} samples", file=out)
    line = f"accuracy {metrics.accuracy:.4f}"
    if evaluation.baseline is not None:
        then = evaluation.baseline.metrics.accuracy
        line += (
            f" (baseline {then:.4f} of {str(evaluation.baseline.model)[:23]}, "
            f"{evaluation.regression.accuracy:+.4f}; worst class recall "
            f"{evaluation.regression.worst_class_recall:+.4f})"
        )
    else:
        line += " (no baseline: no earlier release of this model name)"
    print(line, file=out)
    print("  label  support  precision  recall", file=out)
    for c in metrics.per_class:
        print(f"  {c.label:>5}  {c.support:>7}  {c.precision:>9.4f}  {c.recall:>6.4f}", file=out)
    probe = evaluation.probe
    if probe is None:
        print("backdoor probe: not run", file=out)
    elif not probe.collapsed:
        strongest = max(probe.flips, key=lambda f: f.rate)
        print(
            f"backdoor probe: {len(probe.triggers)} triggers, no class collapsed "
            f"(strongest flip rate {strongest.rate:.3f}, {strongest.trigger} -> "
            f"{strongest.target}; threshold {probe.threshold})",
            file=out,
        )
    else:
        print(
            f"backdoor probe: SUSPECTED BACKDOOR: predictions collapse onto class(es) "
            f"{', '.join(map(str, probe.collapsed_classes))}",
            file=out,
        )
        for flip in sorted(probe.collapsed, key=lambda f: -f.rate):
            print(
                f"  {flip.trigger}: {flip.flipped} of {flip.eligible} inputs "
                f"({flip.rate:.1%}) flip to {flip.target}",
                file=out,
            )
    if attestation is None:
        print("not recorded (--no-ledger)", file=out)
    else:
        where_recorded = (
            f"ledger entry {entry_seq}" if entry_seq is not None else "already in the ledger"
        )
        print(f"signed: {attestation} ({where_recorded})", file=out)
