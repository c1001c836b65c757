"""``provenance dataset add``, ``attest``, ``log`` and ``show``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import (
    add_signing_options,
    print_json,
    project_and_ledger,
    sign,
    subject_digest,
)
from provenance.errors import EXIT_OK, EXIT_REFUSED, FormatError, UsageError

if TYPE_CHECKING:
    from provenance.ledger import Entry

MAX_PREDICATE_BYTES = 16 << 20


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add dataset, attest, log and show."""
    dataset = commands.add_parser("dataset", help="attest datasets")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        parents=[common],
        help="hash, attest, sign and record a dataset",
        description="Hash PATH into a manifest, write a dataset attestation about its root "
        "digest, sign it, and store both in the ledger. Prints the dataset's digest.",
    )
    add.add_argument("path", type=Path, metavar="PATH")
    add.add_argument("--name", required=True)
    add.add_argument("--source", action="append", default=[], metavar="URI")
    add.add_argument("--license")
    add.add_argument("--description")
    add.add_argument("--parent", action="append", default=[], metavar="DIGEST")
    add.add_argument("--algorithm", choices=["sha256", "blake3"], default="sha256")
    add.add_argument("--allow-symlinks", action="store_true")
    add_signing_options(add)
    add.set_defaults(handler=run_dataset_add)

    attest = commands.add_parser(
        "attest",
        parents=[common],
        help="sign any predicate about a subject",
        description="Sign an in-toto statement with PREDICATE (a JSON object) about SUBJECT "
        "(a path, which is hashed, or a digest) and store it in the ledger.",
    )
    attest.add_argument("subject", metavar="SUBJECT")
    attest.add_argument("--predicate-type", required=True, metavar="URI")
    attest.add_argument("--predicate", required=True, type=Path, metavar="FILE.json")
    attest.add_argument("--name", help="the subject's name in the statement")
    add_signing_options(attest)
    attest.set_defaults(handler=run_attest)

    log = commands.add_parser("log", parents=[common], help="list the ledger's entries")
    log.add_argument("--subject", metavar="DIGEST|PATH")
    log.add_argument("--format", choices=["text", "json"], default="text")
    log.set_defaults(handler=run_log)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="the attestations about a digest or path, or (--tree) its whole lineage",
        description="List the ledger's attestations about SUBJECT. With --tree, print its "
        "lineage instead: the artifact, the steps and checks its attestations describe, its "
        "inputs down to their sources -- judged under --policy when one is given (the same "
        "graph 'provenance audit' draws).",
    )
    show.add_argument("subject", metavar="DIGEST|PATH")
    show.add_argument("--format", choices=["text", "json"], default="text")
    show.add_argument(
        "--tree",
        "--lineage",
        dest="tree",
        action="store_true",
        help="the lineage as a tree (JSON: the lineage graph, see provenance/report/lineage.py)",
    )
    show.add_argument(
        "--policy", type=Path, metavar="FILE", help="with --tree: verdicts under this policy"
    )
    from provenance.cli.common import add_evidence_options

    add_evidence_options(show)
    show.set_defaults(handler=run_show)


def run_dataset_add(args: argparse.Namespace) -> int:
    """Hash, attest, sign and record a dataset."""
    from provenance.digest import Algorithm, Digest, build_manifest
    from provenance.predicates.dataset import Source, dataset_statement

    project, ledger = project_and_ledger()
    with ledger:
        parents = [Digest.parse(p) for p in args.parent]
        manifest = build_manifest(
            args.path,
            algorithm=Algorithm.parse(args.algorithm),
            allow_symlinks=args.allow_symlinks,
        )
        statement = dataset_statement(
            manifest,
            name=args.name,
            sources=[Source(uri, Source.now()) for uri in args.source],
            license=args.license,
            description=args.description,
            parents=parents,
            attested_at=Source.now(),
        )
        bundle, verified_by = sign(statement, args, project)
        ledger.store_manifest(manifest)
        entry = ledger.append(bundle, verified_by=verified_by)
    where = f"ledger entry {entry.seq}" if entry else "already in the ledger"
    print(f"{manifest.root_digest}  {args.name} ({manifest.file_count} files, {where})")
    return EXIT_OK


def run_attest(args: argparse.Namespace) -> int:
    """Sign a generic predicate about a subject."""
    from provenance.digest.canonical import loads_strict
    from provenance.fsutil import read_limited
    from provenance.statement import ResourceDescriptor, Statement

    data = read_limited(args.predicate, MAX_PREDICATE_BYTES, what="predicate")
    predicate = loads_strict(data, what=str(args.predicate), allow_floats=True)
    if not isinstance(predicate, dict):
        raise FormatError(f"{args.predicate}: a predicate is a JSON object")
    project, ledger = project_and_ledger()
    with ledger:
        digest = subject_digest(args.subject)
        subject = ResourceDescriptor.for_digest(digest, name=args.name)
        statement = Statement((subject,), args.predicate_type, predicate)
        bundle, verified_by = sign(statement, args, project)
        entry = ledger.append(bundle, verified_by=verified_by)
    where = f"ledger entry {entry.seq}" if entry else "already in the ledger"
    print(f"{digest}  {args.predicate_type} ({where})")
    return EXIT_OK


def _summary(entry: Entry, *, with_predicate: bool = False) -> dict[str, Any]:
    bundle = entry.parsed()
    statement = bundle.statement
    summary = {
        "seq": entry.seq,
        "id": f"sha256:{bundle.attestation_id}",  # what a policy's revoked.attestations names
        "recordedAt": entry.recorded_at,
        "predicateType": entry.predicate_type,
        "signer": entry.signer,
        "subjects": [s.to_json() for s in statement.subjects],
        "bundleDigest": f"sha256:{entry.bundle_digest}",
    }
    if with_predicate:
        summary["predicate"] = statement.to_json()["predicate"]
    return summary


def _subject_label(summary: dict[str, Any]) -> str:
    first = summary["subjects"][0]
    algorithm, value = next(iter(first["digest"].items()))
    name = f" {first['name']}" if first.get("name") else ""
    return f"{algorithm}:{value[:16]}{name}"


def run_log(args: argparse.Namespace) -> int:
    """List ledger entries, optionally about one subject."""
    _, ledger = project_and_ledger()
    with ledger:
        subject = subject_digest(args.subject) if args.subject else None
        summaries = [_summary(e) for e in ledger.find(subject=subject)]
    if args.format == "json":
        print_json(summaries)
        return EXIT_OK
    for s in summaries:
        print(
            f"{s['seq']:>6}  {s['recordedAt'][:19]}  {_subject_label(s):<40} "
            f"{s['predicateType']}  {s['signer'][:28]}  id {s['id'][:23]}"
        )
    if not summaries:
        print("no entries")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    """Show the attestations about a subject, predicates included (or, --tree, its lineage)."""
    if args.tree:
        return _show_tree(args)
    if args.policy is not None or args.bundle is not None or args.at or args.offline:
        raise UsageError("--policy, --bundle, --at and --offline apply with --tree")
    _, ledger = project_and_ledger()
    with ledger:
        digest = subject_digest(args.subject)
        entries = ledger.find(subject=digest)
        details = [_summary(entry, with_predicate=True) for entry in entries]
    if args.format == "json":
        print_json({"subject": str(digest), "attestations": details})
        return EXIT_OK if details else EXIT_REFUSED
    print(f"{digest}: {len(details)} attestation(s)")
    for d in details:
        print(f"- entry {d['seq']}  {d['predicateType']}  ({d['id']})")
        print(f"  signer {d['signer']}, recorded {d['recordedAt']}")
        for key, value in d["predicate"].items():
            text = str(value)
            print(f"  {key}: {text if len(text) <= 100 else text[:97] + '...'}")
    return EXIT_OK if details else EXIT_REFUSED


def _show_tree(args: argparse.Namespace) -> int:
    """The lineage as a terminal tree; exit 1 when refused or when nothing attests it."""
    import sys

    from provenance.cli.audit_cmds import lineage_for
    from provenance.report.tree import render_tree

    result = lineage_for(
        args.subject, policy_path=args.policy, bundle=args.bundle, at=args.at, offline=args.offline
    )
    lineage = result.lineage
    if args.format == "json":
        print_json(lineage.to_json())
    else:
        render_tree(lineage, sys.stdout)
    attested = any(n.attestations for n in lineage.nodes.values()) or len(lineage.nodes) > 1
    if lineage.trusted is None:
        return EXIT_OK if attested else EXIT_REFUSED
    return EXIT_OK if lineage.trusted else EXIT_REFUSED
