"""``provenance env sbom|audit|check``: describe, audit and check a Python environment.

Each action works on an interpreter's environment (this one by default, ``--python`` for
another) and, inside a project and unless ``--no-ledger``, signs what it found into the ledger:
the SBOM as a CycloneDX statement, the audit as an in-toto vulns statement, the integrity check
as an in-toto test-result statement, all about the *environment digest* (the SHA-256 of the
SBOM's exact bytes; an audit of ``-r FILE`` is about that file's digest instead). The signing
key is loaded before the work starts, so a missing key is reported before a long check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli.common import add_signing_options, print_json
from provenance.errors import EXIT_OK, EXIT_REFUSED

if TYPE_CHECKING:
    from provenance.deps.inventory import Environment
    from provenance.deps.sbom import Sbom
    from provenance.statement import Statement

MAX_REQUIREMENTS_BYTES = 16 << 20
Recorder = Callable[["Statement"], str]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``env`` and its actions."""
    env = commands.add_parser("env", help="SBOM, vulnerability audit and integrity check")
    actions = env.add_subparsers(dest="env_command", metavar="ACTION", required=True)

    sbom = actions.add_parser(
        "sbom",
        parents=[common],
        help="a reproducible CycloneDX SBOM of a Python environment",
        description="List the distributions installed for the interpreter (name, version, "
        "package URL, licences, SHA-256 of its RECORD) as a CycloneDX 1.6 JSON SBOM whose bytes "
        "depend only on the environment. Its SHA-256 is the environment digest; the SBOM is "
        "signed into the ledger about it. Writes the SBOM to FILE (standard output without "
        "-o, the digest then going to standard error).",
    )
    _add_python(sbom)
    sbom.add_argument("-o", "--output", type=Path, metavar="FILE")
    _add_recording(sbom)
    sbom.set_defaults(handler=run_sbom)

    audit = actions.add_parser(
        "audit",
        parents=[common],
        help="audit for known vulnerabilities (exit 1 on findings)",
        description="Check every distribution of the environment, or every pinned requirement "
        "of -r FILE, against OSV vulnerability data, and sign the result as an in-toto vulns "
        "attestation. Fails closed: anything that could not be checked is an error (exit 2) "
        "and nothing is recorded; findings are recorded and exit 1.",
    )
    audit.add_argument(
        "-r",
        "--requirement",
        type=Path,
        metavar="FILE",
        help="audit this fully pinned requirements file (nothing is installed or resolved)",
    )
    _add_python(audit)
    source = audit.add_mutually_exclusive_group()
    source.add_argument(
        "--osv-url", metavar="URL", help="an OSV-compatible API (default: https://api.osv.dev)"
    )
    source.add_argument(
        "--osv-db", type=Path, metavar="DIR", help="a local OSV dump: directory or zip of records"
    )
    audit.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (--osv-url)"
    )
    audit.add_argument("--format", choices=["text", "json"], default="text")
    _add_recording(audit)
    audit.set_defaults(handler=run_audit)

    check = actions.add_parser(
        "check",
        parents=[common],
        help="re-hash installed files against their RECORDs (exit 1 on findings)",
        description="Re-hash every file each installed distribution's RECORD lists and look "
        "for .pth files and modules in site-packages that no RECORD claims; sign the result as "
        "an in-toto test-result attestation about the environment digest.",
    )
    _add_python(check)
    check.add_argument("-j", "--jobs", type=int, metavar="N", help="hashing threads")
    check.add_argument("--format", choices=["text", "json"], default="text")
    _add_recording(check)
    check.set_defaults(handler=run_check)


def _add_python(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter (or virtual environment) to describe (default: this one)",
    )


def _add_recording(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ledger", action="store_true", help="do not sign or record anything")
    add_signing_options(parser)


def _recorder(args: argparse.Namespace) -> Recorder | None:
    """A function signing and recording a statement, or None when nothing is to be recorded.

    Outside a project there is no ledger: the result is reported and a note says it was not
    recorded. The signer is prepared now, before the work, so key problems come first.
    """
    from provenance.cli.common import prepare_signer, project_and_ledger
    from provenance.project import find_project

    if args.no_ledger:
        return None
    if find_project() is None:
        print(
            "provenance: note: not in a project, nothing recorded "
            "(run 'provenance init', or pass --no-ledger)",
            file=sys.stderr,
        )
        return None
    project, ledger = project_and_ledger()
    signer = prepare_signer(args, project)

    def record(statement: Statement) -> str:
        with ledger:
            bundle, verified_by = signer(statement)
            entry = ledger.append(bundle, verified_by=verified_by)
        return f"ledger entry {entry.seq}" if entry else "already in the ledger"

    return record


def _environment(args: argparse.Namespace) -> tuple[Environment, Sbom]:
    from provenance.deps.inventory import inspect
    from provenance.deps.sbom import build_sbom

    environment = inspect(args.python)
    return environment, build_sbom(environment)


def _where(recorded: str | None) -> str:
    return recorded if recorded is not None else "not recorded"


def run_sbom(args: argparse.Namespace) -> int:
    """Write the SBOM, print its digest, record it."""
    from provenance.cli.common import write_out
    from provenance.deps.sbom import ENVIRONMENT_NAME
    from provenance.predicates.sbom import sbom_statement

    record = _recorder(args)
    environment, sbom = _environment(args)
    write_out(sbom.data, args.output)
    recorded = None
    if record is not None:
        recorded = record(sbom_statement(sbom.document(), sbom.digest, name=ENVIRONMENT_NAME))
    line = (
        f"{sbom.digest}  {ENVIRONMENT_NAME} "
        f"({len(environment.distributions)} components, {_where(recorded)})"
    )
    print(line, file=sys.stdout if args.output is not None else sys.stderr)
    return EXIT_OK


def run_audit(args: argparse.Namespace) -> int:
    """Audit, report, record; exit 1 on findings."""
    import hashlib

    from provenance.deps.audit import (
        environment_dependencies,
        requirements_dependencies,
        run_audit,
    )
    from provenance.deps.osv import DEFAULT_OSV_URL, OsvApi, OsvDatabase, OsvSource
    from provenance.deps.sbom import ENVIRONMENT_NAME
    from provenance.digest.algorithms import Algorithm, Digest
    from provenance.errors import UsageError
    from provenance.fsutil import read_limited
    from provenance.predicates.vulns import (
        SOURCE_ENVIRONMENT,
        SOURCE_REQUIREMENTS,
        vulns_statement,
    )

    if args.requirement is not None and args.python is not None:
        raise UsageError("give -r FILE or --python PATH, not both")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    record = _recorder(args)
    if args.requirement is not None:
        data = read_limited(args.requirement, MAX_REQUIREMENTS_BYTES, what="requirements file")
        dependencies = requirements_dependencies(data, what=str(args.requirement))
        subject = Digest(Algorithm.SHA256, hashlib.sha256(data).hexdigest())
        name, source = args.requirement.name, SOURCE_REQUIREMENTS
    else:
        environment, sbom = _environment(args)
        dependencies = environment_dependencies(environment)
        subject, name, source = sbom.digest, ENVIRONMENT_NAME, SOURCE_ENVIRONMENT
    service: OsvSource
    if args.osv_db is not None:
        service = OsvDatabase(args.osv_db)
    else:
        service = OsvApi(args.osv_url or DEFAULT_OSV_URL, timeout=args.timeout)
    outcome = run_audit(dependencies, service, source=source)
    statement = vulns_statement(subject, name=name, scan=outcome.scan, findings=outcome.findings)
    recorded = record(statement) if record is not None else None
    if args.format == "json":
        document = {"subject": str(subject), "recorded": recorded}
        print_json({**document, "statement": statement.to_json()})
    else:
        for f in sorted(outcome.findings, key=lambda f: (f.package, f.version, f.id)):
            aliases = f" ({', '.join(f.aliases)})" if f.aliases else ""
            fixed = f"fixed in {', '.join(f.fixed)}" if f.fixed else "no fixed version known"
            print(f"{f.package}=={f.version}  {f.id}{aliases}  {fixed}")
        packages = len(outcome.packages)
        affected = len({(f.package, f.version) for f in outcome.findings})
        plural = "" if packages == 1 else "s"
        summary = (
            f"{len(outcome.findings)} known vulnerabilit"
            f"{'y' if len(outcome.findings) == 1 else 'ies'} in {affected} of {packages} "
            f"package{plural}"
            if outcome.findings
            else f"no known vulnerabilities in {packages} package{plural}"
        )
        print(f"{summary} ({subject} {name}, {_where(recorded)})")
    return EXIT_REFUSED if outcome.findings else EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    """Check installed files, report, record; exit 1 on findings."""
    from provenance.deps.integrity import check_environment, integrity_statement
    from provenance.errors import UsageError

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    record = _recorder(args)
    environment, sbom = _environment(args)
    report = check_environment(environment, workers=args.jobs)
    statement = integrity_statement(report, environment, sbom.digest)
    recorded = record(statement) if record is not None else None
    if args.format == "json":
        document = {"subject": str(sbom.digest), "recorded": recorded}
        print_json({**document, "statement": statement.to_json()})
        return EXIT_OK if report.passed else EXIT_REFUSED
    for problem in report.problems:
        detail = f" ({problem.detail})" if problem.detail else ""
        print(f"{problem.kind:<12} {problem.distribution}  {problem.path}{detail}")
    for item in report.unclaimed:
        print(f"{'unclaimed':<12} {item.kind}  {Path(item.site_dir) / item.path}")
    warnings = len(report.warnings) + len(report.unclaimed_warnings)
    findings = len(report.problems) + len(report.unclaimed)
    verdict = "FAILED" if findings else "PASSED"
    print(
        f"{verdict}: {findings} finding(s), {warnings} warning(s); "
        f"{len(report.distributions)} distributions, {report.files} files "
        f"({report.bytes / 1e6:.1f} MB) checked ({sbom.digest}, {_where(recorded)})"
    )
    return EXIT_OK if report.passed else EXIT_REFUSED
