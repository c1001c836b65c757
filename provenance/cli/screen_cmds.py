"""``provenance screen``: screen a dataset, sign the verdict and figures, sanitise on request.

The dataset is hashed into its manifest and read only through a hash-on-read handle of that
manifest (verified under ``--policy`` first when one is given), so what is screened is what
the root digest names. Inside a project the run is signed into the ledger as two statements
about that digest (``attest/screening.md``) -- which needs the dataset attested there first
-- and ``--sanitize OUT`` writes the dataset without the flagged samples and attests it with
the screened dataset as its parent and the screening attestations as the transformation's
evidence. Exit 0 for PASSED or WARNED, 1 for FAILED, 2 for bad input (a malformed schema,
an unattested reference).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import add_signing_options, print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED, InputError, RefusedError, UsageError

if TYPE_CHECKING:
    from provenance.digest.algorithms import Digest
    from provenance.guard.dataset import VerifiedDataset
    from provenance.ledger import Ledger
    from provenance.policy.model import Policy
    from provenance.screen.engine import Reference
    from provenance.screen.samples import Samples
    from provenance.screen.schema import Schema
    from provenance.statement import Statement

Recorder = Callable[["Statement"], tuple[str, str]]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``screen``."""
    screen = commands.add_parser(
        "screen",
        parents=[common],
        help="screen a dataset (schema, duplicates, outliers, drift, label issues, ...)",
        description="Check DATASET (a directory or a single file, present locally) against "
        "a schema and for duplicates, label conflicts, outliers, class imbalance, drift, label "
        "issues, backdoors and harmful sources; sign the verdict (in-toto test-result) and the "
        "figures (screening/v1) about its root digest. Exit 1 when a check FAILED.",
    )
    screen.add_argument("dataset", type=Path, metavar="DATASET")
    screen.add_argument("--schema", required=True, type=Path, metavar="FILE.yaml")
    screen.add_argument(
        "--reference",
        metavar="DIGEST|PATH",
        help="an attested dataset to measure drift against: its data, or (by digest) the "
        "profile in its screening attestation",
    )
    screen.add_argument("--label-issues", action="store_true", help="run confident learning")
    screen.add_argument("--backdoor", action="store_true", help="look for backdoor signatures")
    screen.add_argument(
        "--model",
        metavar="MODULE:FUNCTION",
        help="a function returning an unfitted scikit-learn classifier for --label-issues and "
        "--sources (default: a built-in ensemble)",
    )
    screen.add_argument(
        "--sources",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="the attested datasets DATASET was assembled from, to find harmful ones",
    )
    screen.add_argument(
        "--validation", type=Path, metavar="PATH", help="a trusted, attested validation set"
    )
    screen.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="verify every dataset named here under this policy before reading it",
    )
    screen.add_argument(
        "--sanitize", type=Path, metavar="OUT", help="write DATASET without the flagged samples"
    )
    screen.add_argument("--name", help="the sanitised dataset's name (default: NAME-sanitized)")
    screen.add_argument("--format", choices=["text", "json"], default="text")
    screen.add_argument("--no-ledger", action="store_true", help="do not sign or record anything")
    add_signing_options(screen)
    screen.set_defaults(handler=run_screen)


@dataclass
class _Context:
    """The project's ledger (for look-ups) and the recorder (None: nothing is recorded)."""

    ledger: Ledger | None
    record: Recorder | None
    policy: Policy | None


def _context(args: argparse.Namespace) -> _Context:
    """Open the ledger and prepare the signer before any work, so key problems come first."""
    from provenance.cli.common import prepare_signer, project_and_ledger
    from provenance.project import find_project

    policy = None
    if args.policy is not None:
        from provenance.policy.load import load_policy

        policy = load_policy(args.policy)
    if find_project() is None:
        if not args.no_ledger:
            print(
                "provenance: note: not in a project, nothing recorded "
                "(run 'provenance init', or pass --no-ledger)",
                file=sys.stderr,
            )
        return _Context(None, None, policy)
    project, ledger = project_and_ledger()
    if args.no_ledger:
        return _Context(ledger, None, policy)
    signer = prepare_signer(args, project)

    def record(statement: Statement) -> tuple[str, str]:
        bundle, verified_by = signer(statement)
        entry = ledger.append(bundle, verified_by=verified_by)
        where = f"ledger entry {entry.seq}" if entry else "already in the ledger"
        return f"sha256:{bundle.attestation_id}", where

    return _Context(ledger, record, policy)


def _dataset_name(ledger: Ledger | None, digest: Digest) -> str | None:
    """The name the dataset's newest attestation gives it, or None if none attests it."""
    from provenance.predicates.dataset import DATASET_PREDICATE

    if ledger is None:
        return None
    entries = ledger.find(subject=digest, predicate_type=DATASET_PREDICATE)
    statements = [e.parsed().statement for e in entries]
    for statement in reversed(statements):
        for subject in statement.subjects:
            if subject.matches(digest):
                return subject.name or str(digest)
    return None


def _dataset_parents(ledger: Ledger, digest: Digest) -> set[Digest] | None:
    """The parents its dataset attestations name (None when none names any)."""
    from provenance.predicates.dataset import DATASET_PREDICATE, parents_of

    entries = ledger.find(subject=digest, predicate_type=DATASET_PREDICATE)
    parents = {p for e in entries for p in parents_of(e.parsed().statement)}
    return parents or None


def _open(
    path: Path, what: str, context: _Context, *, attested: bool
) -> tuple[VerifiedDataset, str | None]:
    """A hash-on-read handle on the dataset at ``path`` and its attested name.

    With ``--policy`` the dataset's chain must verify first. With ``attested`` a dataset
    attestation about its digest must be in the ledger.
    """
    from provenance.digest import build_manifest
    from provenance.guard.dataset import VerifiedDataset, verified_dataset

    if not path.exists():
        raise InputError(
            f"{what} {path} does not exist", hint="screening reads the data: give its local path"
        )
    if context.policy is not None:
        handle = verified_dataset(path, context.policy)
    else:
        handle = VerifiedDataset.from_manifest(path, build_manifest(path))
    name = _dataset_name(context.ledger, handle.digest)
    if attested and name is None:
        where = "the project has no ledger" if context.ledger is None else "the ledger has none"
        raise InputError(
            f"{what} {path} ({handle.digest}) is not attested as a dataset ({where})",
            hint=f"attest it first: provenance dataset add {path} --name NAME",
        )
    return handle, name


def _load(handle: VerifiedDataset, schema: Schema) -> Samples:
    from provenance.screen.engine import load_samples

    return load_samples(handle, schema)


def _reference(text: str, schema: Schema, context: _Context) -> Reference:
    """The reference profile: from its data (a path) or its screening attestation (a digest)."""
    from provenance.digest.algorithms import Digest
    from provenance.predicates.screening import SCREENING_PREDICATE
    from provenance.screen.drift import build_profile, check_profile
    from provenance.screen.engine import Reference

    if context.ledger is None:
        raise UsageError(
            "--reference needs the project's ledger, to check the reference is attested",
            hint="run inside a project ('provenance init')",
        )
    if Path(text).exists():
        handle, _ = _open(Path(text), "reference", context, attested=True)
        bins = int(schema.checks["drift"].options["bins"])
        return Reference(handle.digest, build_profile(_load(handle, schema), bins), "data")
    digest = Digest.parse(text)
    if _dataset_name(context.ledger, digest) is None:
        raise InputError(
            f"reference {digest} is not attested as a dataset in the ledger",
            hint="attest the reference with 'provenance dataset add' first",
        )
    bundles = [
        e.parsed() for e in context.ledger.find(subject=digest, predicate_type=SCREENING_PREDICATE)
    ]
    if context.policy is not None:
        # Under a policy, the reference must be trusted and its profile signed by a root of it.
        from provenance.verify.core import verify
        from provenance.verify.evidence import LedgerEvidence
        from provenance.verify.signers import policy_signer

        if not verify(digest, LedgerEvidence(context.ledger), context.policy).trusted:
            raise RefusedError(
                f"reference {digest} does not verify under the policy",
                hint=f"run 'provenance verify {digest} --policy ...' to see why",
            )
        bundles = [b for b in bundles if policy_signer(b, context.policy)[0] is not None]
    profiles = [b.statement.to_json()["predicate"].get("profile") for b in bundles]
    stored = [p for p in profiles if p is not None]
    if not stored:
        raise InputError(
            f"reference {digest} has no screening attestation with a profile",
            hint="give the reference's path instead, or screen the reference first",
        )
    return Reference(digest, check_profile(stored[-1]), "attestation")


def _sources(args: argparse.Namespace, dataset: Digest, schema: Schema, context: _Context) -> Any:
    """The attested sources and the validation set, loaded with the dataset's schema."""
    from provenance.screen.sources import Source

    if bool(args.sources) != (args.validation is not None):
        raise UsageError("--sources and --validation go together")
    if not args.sources:
        return [], None, None
    if context.ledger is None:
        raise UsageError(
            "--sources needs the project's ledger, to check the sources are attested",
            hint="run inside a project ('provenance init')",
        )
    parents = _dataset_parents(context.ledger, dataset)
    sources = []
    for path in args.sources:
        handle, name = _open(path, "source", context, attested=True)
        if parents is not None and handle.digest not in parents:
            raise InputError(
                f"source {path} ({handle.digest}) is not a parent of the screened dataset",
                hint="its dataset attestation lists the parents it was assembled from",
            )
        sources.append(Source(name or str(path), handle.digest, _load(handle, schema)))
    validation, _ = _open(args.validation, "validation set", context, attested=True)
    return sources, _load(validation, schema), validation.digest


def _command(args: argparse.Namespace) -> tuple[str, ...]:
    """The screening command as a transformation records it."""
    words = ["provenance", "screen", str(args.dataset), "--schema", str(args.schema)]
    for flag, value in (("--reference", args.reference), ("--model", args.model)):
        if value:
            words += [flag, str(value)]
    if args.label_issues:
        words.append("--label-issues")
    if args.backdoor:
        words.append("--backdoor")
    if args.sources:
        words += ["--sources", *map(str, args.sources), "--validation", str(args.validation)]
    return (*words, "--sanitize", str(args.sanitize))


def run_screen(args: argparse.Namespace) -> int:
    """Screen, record, sanitise, report."""
    from provenance.screen.schema import load_schema

    schema = load_schema(args.schema)
    context = _context(args)
    try:
        return _run(args, schema, context)
    finally:
        if context.ledger is not None:
            context.ledger.close()


def _run(args: argparse.Namespace, schema: Schema, context: _Context) -> int:
    """The work of :func:`run_screen`, with the ledger open."""
    from provenance.predicates.dataset import Source as DataSource
    from provenance.predicates.screening import (
        screening_result_statement,
        screening_statement,
    )
    from provenance.screen.engine import Options, screen
    from provenance.screen.report import figures, render_text, tool

    recording = context.record is not None
    handle, name = _open(args.dataset, "dataset", context, attested=recording)
    samples = _load(handle, schema)
    sources, validation, validation_digest = _sources(args, handle.digest, schema, context)
    options = Options(
        label_issues=args.label_issues,
        backdoor=args.backdoor,
        reference=_reference(args.reference, schema, context) if args.reference else None,
        sources=sources,
        validation=validation,
        validation_digest=validation_digest,
        model=args.model,
    )
    screening = screen(samples, schema, options)
    now = DataSource.now()
    figures_statement = screening_statement(
        handle.digest,
        name=name,
        predicate=figures(screening, dataset_name=name, attested_at=now),
    )
    verdict = screening_result_statement(figures_statement, tool=tool())
    recorded: dict[str, Any] = {}
    if context.record is not None:
        recorded["screening"] = context.record(figures_statement)
        recorded["testResult"] = context.record(verdict)
    sanitized = None
    if args.sanitize is not None:
        sanitized = _sanitize(
            args,
            handle=handle,
            samples=samples,
            screening=screening,
            name=name,
            recorded=recorded,
            context=context,
        )
    return _report(
        args,
        screening=screening,
        digest=handle.digest,
        name=name,
        figures_statement=figures_statement,
        verdict=verdict,
        recorded=recorded,
        sanitized=sanitized,
        render_text=render_text,
    )


def _sanitize(
    args: argparse.Namespace,
    *,
    handle: VerifiedDataset,
    samples: Samples,
    screening: Any,
    name: str | None,
    recorded: dict[str, Any],
    context: _Context,
) -> dict[str, Any]:
    """Write the sanitised copy and, when recording, attest it as derived from the dataset."""
    from provenance.digest import build_manifest
    from provenance.predicates.dataset import (
        AttestationRef,
        Source,
        Transformation,
        dataset_statement,
    )
    from provenance.predicates.screening import SCREENING_PREDICATE
    from provenance.predicates.test_result import TEST_RESULT_PREDICATE
    from provenance.screen.sanitize import write_sanitized

    removed = write_sanitized(handle, samples, screening.schema, screening.removable, args.sanitize)
    manifest = build_manifest(args.sanitize)
    result: dict[str, Any] = {
        "path": str(args.sanitize),
        "digest": str(manifest.root_digest),
        "removed": removed,
        "recorded": None,
    }
    if context.record is None or context.ledger is None:
        return result
    parent_name = name or str(handle.digest)
    statement = dataset_statement(
        manifest,
        name=args.name or f"{parent_name}-sanitized",
        description=f"{parent_name} without the {removed} samples its screening flagged",
        parents=[handle.digest],
        transformation=Transformation(
            _command(args),
            attestations=(
                AttestationRef(recorded["screening"][0], SCREENING_PREDICATE),
                AttestationRef(recorded["testResult"][0], TEST_RESULT_PREDICATE),
            ),
        ),
        attested_at=Source.now(),
    )
    context.ledger.store_manifest(manifest)
    result["recorded"] = context.record(statement)[1]
    return result


def _report(
    args: argparse.Namespace,
    *,
    screening: Any,
    digest: Digest,
    name: str | None,
    figures_statement: Statement,
    verdict: Statement,
    recorded: dict[str, Any],
    sanitized: dict[str, Any] | None,
    render_text: Callable[[Any], list[str]],
) -> int:
    code = EXIT_REFUSED if screening.result == "FAILED" else EXIT_OK
    if args.format == "json":
        print_json(
            {
                "subject": str(digest),
                "name": name,
                "result": screening.result,
                "recorded": {k: {"id": v[0], "where": v[1]} for k, v in recorded.items()},
                "statements": {
                    "testResult": verdict.to_json(),
                    "screening": figures_statement.to_json(),
                },
                "sanitized": sanitized,
            }
        )
        return code
    for line in render_text(screening):
        print(line)
    counts = {r: len(screening.names(r)) for r in ("FAILED", "WARNED", "PASSED")}
    where = ", ".join(v[1] for v in recorded.values()) or "not recorded"
    print(
        f"{screening.result}: {counts['FAILED']} failed, {counts['WARNED']} warned, "
        f"{counts['PASSED']} passed; {len(screening.removable)} of {len(screening.samples)} "
        f"samples flagged for removal ({digest} {name or args.dataset}, {where})"
    )
    if sanitized is not None:
        note = sanitized["recorded"] or "not recorded"
        print(
            f"sanitized: {sanitized['digest']}  {sanitized['path']} "
            f"({sanitized['removed']} samples removed, {note})"
        )
    return code
