"""``provenance release``: write a model's chain of evidence as one portable file.

The file is what an auditor needs to verify the model with no ledger: ``provenance verify
MODEL --bundle FILE --policy P``. With ``--policy`` the release is verified first -- from its
own bytes, as the auditor will -- and refused (exit 1, nothing written) unless the model is
trusted; and the verdict from the release must equal the verdict from the ledger, so a release
never silently lacks evidence the ledger holds. ``--sigstore`` also signs a release statement
(``attest/release.md``) keylessly and writes it beside the file as ``FILE.sigstore.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import print_json
from provenance.errors import EXIT_OK, RefusedError, UsageError

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.ledger import Ledger
    from provenance.release import Release
    from provenance.signing.sigstore import Instance

SIGNATURE_SUFFIX = ".sigstore.json"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the release sub-command."""
    release = commands.add_parser(
        "release",
        parents=[common],
        help="write a model's attestation chain as a portable bundle file",
        description="Write every attestation of ARTIFACT's chain (transitively) and the "
        "manifests they name to FILE as JSON Lines, which 'provenance verify ARTIFACT "
        "--bundle FILE' reads on a machine with no ledger. Exit 1 if nothing attests "
        "ARTIFACT, or (with --policy) if the release does not verify.",
    )
    release.add_argument("artifact", metavar="ARTIFACT", help="a file, a directory or a digest")
    release.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    release.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="refuse, writing nothing, unless the release alone verifies under this policy "
        "(recommended)",
    )
    release.add_argument(
        "--at", metavar="TIME", help="with --policy: judge ages at this RFC 3339 time"
    )
    release.add_argument(
        "--offline",
        action="store_true",
        help="with --policy: verify Sigstore bundles against the shipped trust roots",
    )
    release.add_argument(
        "--sigstore",
        action="store_true",
        help="also sign the release keylessly (needs the network) into FILE.sigstore.json",
    )
    release.add_argument("--staging", action="store_true", help="Sigstore staging instance")
    release.add_argument("--format", choices=["text", "json"], default="text")
    release.set_defaults(handler=run_release)


def run_release(args: argparse.Namespace) -> int:
    """Build, optionally verify and sign, then write the release."""
    from provenance.cli.common import project_and_ledger, subject
    from provenance.fsutil import atomic_write
    from provenance.release import build_release

    if args.staging and not args.sigstore:
        raise UsageError("--staging only applies with --sigstore")
    if (args.at or args.offline) and args.policy is None:
        raise UsageError("--at and --offline only apply with --policy")
    output: Path = args.output
    signature_path = output.with_name(output.name + SIGNATURE_SUFFIX)
    _, ledger = project_and_ledger()
    with ledger:
        digest, _ = subject(args.artifact)
        release = build_release(ledger, digest)
        verdict = None
        if args.policy is not None:
            verdict = _verify_release(args, ledger, release, output.name)
        signed = None
        if args.sigstore:
            signed = _sign(args, ledger, release, output.name)
        atomic_write(output, release.data)
        if signed is not None:
            atomic_write(signature_path, signed[0].raw)
    sha256 = hashlib.sha256(release.data).hexdigest()
    if args.format == "json":
        print_json(
            {
                "artifact": str(digest),
                "output": str(output),
                "sha256": sha256,
                "attestations": [f"sha256:{a}" for a in release.attestations],
                "manifests": [str(m) for m in release.manifests],
                "trusted": verdict,
                "policy": str(args.policy) if args.policy is not None else None,
                "signature": str(signature_path) if signed else None,
                "signer": signed[1] if signed else None,
            }
        )
        return EXIT_OK
    print(
        f"wrote {len(release.attestations)} attestation(s) and {len(release.manifests)} "
        f"manifest(s) for {digest} to {output} (sha256:{sha256})"
    )
    if verdict:
        print(f"verified from the release alone under {args.policy}: TRUSTED")
    else:
        print("not verified (give --policy to refuse a release that does not verify)")
    if signed is not None:
        identity, issuer = signed[1]["identity"], signed[1]["issuer"]
        print(f"signed by {identity} ({issuer}): {signature_path}")
        print(
            f"check it with: sigstore verify identity {output} --bundle {signature_path} "
            f"--cert-identity {identity} --cert-oidc-issuer {issuer}"
        )
    return EXIT_OK


def _verify_release(
    args: argparse.Namespace, ledger: Ledger, release: Release, source: str
) -> bool:
    """Verify from the release's own bytes; refuse unless trusted and equal to the ledger's."""
    from provenance.cli.common import reference_time
    from provenance.policy.load import load_policy
    from provenance.verify.core import verify
    from provenance.verify.evidence import JsonLinesEvidence, LedgerEvidence
    from provenance.verify.render import render_text

    policy = load_policy(args.policy)
    at = reference_time(args.at) or dt.datetime.now(dt.timezone.utc)
    evidence = JsonLinesEvidence(release.data, source=source)
    report = verify(release.artifact, evidence, policy, at=at, offline=args.offline)
    if not report.trusted:
        render_text(report, sys.stderr)
        raise RefusedError(
            f"the release of {release.artifact} does not verify under {args.policy}; "
            "nothing written",
            hint="fix the chain (see the failures above), or release without --policy",
        )
    from_ledger = verify(
        release.artifact, LedgerEvidence(ledger), policy, at=at, offline=args.offline
    )
    if from_ledger.trusted != report.trusted:  # a bug: the closure missed evidence
        raise RefusedError(
            "the release verifies differently from the ledger; nothing written",
            hint="please report this with the --debug output",
        )
    return True


def _sign(
    args: argparse.Namespace, ledger: Ledger, release: Release, file_name: str
) -> tuple[Bundle, dict[str, str]]:
    """Sign a release statement keylessly, check it online, and record it in the ledger."""
    from provenance.digest.algorithms import Algorithm, Digest
    from provenance.ledger import KeylessSigner
    from provenance.predicates.release import release_statement
    from provenance.signing import sigstore

    instance: Instance = sigstore.Instance.STAGING if args.staging else sigstore.Instance.PRODUCTION
    statement = release_statement(
        Digest.of_bytes(Algorithm.SHA256, release.data),
        file_name=file_name,
        artifact=release.artifact,
        artifact_name=_artifact_name(args.artifact, release),
        attestations=release.attestations,
        manifests=release.manifests,
        released_at=dt.datetime.now(dt.timezone.utc),
    )
    bundle = sigstore.sign_statement(statement, instance=instance)
    identity, issuer = sigstore.certificate_identity(bundle)
    sigstore.verify(bundle, sigstore.Identity(identity, issuer), instance=instance, offline=False)
    ledger.append(bundle, verified_by=KeylessSigner(identity, issuer, instance.value))
    return bundle, {"identity": identity, "issuer": issuer, "instance": instance.value}


def _artifact_name(text: str, release: Release) -> str | None:
    """The artifact's name in the release statement: the file given, else an attested name."""
    path = Path(text)
    if path.exists():
        return path.resolve().name or None
    return release.names[0] if release.names else None
