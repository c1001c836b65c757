"""The Python environment a training command runs in, as its provenance records it.

The environment is described by the interpreter the command runs (``python train.py`` runs
whichever ``python`` is first on ``PATH``, not necessarily the one running this toolkit), read
without running anything installed in it (:func:`provenance.deps.inventory.inspect`). The
provenance lists its distributions as package URLs and names its **environment digest** (the
digest of its reproducible SBOM, :mod:`provenance.deps.sbom`) -- followed by the verifier when an
SBOM attestation for that digest exists, so that a policy can require the environment's audit
and integrity check.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.digest.algorithms import Digest
from provenance.predicates.training import Distribution

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?(\.exe)?")


@dataclass(frozen=True)
class RunEnvironment:
    """What a training statement says of the environment."""

    distributions: tuple[Distribution, ...]
    python: dict[str, str]
    digest: Digest  # of the environment's SBOM


def interpreter_of(command: list[str]) -> str | None:
    """The Python interpreter ``command`` runs, or None when that cannot be told.

    Recognised: ``python``-named programs (``python3.11 train.py``), the same behind ``env``
    (``env FOO=1 python train.py``), and scripts whose ``#!`` line names one
    (``./train.py``). Anything else -- ``torchrun``, ``bash -c``, a console script -- may run
    any interpreter, and guessing would record the wrong environment: the caller must be told.
    """
    args = list(command)
    if args and Path(args[0]).name == "env":
        args = args[1:]
        while args and ("=" in args[0] or args[0].startswith("-")):
            args = args[1:]
    if not args:
        return None
    program = args[0]
    if _PYTHON_NAME.fullmatch(Path(program).name):
        return shutil.which(program)
    found = shutil.which(program)
    return _shebang_python(found) if found is not None else None


def _shebang_python(script: str) -> str | None:
    """The interpreter a script's ``#!`` line names, when it is a Python."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    if words and _PYTHON_NAME.fullmatch(Path(words[0]).name):
        return shutil.which(words[0])
    return None


def describe(python: str) -> RunEnvironment:
    """List ``python``'s distributions and compute its environment digest."""
    from provenance.deps.inventory import inspect
    from provenance.deps.sbom import build_sbom

    environment = inspect(python)
    seen: dict[str, Distribution] = {}
    for dist in environment.distributions:  # first of a name wins, as for imports
        seen.setdefault(dist.normalized_name, Distribution(dist.name, dist.version))
    return RunEnvironment(
        tuple(seen[name] for name in sorted(seen)),
        {"implementation": environment.implementation, "version": environment.version},
        build_sbom(environment).digest,
    )


def is_attested(digest: Digest, evidence: Any) -> bool:
    """True when the evidence holds an SBOM statement about ``digest`` (its signature is the
    verifier's business: naming the digest in provenance only makes it checkable)."""
    from provenance.errors import Error
    from provenance.predicates.sbom import CYCLONEDX_PREDICATE

    for bundle in evidence.about(digest):
        try:
            statement = bundle.statement
        except Error:
            continue
        if statement.predicate_type == CYCLONEDX_PREDICATE and statement.names(digest):
            return True
    return False
