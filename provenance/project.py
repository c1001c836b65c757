"""Finding the project: the nearest ``.provenance/`` directory, searched for like ``.git``.

A project is a directory holding ``.provenance/``, where the toolkit keeps its state (ledger,
keys, caches). Commands that need that state look for it by walking up from the working
directory, so they work from any subdirectory of a repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provenance.errors import ProjectNotFoundError

STATE_DIR = ".provenance"


@dataclass(frozen=True)
class Project:
    """A project root and the well-known places inside its state directory."""

    root: Path

    @property
    def state_dir(self) -> Path:
        """``<root>/.provenance``."""
        return self.root / STATE_DIR

    @property
    def ledger_path(self) -> Path:
        """The SQLite ledger of attestations."""
        return self.state_dir / "ledger.db"

    @property
    def keys_dir(self) -> Path:
        """Where project keys live."""
        return self.state_dir / "keys"

    @property
    def cache_dir(self) -> Path:
        """Caches that only save work (safe to delete)."""
        return self.state_dir / "cache"


def find_project(start: Path | None = None) -> Project | None:
    """The project containing ``start`` (default: the working directory), or None."""
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / STATE_DIR
        if candidate.is_dir() and not candidate.is_symlink():
            return Project(directory)
    return None


def require_project(start: Path | None = None) -> Project:
    """Like :func:`find_project`, but a missing project is an error with a hint."""
    project = find_project(start)
    if project is None:
        where = (start or Path.cwd()).absolute()
        raise ProjectNotFoundError(
            f"no {STATE_DIR}/ directory in {where} or any parent",
            hint=f"run 'provenance init' in the project's root (or create {STATE_DIR}/ there)",
        )
    return project
