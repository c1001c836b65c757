"""``provenance export in-toto``: a verified model's chain as an in-toto layout and links.

The export signs new statements (the layout, one link per step) with the project's key, so it
first verifies the model under a policy -- ``--policy``, or the project's own -- and refuses
(exit 1, nothing written) unless it is trusted: a key must not vouch, in another format, for a
chain it would refuse in its own. See :mod:`provenance.interop.intoto` for what is exported.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from provenance.cli.common import print_json
from provenance.errors import EXIT_OK, UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``export in-toto``."""
    from provenance.cli.common import add_evidence_options

    export = commands.add_parser("export", help="export a verified chain in other formats")
    formats = export.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    intoto = formats.add_parser(
        "in-toto",
        parents=[common],
        help="a signed in-toto root layout and links, for in-toto-verify",
        description="Verify MODEL under the policy, then write DIR/root.layout and one link "
        "per step (ingest, screen, train, evaluate: those the chain has), signed with the "
        "project's key (or --key), with rules that chain each step's materials to the "
        "previous step's products. 'in-toto-verify' then passes in a directory holding exactly "
        "the datasets and the model at the paths training used, and fails if any file changed.",
    )
    intoto.add_argument("model", metavar="MODEL", help="the model file (or directory)")
    intoto.add_argument("--out", required=True, type=Path, metavar="DIR")
    intoto.add_argument(
        "--key",
        metavar="FILE|URI",
        help="private key file, or a KMS/HSM signer URI (default: the project's default key)",
    )
    intoto.add_argument(
        "--public-key", type=Path, metavar="FILE", help="the public key of a signer URI"
    )
    intoto.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="verify under this policy first (default: the project's .provenance/policy.yaml)",
    )
    intoto.add_argument(
        "--expires", type=int, default=365, metavar="DAYS", help="layout lifetime (default 365)"
    )
    add_evidence_options(intoto)
    intoto.add_argument("--format", choices=["text", "json"], default="text")
    intoto.set_defaults(handler=run_export_intoto)


def run_export_intoto(args: argparse.Namespace) -> int:
    """Verify, plan, sign, write."""
    from provenance.cli.common import load_signer, open_evidence, reference_time, subject
    from provenance.interop.intoto import plan_export, write_export
    from provenance.policy.load import load_policy
    from provenance.project import find_project
    from provenance.verify.core import verify

    if not 1 <= args.expires <= 3650:
        raise UsageError("--expires takes 1 to 3650 days")
    project = find_project()
    policy_path = args.policy
    if policy_path is None:
        if project is None or not (project.state_dir / "policy.yaml").is_file():
            raise UsageError("give --policy FILE (there is no project policy here)")
        policy_path = project.state_dir / "policy.yaml"
    policy = load_policy(policy_path)
    signer = load_signer(args.key, args.public_key, project)
    evidence, ledger = open_evidence(args.bundle)
    try:
        digest, manifest = subject(args.model)
        if not Path(args.model).exists():
            raise UsageError("MODEL must be the model's path: the links record files by path")
        report = verify(digest, evidence, policy, at=reference_time(args.at), offline=args.offline)
        plan = plan_export(
            report,
            evidence,
            policy,
            model_path=Path(args.model).as_posix(),
            model_manifest=manifest,
            offline=args.offline,
        )
    finally:
        if ledger is not None:
            ledger.close()
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=args.expires)
    readme = f"ml-provenance export of the verified chain of {plan.model_path} ({digest})"
    written = write_export(plan, signer, args.out, expires=expires, readme=readme)
    public = _public_key_hint(args, project)
    command = (
        f"in-toto-verify --layout {written.layout} --verification-keys {public} "
        f"--link-dir {args.out}"
    )
    if args.format == "json":
        print_json(
            {
                "model": str(digest),
                "layout": str(written.layout),
                "links": [str(p) for p in written.links],
                "steps": [s.name for s in plan.steps],
                "keyid": written.key_id,
                "verify": command,
            }
        )
        return EXIT_OK
    steps = ", ".join(s.name for s in plan.steps)
    print(f"wrote {written.layout} and {len(written.links)} link(s) ({steps}) to {args.out}")
    print("verify, in a directory holding exactly the datasets and the model:")
    print(f"  {command}")
    return EXIT_OK


def _public_key_hint(args: argparse.Namespace, project: Any) -> str:
    """The public key file to name in the printed in-toto-verify command."""
    if args.public_key is not None:
        return str(args.public_key)
    if args.key is not None:
        return str(Path(args.key).with_suffix(".pub"))
    if project is not None:
        return str(project.keys_dir / "default.pub")
    return "KEY.pub"
