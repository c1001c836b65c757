"""Installed-file integrity: every file a RECORD lists is re-hashed, and site-packages is
searched for code no RECORD claims.

What counts as a finding (the check fails):

* **modified** -- a listed file whose hash or size differs from its RECORD row, or that is no
  longer a regular file;
* **missing** -- a listed file that is gone (``.pyc`` files excepted, see below);
* **unreadable** -- a listed file that exists but cannot be read;
* **unverifiable distribution** -- no RECORD at all (legacy ``egg-info`` installs), a RECORD
  that cannot be parsed, or a row hashed with an algorithm that cannot vouch for content (md5,
  sha1): nothing then says what its files should be, so the check cannot pass it;
* **unclaimed code** -- in each site directory, a ``.pth`` file, a top-level module or an
  importable top-level directory that no RECORD lists, and, inside directories a RECORD does
  claim, a code file (``.py``, ``.pyc`` outside ``__pycache__``, ``.so``, ``.pyd``) that none
  lists. ``.pth`` files run code at every interpreter start and an extension module shadows the
  ``.py`` beside it, so these are the usual ways to plant code in an environment.

What is deliberately not a finding:

* rows without a hash for the RECORD file itself (and ``RECORD.jws``/``RECORD.p7s``): a RECORD
  cannot contain its own hash. Its SHA-256 is in the environment SBOM instead, so the
  environment digest covers it;
* rows without a hash for ``.pyc`` files (installers list compiled bytecode that way): they are
  not hashed and may be missing (the interpreter recreates them). This is a limit of the check:
  a ``__pycache__`` file rewritten with a matching source timestamp would be loaded and is not
  detected; run with ``PYTHONDONTWRITEBYTECODE`` and clear caches where that matters;
* other rows without a hash, and unclaimed files that are not code (data, caches) inside
  claimed directories: reported as warnings;
* ``*.dist-info``/``*.egg-info`` directories and ``__pycache__`` directories at the top of a
  site directory. Editable installs need no exception: their ``.pth`` file and finder module
  are listed in their RECORD like any other file (their source tree, outside site-packages, is
  not checked -- it is the working tree, not an installed artifact).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provenance.deps.inventory import Environment, InstalledDistribution
from provenance.deps.record import MAX_RECORD_BYTES, SELF_NAMES, RecordEntry, parse_record
from provenance.errors import Error

if TYPE_CHECKING:
    from provenance.digest.algorithms import Digest
    from provenance.statement import Statement

CODE_SUFFIXES = (".py", ".pyc", ".pyw", ".so", ".pyd")
METADATA_SUFFIXES = (".dist-info", ".egg-info")

# Kinds of findings and warnings, as they appear in reports and in the predicate.
MODIFIED = "modified"
MISSING = "missing"
UNREADABLE = "unreadable"
UNVERIFIABLE = "unverifiable"
UNHASHED = "unhashed"
PTH = "pth"
MODULE = "module"
PACKAGE = "package"
FILE = "file"


@dataclass(frozen=True)
class FileProblem:
    """One file of a distribution that does not match its RECORD (or cannot be checked)."""

    distribution: str
    path: str
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class Unclaimed:
    """Something in a site directory that no RECORD lists."""

    site_dir: str
    path: str  # relative to site_dir, POSIX separators
    kind: str


@dataclass(frozen=True)
class DistributionResult:
    """The check of one distribution's RECORD."""

    label: str
    files: int
    problems: tuple[FileProblem, ...] = ()
    warnings: tuple[FileProblem, ...] = ()


@dataclass(frozen=True)
class IntegrityReport:
    """Everything the check found; ``passed`` when there is no finding."""

    distributions: tuple[DistributionResult, ...]
    unclaimed: tuple[Unclaimed, ...]
    unclaimed_warnings: tuple[Unclaimed, ...]
    site_dirs: tuple[str, ...]
    files: int
    bytes: int

    @property
    def problems(self) -> list[FileProblem]:
        return [p for d in self.distributions for p in d.problems]

    @property
    def warnings(self) -> list[FileProblem]:
        return [w for d in self.distributions for w in d.warnings]

    @property
    def passed(self) -> bool:
        return not self.unclaimed and not self.problems


@dataclass
class _Task:
    index: int
    entry: RecordEntry
    path: str


@dataclass
class _Collected:
    tasks: list[_Task] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)


def _hash_file(path: str, algorithm: str) -> tuple[str, int]:
    """The hex digest and size of a regular file, not following a final symbolic link."""
    if algorithm == "sha256":
        from provenance._filehash import hash_file

        result = hash_file(path, "sha256", label=path)
        return result.digest, result.size
    hasher = hashlib.new(algorithm)
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        while chunk := os.read(fd, 1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return hasher.hexdigest(), size


def _check_one(task: _Task, label: str) -> FileProblem | None:
    """The problem with one listed file, or None when it matches its RECORD row."""
    entry = task.entry
    try:
        info = os.lstat(task.path)
    except FileNotFoundError:
        return FileProblem(label, entry.path, MISSING)
    except OSError as e:
        return FileProblem(label, entry.path, UNREADABLE, e.strerror or str(e))
    if not stat.S_ISREG(info.st_mode):
        return FileProblem(label, entry.path, MODIFIED, "no longer a regular file")
    return _compare(task, label)


def _compare(task: _Task, label: str) -> FileProblem | None:
    entry = task.entry
    try:
        digest, size = _hash_file(task.path, entry.algorithm or "")
    except (OSError, Error) as e:
        detail = e.diagnostics() if isinstance(e, Error) else (e.strerror or str(e))
        return FileProblem(label, entry.path, UNREADABLE, detail)
    if digest != entry.digest:
        return FileProblem(label, entry.path, MODIFIED, "content differs from RECORD")
    if entry.size is not None and size != entry.size:
        return FileProblem(label, entry.path, MODIFIED, f"size {size}, RECORD says {entry.size}")
    return None


def _read_record(dist: InstalledDistribution) -> list[RecordEntry]:
    from provenance.fsutil import read_limited

    record = dist.record
    assert record is not None
    return parse_record(read_limited(record, MAX_RECORD_BYTES, what="RECORD"), what=str(record))


def _collect(
    index: int, dist: InstalledDistribution, into: _Collected
) -> tuple[list[FileProblem], list[FileProblem]]:
    """Queue ``dist``'s files for hashing; return what is wrong before any hashing."""
    label = dist.label
    if dist.record is None or dist.root is None:
        where = str(dist.metadata_dir) if dist.metadata_dir else "no metadata directory"
        return [
            FileProblem(label, where, UNVERIFIABLE, "no RECORD: its files cannot be checked")
        ], []
    try:
        entries = _read_record(dist)
    except Error as e:
        return [FileProblem(label, str(dist.record), UNVERIFIABLE, e.diagnostics())], []
    problems: list[FileProblem] = []
    warnings: list[FileProblem] = []
    root = str(dist.root)
    metadata_dir = os.path.normpath(str(dist.metadata_dir))
    for entry in entries:
        path = os.path.normpath(os.path.join(root, entry.path))
        into.claimed.add(path)
        if entry.digest is None:
            own = os.path.dirname(path) == metadata_dir and os.path.basename(path) in SELF_NAMES
            if not own and not path.endswith(".pyc"):
                warnings.append(FileProblem(label, entry.path, UNHASHED, "listed without a hash"))
            continue
        if not entry.accepted:
            detail = f"hashed with {entry.algorithm}, which cannot vouch for content"
            problems.append(FileProblem(label, entry.path, UNVERIFIABLE, detail))
            continue
        into.tasks.append(_Task(index, entry, path))
    return problems, warnings


def _is_identifier_name(name: str) -> bool:
    return name.split(".", 1)[0].isidentifier()


def _top_level_kind(name: str, is_dir: bool) -> str:
    """What an unclaimed top-level entry of a site directory would be to the interpreter."""
    if name.endswith(".pth"):
        return PTH
    if is_dir:
        return PACKAGE if name.isidentifier() else FILE
    if name.endswith(CODE_SUFFIXES) and _is_identifier_name(name):
        return MODULE
    return FILE


def _claimed_dirs(claimed: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for path in claimed:
        parent = os.path.dirname(path)
        while parent not in dirs and parent != os.path.dirname(parent):
            dirs.add(parent)
            parent = os.path.dirname(parent)
    return dirs


def _scan_site(
    site_dir: str, claimed: set[str], claimed_dirs: set[str]
) -> tuple[list[Unclaimed], list[Unclaimed]]:
    """Unclaimed code (findings) and other unclaimed files (warnings) under one site directory."""
    findings: list[Unclaimed] = []
    warnings: list[Unclaimed] = []
    try:
        top = sorted(os.scandir(site_dir), key=lambda e: e.name)
    except OSError:
        return findings, warnings
    walk_into: list[str] = []
    for item in top:
        name, path = item.name, os.path.join(site_dir, item.name)
        is_dir = item.is_dir(follow_symlinks=False)
        if is_dir and (name.endswith(METADATA_SUFFIXES) or name == "__pycache__"):
            continue
        if path in claimed:
            continue
        if is_dir and path in claimed_dirs:
            walk_into.append(path)
            continue
        if item.is_symlink():  # judged by what it leads to: a linked package imports too
            is_dir = item.is_dir(follow_symlinks=True)
        kind = _top_level_kind(name, is_dir)
        shown = name + ("/" if is_dir else "")
        (warnings if kind == FILE else findings).append(Unclaimed(site_dir, shown, kind))
    for directory in walk_into:
        for current, dirs, files in os.walk(directory):
            # A linked directory inside a package is a subpackage nobody's RECORD covers (the
            # walk does not follow it, so it would otherwise go unseen).
            for name in sorted(d for d in dirs if os.path.islink(os.path.join(current, d))):
                rel = os.path.relpath(os.path.join(current, name), site_dir).replace(os.sep, "/")
                findings.append(Unclaimed(site_dir, rel + "/", PACKAGE))
            dirs[:] = sorted(
                d
                for d in dirs
                if d != "__pycache__" and not os.path.islink(os.path.join(current, d))
            )
            for name in sorted(files):
                path = os.path.join(current, name)
                if path in claimed:
                    continue
                rel = os.path.relpath(path, site_dir).replace(os.sep, "/")
                kind = MODULE if name.endswith(CODE_SUFFIXES) else FILE
                (findings if kind == MODULE else warnings).append(Unclaimed(site_dir, rel, kind))
    return findings, warnings


_PENDING = FileProblem("", "", "pending")


def _check_all(tasks: list[_Task], labels: list[str], workers: int) -> list[FileProblem | None]:
    """Check every task on ``workers`` threads taking the next task from a shared counter.

    Largest files come first (the caller sorts), so a few huge shared libraries are spread
    over the threads instead of queueing behind each other; hashlib releases the GIL while it
    hashes. A task left unchecked (a worker died) is an error, never a pass.
    """
    results: list[FileProblem | None] = [_PENDING] * len(tasks)
    counter = itertools.count()

    def work() -> None:
        while (i := next(counter)) < len(tasks):
            results[i] = _check_one(tasks[i], labels[tasks[i].index])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()  # re-raises whatever a worker raised
    if any(r is _PENDING for r in results):  # pragma: no cover - defensive
        raise RuntimeError("the integrity check left files unchecked")
    return results


def check_environment(environment: Environment, *, workers: int | None = None) -> IntegrityReport:
    """Re-hash every installed file and look for unclaimed code (see the module docstring)."""
    from provenance.digest.hashing import default_workers

    dists = sorted(environment.distributions, key=lambda d: (d.normalized_name, d.version))
    collected = _Collected()
    early = [_collect(i, d, collected) for i, d in enumerate(dists)]
    labels = [d.label for d in dists]
    total_bytes = sum(t.entry.size or 0 for t in collected.tasks)

    ordered = sorted(collected.tasks, key=lambda t: -(t.entry.size or 0))
    results = _check_all(ordered, labels, workers or default_workers())
    found: list[list[FileProblem]] = [list(problems) for problems, _ in early]
    counts = [0] * len(dists)
    for task, problem in zip(ordered, results, strict=True):
        counts[task.index] += 1
        if problem is not None:
            found[task.index].append(problem)
    distributions = tuple(
        DistributionResult(
            labels[i],
            counts[i],
            tuple(sorted(found[i], key=lambda p: p.path)),
            tuple(sorted(early[i][1], key=lambda p: p.path)),
        )
        for i in range(len(dists))
    )
    claimed_dirs = _claimed_dirs(collected.claimed)
    unclaimed: list[Unclaimed] = []
    unclaimed_warnings: list[Unclaimed] = []
    for site_dir in environment.site_dirs:
        findings, warnings = _scan_site(str(site_dir), collected.claimed, claimed_dirs)
        unclaimed += findings
        unclaimed_warnings += warnings
    return IntegrityReport(
        distributions=distributions,
        unclaimed=tuple(unclaimed),
        unclaimed_warnings=tuple(unclaimed_warnings),
        site_dirs=tuple(str(s) for s in environment.site_dirs),
        files=len(collected.tasks),
        bytes=total_bytes,
    )


CHECK_URI = "https://ml-provenance.dev/checks/environment-integrity/v1"
MAX_LISTED = 10_000  # per list; a statement must stay well below its size limit


def _capped(names: list[str], what: str) -> list[str]:
    if len(names) <= MAX_LISTED:
        return names
    return [*names[:MAX_LISTED], f"{what}:truncated:{len(names) - MAX_LISTED} more"]


def test_names(report: IntegrityReport) -> tuple[list[str], list[str], list[str]]:
    """(passed, warned, failed) test names, as ``attest/integrity.md`` defines them."""
    passed: list[str] = []
    warned: list[str] = []
    failed: list[str] = []
    for dist in report.distributions:
        if not dist.problems:
            passed.append(f"record:{dist.label}")
        failed += [f"record:{p.distribution}:{p.kind}:{p.path}" for p in dist.problems]
        warned += [f"record:{w.distribution}:{w.kind}:{w.path}" for w in dist.warnings]
    dirty = {u.site_dir for u in report.unclaimed}
    passed += [f"site:{s}" for s in report.site_dirs if s not in dirty]
    failed += [f"site:{u.site_dir}:unclaimed-{u.kind}:{u.path}" for u in report.unclaimed]
    warned += [f"site:{u.site_dir}:unclaimed-{u.kind}:{u.path}" for u in report.unclaimed_warnings]
    return passed, _capped(warned, "warnings"), _capped(failed, "failures")


def integrity_statement(
    report: IntegrityReport, environment: Environment, subject: Digest
) -> Statement:
    """The test-result statement of ``report`` about the environment digest ``subject``."""
    from provenance import __version__
    from provenance.deps.sbom import ENVIRONMENT_NAME
    from provenance.predicates.test_result import test_result_statement
    from provenance.statement import ResourceDescriptor

    passed, warned, failed = test_names(report)
    configuration = {
        "name": "environment-integrity",
        "uri": CHECK_URI,
        "annotations": {
            "tool": f"ml-provenance {__version__}",
            "python": {
                "implementation": environment.implementation,
                "version": environment.version,
                "platform": environment.platform,
            },
            "siteDirs": list(report.site_dirs),
            "distributions": len(report.distributions),
            "files": report.files,
            "bytes": report.bytes,
        },
    }
    return test_result_statement(
        [ResourceDescriptor.for_digest(subject, name=ENVIRONMENT_NAME)],
        configuration=[configuration],
        passed=passed,
        warned=warned,
        failed=failed,
    )
