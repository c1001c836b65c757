"""``provenance ledger check``, ``ledger export`` and ``ledger import``.

Export writes JSON Lines: each line is either a Sigstore bundle (an attestation) or a manifest
(told apart by ``mediaType``). Import verifies every bundle's signature -- against the trusted
keys given and the project's own, or a Sigstore identity -- before storing it; a line that
does not verify is reported and skipped, and the command then exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import print_json, project_and_ledger, subject_digest, write_out
from provenance.errors import EXIT_OK, EXIT_REFUSED, Error, InputError, UsageError

if TYPE_CHECKING:
    from provenance.bundle import Bundle
    from provenance.ledger import VerifiedBy
    from provenance.project import Project
    from provenance.signing.keys import PublicKey
    from provenance.signing.sigstore import Identity

MAX_IMPORT_BYTES = 1 << 30


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ledger sub-commands."""
    ledger = commands.add_parser("ledger", help="check, export or import the ledger")
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", parents=[common], help="verify the hash chain; exit 1 on any inconsistency"
    )
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=run_check)

    export = actions.add_parser(
        "export", parents=[common], help="write attestations and manifests as JSON Lines"
    )
    export.add_argument(
        "--for",
        dest="subject",
        metavar="DIGEST|PATH",
        help="only this artifact's chain (transitively)",
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE")
    export.set_defaults(handler=run_export)

    importer = actions.add_parser(
        "import", parents=[common], help="verify and store attestations from JSON Lines"
    )
    importer.add_argument("file", type=Path, metavar="FILE")
    importer.add_argument(
        "--trust-key",
        action="append",
        default=[],
        type=Path,
        metavar="PUB",
        help="a public key whose bundles are accepted",
    )
    importer.add_argument(
        "--identity",
        action="append",
        default=[],
        help="a Sigstore certificate identity whose bundles are accepted",
    )
    importer.add_argument(
        "--issuer",
        action="append",
        default=[],
        help="the OIDC issuer for each --identity, in the same order",
    )
    importer.add_argument("--staging", action="store_true", help="Sigstore staging instance")
    importer.set_defaults(handler=run_import)


def run_check(args: argparse.Namespace) -> int:
    """Verify the chain and the indexes."""
    _, ledger = project_and_ledger()
    with ledger:
        problems = ledger.check()
        count = len(ledger.entries())
    if args.format == "json":
        print_json({"entries": count, "intact": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            print(f"- {problem}")
        print(f"ledger NOT intact: {len(problems)} problem(s) in {count} entries")
    else:
        print(f"ledger intact: {count} entries")
    return EXIT_REFUSED if problems else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    """Write the ledger, or one artifact's chain, as JSON Lines."""
    _, ledger = project_and_ledger()
    with ledger:
        entries = (
            ledger.closure(subject_digest(args.subject)) if args.subject else (ledger.entries())
        )
        lines = [_compact(entry.bundle) for entry in entries]
        stored: set[str] = set()
        for entry in entries:
            for subject in entry.parsed().statement.subjects:
                for digest in subject.digests():
                    manifest = ledger.manifest(digest)
                    if manifest is not None and str(digest) not in stored:
                        stored.add(str(digest))
                        lines.append(manifest.canonical_bytes)
    write_out(b"".join(line + b"\n" for line in lines), args.output)
    if args.output is not None:
        print(f"wrote {len(entries)} attestations and {len(stored)} manifests to {args.output}")
    return EXIT_OK


def _compact(raw: bytes) -> bytes:
    """A bundle on one line (its signed payload is base64 inside, so bytes are unaffected)."""
    if b"\n" not in raw:
        return raw
    return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()


def _trust(args: argparse.Namespace, project: Project) -> tuple[list[PublicKey], list[Identity]]:
    from provenance.signing.keys import PublicKey
    from provenance.signing.sigstore import Identity

    keys = [PublicKey.from_file(p) for p in args.trust_key]
    keys += [PublicKey.from_file(p) for p in sorted(project.keys_dir.glob("*.pub"))]
    if len(args.identity) != len(args.issuer):
        raise UsageError("give one --issuer for each --identity")
    identities = [Identity(i, s) for i, s in zip(args.identity, args.issuer, strict=True)]
    return keys, identities


def _verify(
    bundle: Bundle, keys: list[PublicKey], identities: list[Identity], staging: bool
) -> VerifiedBy:
    """Verify ``bundle`` under the trusted material; return what verified it, or raise."""
    from provenance.ledger import KeylessSigner
    from provenance.signing.keys import SignatureError
    from provenance.signing.sigstore import Instance, verify

    if not bundle.keyless:
        for key in keys:
            if key.named_by(bundle.key_hint):
                bundle.verify_with_key(key)
                return key
        raise SignatureError(f"signed by key {str(bundle.key_hint)[:16]}, which is not trusted")
    instance = Instance.STAGING if staging else Instance.PRODUCTION
    for identity in identities:
        try:
            verify(bundle, identity, instance=instance)
        except SignatureError:
            continue
        return KeylessSigner(identity.identity, identity.issuer, instance.value)
    raise SignatureError("keyless bundle from no trusted identity")


def run_import(args: argparse.Namespace) -> int:
    """Verify and store the bundles and manifests of a JSON Lines file."""
    from provenance.bundle import MEDIA_TYPES, Bundle
    from provenance.digest import MEDIA_TYPE, Manifest
    from provenance.digest.canonical import loads_strict
    from provenance.fsutil import read_limited

    data = read_limited(args.file, MAX_IMPORT_BYTES)
    project, ledger = project_and_ledger()
    keys, identities = _trust(args, project)
    counts = {"imported": 0, "duplicate": 0, "manifests": 0, "refused": 0}
    with ledger:
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{args.file}:{number}"
            try:
                document = loads_strict(line, what=where)
                media_type = document.get("mediaType") if isinstance(document, dict) else None
                if not isinstance(media_type, str):
                    raise InputError(f"{where}: neither a bundle nor a manifest")
                if media_type == MEDIA_TYPE:
                    ledger.store_manifest(Manifest.from_bytes(line, source=where))
                    counts["manifests"] += 1
                elif media_type in MEDIA_TYPES:
                    bundle = Bundle.from_bytes(line, source=where)
                    verified_by = _verify(bundle, keys, identities, args.staging)
                    added = ledger.append(bundle, verified_by=verified_by)
                    counts["imported" if added else "duplicate"] += 1
                else:
                    raise InputError(f"unknown mediaType {media_type!r}")
            except Error as e:
                print(f"provenance: refused {where}: {e.diagnostics()}", file=sys.stderr)
                counts["refused"] += 1
    print(
        f"{counts['imported']} imported, {counts['duplicate']} already present, "
        f"{counts['manifests']} manifests, {counts['refused']} refused"
    )
    return EXIT_REFUSED if counts["refused"] else EXIT_OK
