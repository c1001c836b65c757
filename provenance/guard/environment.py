"""The Python environment a training command runs in: its installed distributions.

The distributions are read from the interpreter the command runs (``python train.py`` runs
whichever ``python`` is first on ``PATH``, not necessarily the one running this toolkit), by
starting that interpreter in isolated mode with a short script. This records names and
versions; which bytes are installed is what the environment SBOM and the integrity check vouch
for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from provenance.errors import InputError
from provenance.predicates.training import Distribution

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?(\.exe)?")
_INVENTORY_TIMEOUT_SECONDS = 120

# Runs inside the command's interpreter: first occurrence of a name wins, as for imports.
_INVENTORY = """
import json, platform, sys
from importlib import metadata
seen = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name and name.lower() not in seen:
        seen[name.lower()] = [name, dist.version]
print(json.dumps({
    "distributions": sorted(seen.values(), key=lambda d: d[0].lower()),
    "python": {"implementation": platform.python_implementation(),
               "version": platform.python_version()},
}))
"""


def interpreter_of(command: list[str]) -> str:
    """The Python interpreter ``command`` runs, or this process's when it names none."""
    if command:
        found = shutil.which(command[0])
        if found is not None and _PYTHON_NAME.fullmatch(Path(command[0]).name):
            return found
    return sys.executable


def inventory(python: str) -> tuple[tuple[Distribution, ...], dict[str, str]]:
    """The distributions installed for ``python`` and its implementation and version."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [python, "-I", "-c", _INVENTORY],
            capture_output=True,
            timeout=_INVENTORY_TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"cannot list the distributions of {python}: {e}") from e
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(
            f"cannot list the distributions of {python}: "
            f"{message[-1] if message else f'exit {result.returncode}'}"
        )
    try:
        document = json.loads(result.stdout)
        distributions = tuple(
            Distribution(str(name), str(version)) for name, version in document["distributions"]
        )
        python_info = {str(k): str(v) for k, v in document["python"].items()}
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{python} printed an unreadable list of distributions") from e
    return distributions, python_info
