"""``provenance run``: verify the materials, run the command, sign provenance of the products.

Exit codes: 1 when a material is refused (the command never starts) or when the run cannot be
attested truthfully (a material changed under it, a product is missing); 2 on bad input; the
command's own exit code when it fails (nothing is recorded then); 0 after provenance is
recorded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from provenance.cli.common import add_signing_options
from provenance.errors import EXIT_OK, InputError, UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the run sub-command."""
    run = commands.add_parser(
        "run",
        parents=[common],
        help="verify materials, run a training command, sign provenance of its products",
        description="Verify every --material's chain under --policy and refuse (exit 1) before "
        "the command starts if one fails; run CMD (no timeout; its output passes through); "
        "then hash every --product and sign SLSA Provenance v1 of them into the ledger. A "
        "command that fails records nothing and its exit code is returned.",
        usage="provenance run --policy FILE --material PATH... --product PATH... "
        "[--name STEP] [options] -- CMD [ARG...]",
    )
    run.add_argument("--policy", required=True, type=Path, metavar="FILE")
    run.add_argument(
        "--material",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="an input to verify before the command starts (repeatable)",
    )
    run.add_argument(
        "--product",
        action="append",
        required=True,
        type=Path,
        metavar="PATH",
        help="an output to attest after the command succeeds (repeatable)",
    )
    run.add_argument("--name", default="train", metavar="STEP", help="the step's name")
    run.add_argument(
        "--config",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a configuration file the command reads, recorded by digest (repeatable)",
    )
    run.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE.jsonl",
        help="verify the materials from this evidence file instead of the ledger",
    )
    run.add_argument(
        "--builder-id", metavar="URI", help="the builder's id in the provenance (e.g. a CI URI)"
    )
    run.add_argument(
        "--offline",
        action="store_true",
        help="verify Sigstore bundles against the trust roots shipped with sigstore-python",
    )
    run.add_argument(
        "--python",
        type=Path,
        metavar="PATH",
        help="the interpreter (or virtual environment) CMD runs, when CMD does not say "
        "(torchrun, a shell script); default: the python CMD names",
    )
    run.add_argument(
        "--allow-ignored",
        action="store_true",
        help="accept materials holding paths their manifest leaves out (.git/, .provenance/, "
        ".provenanceignore'd): only for commands that read them through verified_dataset",
    )
    add_signing_options(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    run.set_defaults(handler=run_run)


def _execute(command: list[str]) -> int:
    """Run ``command`` with inherited standard streams; return its exit code (128+N for a
    signal, as shells report it). An interrupt waits for the command to end."""
    try:
        child = subprocess.Popen(command)  # noqa: S603 - the user's own command, no shell
    except OSError as e:
        raise InputError(f"cannot run {command[0]}: {e.strerror or e}") from e
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            continue  # the child got the same SIGINT; wait for it to finish
    return 128 - code if code < 0 else code


def run_run(args: argparse.Namespace) -> int:
    """Verify, run, attest."""
    from provenance.cli.common import prepare_signer, project_and_ledger
    from provenance.guard.environment import describe, interpreter_of, is_attested
    from provenance.guard.run import TrainingRun, verify_materials
    from provenance.guard.source import source_state
    from provenance.policy.load import load_policy
    from provenance.verify.evidence import BundleFileEvidence, LedgerEvidence

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command to run", hint="put it after '--': provenance run ... -- CMD")
    policy = load_policy(args.policy)
    python = str(args.python) if args.python is not None else interpreter_of(command)
    environment = describe(python) if python is not None else None
    project, ledger = project_and_ledger()
    with ledger:
        sign = prepare_signer(args, project)
        evidence: Any = (
            BundleFileEvidence(args.bundle) if args.bundle is not None else LedgerEvidence(ledger)
        )
        materials = verify_materials(
            args.material,
            policy=policy,
            evidence=evidence,
            offline=args.offline,
            allow_ignored=args.allow_ignored,
        )
        attested = environment is not None and is_attested(environment.digest, evidence)
    print(
        f"provenance: {len(materials)} material(s) verified: "
        + ", ".join(f"{m.label} ({m.digest})" for m in materials),
        file=sys.stderr,
    )
    if environment is None:
        print(
            f"provenance: note: cannot tell which Python {command[0]} runs, so no environment "
            "is recorded (give --python PATH to describe it)",
            file=sys.stderr,
        )
    elif os.environ.get("PYTHONPATH"):
        attested = False
        print(
            "provenance: note: PYTHONPATH is set, so the command can import modules from "
            "outside the described environment; its digest is not named in the provenance",
            file=sys.stderr,
        )
    elif not attested:
        print(
            f"provenance: note: the environment {environment.digest} has no SBOM attestation, "
            "so the provenance lists its packages but cannot name it for verification "
            "(record it with 'provenance env sbom')",
            file=sys.stderr,
        )
    run = TrainingRun(
        step=args.name,
        command=command,
        materials=materials,
        config_files=args.config,
        source=source_state(Path.cwd()),
        environment=environment,
        environment_attested=attested,
        builder_id=args.builder_id,
    )
    for product in args.product:
        run.add_product(product)
    sys.stdout.flush()
    code = _execute(command)
    if code != 0:
        print(
            f"provenance: the command failed (exit {code}); no provenance recorded",
            file=sys.stderr,
        )
        return code
    _, ledger = project_and_ledger()
    with ledger:
        statement, entry = run.finish(ledger=ledger, sign=sign)
    where = f"ledger entry {entry.seq}" if entry else "already in the ledger"
    for subject in statement.subjects:
        digest = ", ".join(str(d) for d in subject.digests())
        print(f"{digest}  {subject.name} (provenance in {where})")
    return EXIT_OK
