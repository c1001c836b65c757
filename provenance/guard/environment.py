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
import sys
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


def interpreter_of(command: list[str]) -> str:
    """The Python interpreter ``command`` runs, or this process's when it names none."""
    if command:
        found = shutil.which(command[0])
        if found is not None and _PYTHON_NAME.fullmatch(Path(command[0]).name):
            return found
    return sys.executable


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
