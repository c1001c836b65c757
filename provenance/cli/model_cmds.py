"""``provenance model sign`` and ``model verify``: OpenSSF model signatures (OMS v1.0).

The signature files are those of ``model_signing sign key`` / ``verify key``, and the options
follow its defaults: the signature goes to ``model.sig`` in the working directory unless
``--signature`` says otherwise, and a signature inside a directory model is left out of it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import print_json
from provenance.errors import EXIT_OK, RefusedError

if TYPE_CHECKING:
    pass


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add model sign and model verify."""
    model = commands.add_parser("model", help="OpenSSF model signatures (model_signing format)")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    sign = actions.add_parser(
        "sign",
        parents=[common],
        help="sign a model file or directory as model_signing does",
        description="Hash PATH (a file, or every file of a directory) into an OpenSSF model "
        "signing (OMS v1.0) statement, sign it with an ECDSA P-256 key and write the bundle "
        "that 'model_signing verify key' accepts. Inside a provenance project the bundle is "
        "also recorded in the ledger.",
    )
    sign.add_argument("path", type=Path, metavar="PATH")
    sign.add_argument(
        "--key",
        metavar="FILE|URI",
        help="EC P-256 private key (PEM), or a KMS/HSM signer URI "
        "(default: the project's default key)",
    )
    sign.add_argument(
        "--public-key", type=Path, metavar="FILE", help="the public key of a signer URI"
    )
    sign.add_argument(
        "--signature",
        type=Path,
        metavar="FILE",
        default=None,
        help="where to write the signature (default: model.sig, as model_signing)",
    )
    sign.add_argument(
        "--no-ledger", action="store_true", help="do not record the signature in the ledger"
    )
    sign.set_defaults(handler=run_sign)

    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="verify a model against an OMS signature and a public key",
        description="Check that SIGNATURE verifies under PUBLIC_KEY and lists exactly the "
        "files of PATH with their digests. Exit 0 if it does, 1 if refused (the reason and "
        "every added, removed or changed file are named), 2 on bad input.",
    )
    verify.add_argument("path", type=Path, metavar="PATH")
    verify.add_argument("--signature", type=Path, required=True, metavar="FILE")
    verify.add_argument("--public-key", type=Path, required=True, metavar="FILE")
    verify.add_argument("--format", choices=["text", "json"], default="text")
    verify.set_defaults(handler=run_verify)


def run_sign(args: argparse.Namespace) -> int:
    """Sign a model, write its signature and, in a project, record it."""
    from provenance.cli.common import load_signer, project_and_ledger
    from provenance.cli.progress import progress_for
    from provenance.fsutil import atomic_write
    from provenance.interop.oms import DEFAULT_SIGNATURE, sign_model
    from provenance.predicates.oms import parse_statement
    from provenance.project import find_project

    signature_path: Path = args.signature or DEFAULT_SIGNATURE
    project = find_project()
    signer = load_signer(args.key, args.public_key, project)
    ledger = project_and_ledger()[1] if project is not None and not args.no_ledger else None
    try:
        progress = progress_for(f"hashing {args.path}", quiet=args.quiet)
        bundle = sign_model(args.path, signer, signature=signature_path, progress=progress)
        atomic_write(signature_path, bundle.raw + b"\n")
        entry = ledger.append(bundle, verified_by=signer.public_key) if ledger else None
    finally:
        if ledger is not None:
            ledger.close()
    signed = parse_statement(bundle.statement)
    if ledger is None:
        where = "not recorded"
    else:
        where = f"ledger entry {entry.seq}" if entry else "already in the ledger"
    count = len(signed.resources)
    print(
        f"{signed.root}  {signed.name} ({count} file{'s' if count != 1 else ''}, "
        f"signature {signature_path}, {where})"
    )
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """Verify a model against a signature and a public key."""
    from provenance.cli.progress import progress_for
    from provenance.interop.oms import read_signature, verify_model
    from provenance.signing.keys import PublicKey

    key = PublicKey.from_file(args.public_key)
    bundle = read_signature(args.signature)
    try:
        progress = progress_for(f"hashing {args.path}", quiet=args.quiet)
        verified = verify_model(args.path, bundle, key, signature=args.signature, progress=progress)
    except RefusedError as e:
        if args.format != "json":
            raise
        print_json({"verified": False, "path": str(args.path), "reason": e.diagnostics()})
        return e.exit_code
    signed = verified.signature
    if args.format == "json":
        print_json(
            {
                "verified": True,
                "path": str(args.path),
                "name": signed.name,
                "root": str(signed.root),
                "files": [{"name": r.name, "sha256": r.digest} for r in signed.resources],
                "key": key.key_id,
            }
        )
        return EXIT_OK
    count = len(signed.resources)
    print(
        f"verified: {args.path} matches its signature ({count} file{'s' if count != 1 else ''}, "
        f"{signed.root}), signed by key {key.key_id[:16]}"
    )
    return EXIT_OK
