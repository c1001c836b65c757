"""A vulnerability audit with pip-audit's ``Auditor``, in the strict, fail-closed sense.

What is audited comes from one of two sources, both fixed before any query is made:

* an environment (:func:`environment_dependencies`): every installed distribution of the
  interpreter, as :mod:`provenance.deps.inventory` lists them -- the same list the environment
  SBOM is made of, so the audit's subject can be the environment digest;
* a requirements file (:func:`requirements_dependencies`): every requirement must be pinned
  to one exact version (``==1.2.3``), and nothing is resolved or installed. pip-audit's own
  ``RequirementSource`` is not used because it would create a virtual environment and
  pip-install from the network to resolve anything unpinned, silently ignores ``-r``
  includes (their requirements would go unaudited) and drops requirements whose environment
  markers do not match the auditing interpreter. Here includes are refused, markers are
  ignored (a pin for another platform is still audited: it is in the file the attestation
  names), and anything unpinned, a URL or an editable requirement is refused, saying which.

The vulnerability data comes from a :class:`~provenance.deps.osv.OsvSource`. Strict means
what ``pip-audit --strict`` means and more: a dependency that cannot be audited (a version
that is not PEP 440), a service that fails in any way, an answer missing for any dependency
-- each is an error (exit 2), never a result; only a complete audit produces findings.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import EXIT_BAD_INPUT, Error, InputError
from provenance.predicates.vulns import Finding, Scan

if TYPE_CHECKING:
    from provenance.deps.inventory import Environment
    from provenance.deps.osv import OsvSource


class AuditIncompleteError(Error):
    """The audit could not check everything it was asked to: it has no answer."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class AuditOutcome:
    """A complete audit: what was checked, against what data, and what was found."""

    packages: tuple[tuple[str, str], ...]  # (normalised name, version), sorted
    findings: tuple[Finding, ...]
    scan: Scan


def environment_dependencies(environment: Environment) -> list[Any]:
    """pip-audit dependencies for every distribution installed in ``environment``."""
    from packaging.version import InvalidVersion, Version
    from pip_audit._service.interface import ResolvedDependency, SkippedDependency

    found: list[Any] = []
    for dist in environment.distributions:
        try:
            found.append(ResolvedDependency(name=dist.name, version=Version(dist.version)))
        except InvalidVersion:
            reason = f"its version {dist.version!r} is not a PEP 440 version"
            found.append(SkippedDependency(name=dist.name, skip_reason=reason))
    return found


def _pinned_version(requirement: Any, where: str) -> str:
    specifiers = list(requirement.specifier) if requirement.specifier else []
    if len(specifiers) != 1 or specifiers[0].operator not in ("==", "==="):
        raise InputError(
            f"{where}: {requirement.req} is not pinned to one exact version",
            hint="pin every requirement with ==, e.g. with pip-compile or 'pip freeze'",
        )
    version: str = specifiers[0].version
    if "*" in version:
        raise InputError(f"{where}: {requirement.req} pins a wildcard, not one version")
    return version


def requirements_dependencies(data: bytes, *, what: str) -> list[Any]:
    """pip-audit dependencies for a fully pinned requirements file (see the module docstring)."""
    from packaging.version import InvalidVersion, Version
    from pip_audit._service.interface import ResolvedDependency, SkippedDependency
    from pip_requirements_parser import RequirementsFile

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} is not UTF-8 text") from e
    if "${" in text:
        raise InputError(
            f"{what} uses environment variables: what is audited would not be what the file says"
        )
    # The exact bytes that were hashed are parsed (from_string would do this, but is broken
    # in pip-requirements-parser 32: it uses a name it never imports).
    with tempfile.TemporaryDirectory(prefix="provenance-audit-") as tmp:
        copy = Path(tmp) / "requirements.txt"
        copy.write_bytes(data)
        parsed = RequirementsFile.from_file(str(copy), include_nested=False)
    if parsed.invalid_lines:
        bad = parsed.invalid_lines[0]
        raise InputError(f"{what} line {bad.line_number}: {bad.error_message}")
    for option in parsed.options:
        if {"requirements", "constraints", "editables"} & set(option.options):
            raise InputError(
                f"{what} line {option.requirement_line.line_number}: includes another file "
                f"({option.requirement_line.line.strip()!r}); the attestation names one file",
                hint="audit a single flattened file (pip-compile writes one)",
            )
    found: list[Any] = []
    for requirement in parsed.requirements:
        where = f"{what} line {requirement.requirement_line.line_number}"
        if requirement.is_editable or requirement.req is None:
            line = requirement.requirement_line.line.strip()
            raise InputError(f"{where}: {line!r} names no package version that can be audited")
        if requirement.is_url:
            raise InputError(f"{where}: {requirement.name} is a URL requirement, not a version")
        version = _pinned_version(requirement, where)
        try:
            found.append(ResolvedDependency(name=requirement.name, version=Version(version)))
        except InvalidVersion:
            reason = f"its pinned version {version!r} is not a PEP 440 version"
            found.append(SkippedDependency(name=requirement.name, skip_reason=reason))
    if not found:
        raise InputError(f"{what} lists no requirements: there is nothing to audit")
    return found


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finding(dependency: Any, result: Any, service: OsvSource) -> Finding:
    from packageurl import PackageURL

    from provenance.deps.cvss import rating
    from provenance.deps.osv import fixed_versions

    name = dependency.canonical_name
    ids = {result.id, *result.aliases}
    records = service.records_for(ids, name)
    aliases = set(result.aliases)
    for record in records:
        aliases |= {record.id, *record.aliases}
    aliases.discard(result.id)
    severity: dict[tuple[str, str], None] = {}
    for record in records:
        severity.update(dict.fromkeys(record.severities()))
    fixed = fixed_versions(records, name) or [str(v) for v in result.fix_versions]
    version = str(dependency.version)
    return Finding(
        id=result.id,
        aliases=tuple(sorted(aliases)),
        package=name,
        version=version,
        purl=str(PackageURL(type="pypi", name=name, version=version)),
        fixed=tuple(fixed),
        severity=tuple(severity),
        summary=result.description,
        rating=rating(severity),
    )


def run_audit(dependencies: Sequence[Any], service: OsvSource, *, source: str) -> AuditOutcome:
    """Audit ``dependencies`` against ``service``; raise unless every one was checked."""
    import pip_audit
    from pip_audit._audit import Auditor
    from pip_audit._dependency_source import DependencySource

    from provenance import __version__

    skipped = [d for d in dependencies if d.is_skipped()]
    if skipped:
        names = ", ".join(f"{d.name} ({d.skip_reason})" for d in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise AuditIncompleteError(f"cannot audit {names}{more}: refusing a partial audit")
    unique = {(d.canonical_name, str(d.version)): d for d in dependencies}
    wanted = [unique[k] for k in sorted(unique)]

    class Fixed(DependencySource):  # type: ignore[misc]  # pip-audit ships no types
        def collect(self) -> Iterator[Any]:
            return iter(wanted)

        def fix(self, fix_version: Any) -> None:  # pragma: no cover - never asked to fix
            raise NotImplementedError

    started = _now()
    findings: list[Finding] = []
    answered: set[tuple[str, str]] = set()
    try:
        for dependency, results in Auditor(service).audit(Fixed()):
            answered.add((dependency.canonical_name, str(dependency.version)))
            findings += [_finding(dependency, r, service) for r in results]
    except Error:
        raise
    except Exception as e:  # a bug or an unexpected failure inside the audit: no answer
        raise AuditIncompleteError(f"the audit failed: {type(e).__name__}: {e}") from e
    if missing := sorted(set(unique) - answered):
        shown = ", ".join(f"{n}=={v}" for n, v in missing[:5])
        raise AuditIncompleteError(f"the vulnerability service gave no answer for {shown}")
    finished = _now()
    database = service.database()
    scan = Scan(
        scanner_uri=f"pkg:pypi/ml-provenance@{__version__}",
        scanner_version=__version__,
        db_uri=database.uri,
        db_version=database.version,
        db_last_update=database.last_update,
        started=started,
        finished=finished,
        source=source,
        packages=len(wanted),
        auditor=f"pkg:pypi/pip-audit@{pip_audit.__version__}",
    )
    return AuditOutcome(tuple(sorted(unique)), tuple(findings), scan)
