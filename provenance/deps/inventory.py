"""What is installed for a Python interpreter: its site directories and distributions.

The interpreter described may not be the one running this toolkit (``--python PATH``), so it
is asked, not imported: :mod:`provenance.deps._probe` runs inside it in isolated mode without
executing ``.pth`` files (see that module for why) and prints JSON that is parsed strictly
here. This process then reads the files the probe names (RECORD files, site directories)
itself. The default interpreter is this one, asked the same way, so ``--python`` with this
interpreter's path and no ``--python`` give the same answer.

Boundary: names, versions, licence metadata and paths. Hashing installed files is
:mod:`provenance.deps.integrity`'s job; the SBOM is :mod:`provenance.deps.sbom`'s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.errors import InputError

PROBE = Path(__file__).with_name("_probe.py")
PROBE_TIMEOUT_SECONDS = 120
MAX_PROBE_OUTPUT = 64 << 20
_NAME_SEPARATORS = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """The PEP 503 normalised form of a distribution name (``Foo.Bar_baz`` -> ``foo-bar-baz``)."""
    return _NAME_SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True)
class InstalledDistribution:
    """One installed distribution, as the interpreter's ``importlib.metadata`` reports it.

    ``metadata_dir`` is its ``*.dist-info`` (or ``*.egg-info``) directory, or None for a
    distribution not stored in a directory (a zipped egg); ``record`` is its RECORD file when
    that exists.
    """

    name: str
    version: str
    metadata_dir: Path | None
    license_expression: str | None = None
    license: str | None = None
    classifiers: tuple[str, ...] = ()

    @property
    def normalized_name(self) -> str:
        return normalize_name(self.name)

    @property
    def label(self) -> str:
        """``name==version``: how reports name the distribution."""
        return f"{self.name}=={self.version}"

    @property
    def record(self) -> Path | None:
        """The RECORD file listing its installed files, when there is one."""
        if self.metadata_dir is None:
            return None
        path = self.metadata_dir / "RECORD"
        return path if path.is_file() else None

    @property
    def root(self) -> Path | None:
        """The directory RECORD paths are relative to (the metadata directory's parent)."""
        return None if self.metadata_dir is None else self.metadata_dir.parent


@dataclass(frozen=True)
class Environment:
    """An interpreter and what is installed for it."""

    python: str
    implementation: str
    version: str
    platform: str
    site_dirs: tuple[Path, ...]
    distributions: tuple[InstalledDistribution, ...]


def _text(value: Any, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"the interpreter's report has a malformed {what}")
    return value


def _parse(document: Any, python: str) -> Environment:
    if not isinstance(document, dict):
        raise InputError(f"{python} printed an unreadable inventory")
    if "error" in document:
        raise InputError(f"cannot list the distributions of {python}: {document['error']}")
    info = document.get("python")
    dists = document.get("distributions")
    sites = document.get("siteDirs")
    if not isinstance(info, dict) or not isinstance(dists, list) or not isinstance(sites, list):
        raise InputError(f"{python} printed an unreadable inventory")
    distributions = []
    for item in dists:
        if not isinstance(item, dict):
            raise InputError(f"{python} printed an unreadable inventory")
        name = _text(item.get("name"), "distribution name", optional=True)
        version = _text(item.get("version"), "distribution version", optional=True)
        path = _text(item.get("path"), "distribution path", optional=True)
        if not name or version is None:
            where = path or "a distribution"
            raise InputError(
                f"{where} in {python}'s environment has no name or version in its metadata",
                hint="repair or remove the broken installation",
            )
        classifiers = item.get("classifiers", [])
        if not isinstance(classifiers, list) or not all(isinstance(c, str) for c in classifiers):
            raise InputError(f"the interpreter's report has malformed classifiers for {name}")
        distributions.append(
            InstalledDistribution(
                name=name,
                version=version,
                metadata_dir=Path(path) if path else None,
                license_expression=_text(
                    item.get("licenseExpression"), "License-Expression", optional=True
                ),
                license=_text(item.get("license"), "License", optional=True),
                classifiers=tuple(classifiers),
            )
        )
    return Environment(
        python=python,
        implementation=_text(info.get("implementation"), "implementation") or "",
        version=_text(info.get("version"), "Python version") or "",
        platform=_text(info.get("platform"), "platform") or "",
        site_dirs=tuple(Path(_text(s, "site directory") or "") for s in sites),
        distributions=tuple(distributions),
    )


def _executable(python: str) -> str:
    """``python`` itself, or the interpreter inside it when it names a virtual environment."""
    path = Path(python)
    if path.is_dir():
        for candidate in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if candidate.is_file():
                return str(candidate)
        raise InputError(f"{python} is a directory with no bin/python in it")
    return python


def inspect(python: str | None = None) -> Environment:
    """Ask ``python`` (default: this interpreter) what is installed for it."""
    from provenance.digest.canonical import loads_strict

    interpreter = _executable(python) if python else sys.executable
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [interpreter, "-I", "-S", "-B", str(PROBE)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise InputError(
            f"{interpreter} did not list its distributions within {PROBE_TIMEOUT_SECONDS} s"
        ) from e
    except OSError as e:
        raise InputError(
            f"cannot run {interpreter}: {e.strerror or e}", hint="give --python a Python executable"
        ) from e
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1] if lines else f"exit status {result.returncode}"
        raise InputError(f"cannot list the distributions of {interpreter}: {last}")
    if len(result.stdout) > MAX_PROBE_OUTPUT:
        raise InputError(f"{interpreter} printed more than {MAX_PROBE_OUTPUT} bytes")
    document = loads_strict(result.stdout, what=f"the inventory of {interpreter}")
    return _parse(document, interpreter)
